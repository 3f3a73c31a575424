// Checkpoint bookkeeping: trainer state as JSON, atomic checkpoint folders,
// pruning, and generator states.
#include "lire/train/checkpoint.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <ATen/Context.h>
#include <torch/torch.h>

#include "lire/config/config_tree.h"
#include "lire/core/error.h"
#include "lire/io/safetensors.h"

namespace lire::train {

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace fs = std::filesystem;
namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kStepPrefix = "step-";

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(str(where, ": missing field '", key, "'"));
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(str(where, ": field '", key, "' has the wrong type (", j.at(key).type_name(), ")"));
  }
}

// Parses "step-N" (N a non-negative integer), -1 otherwise.
std::int64_t step_of(const std::string& name) {
  const std::string prefix = kStepPrefix;
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  std::int64_t n = 0;
  for (std::size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || n > (INT64_MAX - 9) / 10) return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

}  // namespace

nlohmann::json TrainerState::to_json() const {
  return {{"step", step},
          {"epoch", epoch},
          {"position", position},
          {"lists_seen", lists_seen},
          {"tokens_seen", tokens_seen},
          {"nonfinite_steps", nonfinite_steps},
          {"nonfinite_in_a_row", nonfinite_in_a_row},
          {"train_seconds", train_seconds},
          {"best_metric", best_metric},
          {"best_value", best_value},
          {"best_step", best_step},
          {"last_eval_step", last_eval_step}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(str(where, ": expected a JSON object"));
  TrainerState s;
  s.step = field<std::int64_t>(j, "step", where);
  s.epoch = field<std::int64_t>(j, "epoch", where);
  s.position = field<std::int64_t>(j, "position", where);
  s.lists_seen = field<std::int64_t>(j, "lists_seen", where);
  s.tokens_seen = field<std::int64_t>(j, "tokens_seen", where);
  s.nonfinite_steps = field<std::int64_t>(j, "nonfinite_steps", where);
  s.nonfinite_in_a_row = field<std::int64_t>(j, "nonfinite_in_a_row", where);
  s.train_seconds = field<double>(j, "train_seconds", where);
  s.best_metric = field<std::string>(j, "best_metric", where);
  s.best_value = field<double>(j, "best_value", where);
  s.best_step = field<std::int64_t>(j, "best_step", where);
  s.last_eval_step = field<std::int64_t>(j, "last_eval_step", where);
  if (s.step < 0 || s.epoch < 0 || s.position < 0)
    throw Error(str(where, ": step, epoch and position must be >= 0"));
  return s;
}

std::string checkpoint_path(const std::string& run_dir, std::int64_t step) {
  return (fs::path(run_dir) / "checkpoints" / str(kStepPrefix, step)).string();
}

std::vector<std::pair<std::int64_t, std::string>> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<std::int64_t, std::string>> out;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::int64_t step = step_of(entry.path().filename().string());
    if (step < 0 || !entry.is_directory() || !fs::exists(entry.path() / kStateFile)) continue;
    out.emplace_back(step, entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string latest_checkpoint(const std::string& run_dir) {
  const auto all = list_checkpoints(run_dir);
  return all.empty() ? std::string() : all.back().second;
}

void write_checkpoint(const std::string& run_dir, std::int64_t step,
                      const std::function<void(const std::string& folder)>& fill) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  fs::create_directories(dir);
  // Temporary folders an interrupted save left behind.
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) fs::remove_all(entry.path());
  config::write_folder_atomically(checkpoint_path(run_dir, step), [&](const std::string& tmp) {
    fill(tmp);
    if (!fs::exists(fs::path(tmp) / kStateFile))
      throw Error(str("checkpoint ", tmp, ": ", kStateFile, " was not written"));
  });
}

void prune_checkpoints(const std::string& run_dir, std::int64_t keep_last, std::int64_t keep_step) {
  if (keep_last <= 0) return;
  const auto all = list_checkpoints(run_dir);
  const std::int64_t n = static_cast<std::int64_t>(all.size());
  for (std::int64_t i = 0; i < n - keep_last; ++i) {
    if (all[i].first == keep_step) continue;
    fs::remove_all(all[i].second);
  }
}

void save_rng_state(const std::string& path) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    tensors.emplace_back("cpu", gen.get_state());
  }
  if (torch::cuda::is_available()) {
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(torch::cuda::device_count()); ++i) {
      auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      tensors.emplace_back(str("cuda:", i), gen.get_state());
    }
  }
  io::save_safetensors(path, tensors);
}

void load_rng_state(const std::string& path) {
  const auto file = io::SafetensorsFile::open(path);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(file->tensor("cpu").clone());
  }
  if (torch::cuda::is_available()) {
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(torch::cuda::device_count()); ++i) {
      const std::string name = str("cuda:", i);
      if (!file->contains(name)) continue;  // a checkpoint from a CPU run
      auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(file->tensor(name).clone());
    }
  }
}

}  // namespace lire::train

// Checkpoint bookkeeping: trainer state as JSON, atomic checkpoint folders,
// pruning, and generator states.
#include "lire/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

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

// LIRE_TEST_CHECKPOINT_PAUSE_MS (checkpoint.h): a pause inside a save, for the crash test.
void test_pause() {
  static const long ms = [] {
    const char* v = std::getenv("LIRE_TEST_CHECKPOINT_PAUSE_MS");
    return v && *v ? std::atol(v) : 0L;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Makes a folder's entries (a rename into it, a new file) durable.
void fsync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// A file written through its descriptor, every failure reported with the path.
class CheckedFile {
 public:
  explicit CheckedFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) fail("", errno);
  }
  ~CheckedFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  CheckedFile(const CheckedFile&) = delete;
  CheckedFile& operator=(const CheckedFile&) = delete;

  // Writes everything; returns the errno of a failure (0 = written).
  int write_all(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t k = ::write(fd_, p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return k < 0 ? errno : ENOSPC;
      p += k;
      n -= static_cast<std::size_t>(k);
    }
    return 0;
  }
  void finish() {
    if (::fsync(fd_) != 0) fail("fsync: ", errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("close: ", errno);
  }
  [[noreturn]] void fail(const std::string& what, int error) const {
    throw Error(str("cannot write '", path_, "': ", what, std::strerror(error)));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// A filesystem_error as one line naming the checkpoint.
[[noreturn]] void rethrow_fs(const fs::filesystem_error& e, const fs::path& checkpoint) {
  std::string where = e.path1().string();
  if (where.empty()) where = checkpoint.string();
  throw Error(str("cannot write checkpoint '", checkpoint.string(), "': ", where, ": ", e.code().message()));
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
  const fs::path out = checkpoint_path(run_dir, step);
  const fs::path tmp = dir / str(out.filename().string(), ".tmp.", ::getpid());
  try {
    fs::create_directories(dir);
    // Temporary folders an interrupted save or deletion left behind.
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().filename().string().find(".tmp.") != std::string::npos) fs::remove_all(entry.path());
    fs::create_directories(tmp);
  } catch (const fs::filesystem_error& e) {
    rethrow_fs(e, out);
  }
  try {
    test_pause();
    fill(tmp.string());
    if (!fs::exists(tmp / kStateFile))
      throw Error(str("checkpoint ", tmp.string(), ": ", kStateFile, " was not written"));
    for (const auto& entry : fs::recursive_directory_iterator(tmp))
      if (entry.is_directory()) fsync_folder(entry.path());
    fsync_folder(tmp);
    test_pause();
    // An older folder of this step (a finished run saved again) goes out of
    // the way under a temporary name first: a step-N folder is always complete.
    if (fs::exists(out)) {
      const fs::path old = dir / str(out.filename().string(), ".tmp.old.", ::getpid());
      fs::rename(out, old);
      fs::rename(tmp, out);
      fs::remove_all(old);
    } else {
      fs::rename(tmp, out);
    }
    fsync_folder(dir);
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    rethrow_fs(e, out);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

void prune_checkpoints(const std::string& run_dir, std::int64_t keep_last, std::int64_t keep_step) {
  if (keep_last <= 0) return;
  const auto all = list_checkpoints(run_dir);
  const std::int64_t n = static_cast<std::int64_t>(all.size());
  for (std::int64_t i = 0; i < n - keep_last; ++i) {
    if (all[i].first == keep_step) continue;
    // Renamed first (atomic), so that a kill during the deletion leaves a
    // temporary folder, which the next save removes, and never a checkpoint
    // with files missing.
    const fs::path doomed = str(all[i].second, ".tmp.del.", ::getpid());
    fs::rename(all[i].second, doomed);
    test_pause();
    fs::remove_all(doomed);
  }
}

void check_writable(const std::string& dir, const std::string& what) {
  const std::string probe = (fs::path(dir) / str(".lire-write-probe.", ::getpid())).string();
  const auto fail = [&](int error) {
    ::unlink(probe.c_str());
    throw Error(str(what, " ", dir, " is not writable: cannot write '", probe, "': ", std::strerror(error)));
  };
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail(errno);
  const char text[] = "lire write probe\n";
  ssize_t k = 0;
  do {
    k = ::write(fd, text, sizeof text - 1);
  } while (k < 0 && errno == EINTR);
  const int error = k < 0 ? errno : (k != static_cast<ssize_t>(sizeof text - 1) ? ENOSPC : 0);
  const int sync_error = error == 0 && ::fsync(fd) != 0 ? errno : 0;
  ::close(fd);
  if (error != 0 || sync_error != 0) fail(error != 0 ? error : sync_error);
  if (::unlink(probe.c_str()) != 0) fail(errno);
}

void save_optimizer(torch::optim::Optimizer& optimizer, const std::string& path) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  CheckedFile file(path);
  int error = 0;
  // LibTorch's zip writer calls this. After a failed write it must still be
  // told that every byte went: a short count makes the writer throw, and its
  // destructor then throws again while finishing the archive, which ends the
  // process (std::terminate; found with a full disk). So the error is kept,
  // later bytes are dropped, and the failure is raised once the writer is done.
  archive.save_to([&](const void* data, std::size_t n) -> std::size_t {
    if (error == 0) error = file.write_all(data, n);
    return n;
  });
  if (error != 0) file.fail("", error);
  file.finish();
}

torch::Tensor generator_state(const torch::Device& device) {
  auto gen = device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

namespace {

void set_generator_state(const torch::Device& device, const torch::Tensor& state) {
  auto gen = device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state.clone());
}

}  // namespace

void save_rng_state(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& extra) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  tensors.emplace_back("cpu", generator_state(torch::kCPU));
  if (torch::cuda::is_available()) {
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(torch::cuda::device_count()); ++i)
      tensors.emplace_back(str("cuda:", i), generator_state(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(i))));
  }
  tensors.insert(tensors.end(), extra.begin(), extra.end());
  io::save_safetensors(path, tensors);
}

void load_rng_state(const std::string& path, int rank, const torch::Device& device) {
  const auto file = io::SafetensorsFile::open(path);
  const std::string own = str("rank", rank, ".cpu");
  if (rank > 0 && file->contains(own)) {
    set_generator_state(torch::kCPU, file->tensor(own));
    const std::string cuda = str("rank", rank, ".cuda");
    if (device.is_cuda() && file->contains(cuda)) set_generator_state(device, file->tensor(cuda));
    return;
  }
  set_generator_state(torch::kCPU, file->tensor("cpu"));
  if (torch::cuda::is_available()) {
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(torch::cuda::device_count()); ++i) {
      const std::string name = str("cuda:", i);
      if (!file->contains(name)) continue;  // a checkpoint from a CPU run
      set_generator_state(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(i)), file->tensor(name));
    }
  }
}

}  // namespace lire::train

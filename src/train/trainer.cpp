// The training loop of lire-train (see trainer.h and docs/training.md).
#include "lire/train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/cli/progress.h"
#include "lire/core/error.h"
#include "lire/core/torch_runtime.h"
#include "lire/data/candidate_list.h"
#include "lire/data/list_dataset.h"
#include "lire/core/suggest.h"
#include "lire/io/safetensors.h"
#include "lire/losses/registry.h"
#include "lire/models/export.h"
#include "lire/models/lora.h"
#include "lire/models/language_model.h"
#include "lire/models/weights.h"
#include "lire/train/checkpoint.h"
#include "lire/train/evolve.h"
#include "lire/train/lr_schedule.h"
#include "lire/train/optimizer.h"
#include "lire/train/process_group.h"
#include "lire/train/reference_cache.h"
#include "lire/version.h"

namespace lire::train {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// request_stop()'s signal (trainer.h); 0 = none.
volatile std::sig_atomic_t g_stop_signal = 0;

// Test hook: LIRE_TEST_STEP_PAUSE_MS=N sleeps N ms after each step's log
// line, so that tests/apps/crash_test.sh can signal or kill a run mid-way on
// a machine of any speed. Not meant for real runs (docs/robustness.md).
void test_step_pause() {
  static const long ms = [] {
    const char* v = std::getenv("LIRE_TEST_STEP_PAUSE_MS");
    return v && *v ? std::atol(v) : 0L;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<std::int64_t>(s + 0.5);
  if (total >= 3600) return str(total / 3600, "h", (total / 60) % 60, "m");
  if (total >= 60) return str(total / 60, "m", total % 60, "s");
  return str(total, "s");
}

// The reference log-probs a run uses, after resolving train.reference.
enum class ReferenceMode { kNone, kAdapterOff, kFrozenCopy, kPrecomputed, kCached };

const char* mode_name(ReferenceMode m) {
  switch (m) {
    case ReferenceMode::kNone: return "none";
    case ReferenceMode::kAdapterOff: return "adapter-off";
    case ReferenceMode::kFrozenCopy: return "frozen-copy";
    case ReferenceMode::kPrecomputed: return "precomputed";
    case ReferenceMode::kCached: return "cached (computed once at the start)";
  }
  return "?";
}

// One list, ready for the model and the loss.
struct Example {
  models::ListTokens tokens;
  std::vector<double> targets;       // rewards, -ranks or labels
  std::int64_t sft_index = -1;       // SFT target candidate, -1 = none
  std::vector<double> ref_logps;     // precomputed or cached reference; empty = none
  std::int64_t token_total = 0;      // prompt + response tokens over the K sequences
};

// A dataset and the records of it a split uses.
struct Split {
  std::string name;                      // "train" | "eval"
  const data::ListDataset* dataset = nullptr;
  std::vector<std::size_t> records;      // record indices into *dataset
  const ReferenceTable* reference = nullptr;
  std::vector<std::size_t> lengths;      // per record index: prompt + response tokens (0 = not kept)
};

// Sums and counts of metrics over micro-batches and steps.
struct MetricSums {
  std::map<std::string, std::pair<double, double>> values;
  void add(const std::map<std::string, losses::Metric>& metrics) {
    for (const auto& [name, m] : metrics) {
      auto& v = values[name];
      v.first += m.sum.item<double>();
      v.second += m.count.item<double>();
    }
  }
  void add(const std::string& name, double sum, double count) {
    auto& v = values[name];
    v.first += sum;
    v.second += count;
  }
  double value(const std::string& name) const {
    const auto it = values.find(name);
    return it == values.end() || it->second.second <= 0 ? 0.0 : it->second.first / it->second.second;
  }
};

// Appends flat JSON lines to metrics.jsonl, flushed line by line.
class MetricsLog {
 public:
  MetricsLog() = default;
  // `keep_until`: -1 truncates the file; otherwise lines with step > keep_until
  // (left by an interrupted run after its last checkpoint) are dropped.
  void open(const std::string& path, std::int64_t keep_until) {
    path_ = path;
    if (keep_until < 0) {
      out_.open(path, std::ios::trunc);
    } else {
      std::string kept;
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        try {
          const auto j = nlohmann::json::parse(line);
          if (j.value("step", std::int64_t{0}) <= keep_until) kept += line + "\n";
        } catch (const nlohmann::json::exception&) {
          // a line cut by the interruption
        }
      }
      in.close();
      config::write_file_atomically(path, kept);
      out_.open(path, std::ios::app);
    }
    if (!out_) throw Error(str(path, ": cannot open for writing"));
  }
  // Other ranks than 0 never open the log: their writes go nowhere.
  void write(const nlohmann::json& record) {
    if (path_.empty()) return;
    out_ << record.dump() << "\n";
    out_.flush();
    if (!out_) throw Error(str(path_, ": write failed (disk full?)"));
  }

 private:
  std::string path_;
  std::ofstream out_;
};

class Trainer {
 public:
  explicit Trainer(const TrainJob& job) : job_(job), cfg_(job.config) {}
  TrainResult run();

 private:
  void prepare_run_directory();
  void record_resume();
  void open_data();
  void build_model();
  // A fresh copy of the base model (model.path with model.adapter merged) on `device`.
  models::LanguageModel load_base(const std::string& device) const;
  // The dtype of adapters and log-prob computations: float64 for a float64 model, else float32.
  torch::Dtype compute_dtype() const;
  void resolve_reference_mode();
  void prepare_split(Split& split, ReferenceTable* table);
  void prepare_reference_tables();
  Example make_example(const Split& split, std::size_t record, const data::CandidateList& list);
  Example load_example(const Split& split, std::size_t record);
  losses::LossInput make_input(const std::vector<Example>& batch, const models::ListBatchLogprobs& lp,
                               bool with_logps_grad_context);
  torch::Tensor reference_logps(const std::vector<Example>& batch, const models::ListBatchLogprobs& lp);
  std::vector<models::ListTokens> tokens_of(const std::vector<Example>& batch) const;
  bool train_step();
  std::map<std::string, double> evaluate();
  void after_eval(const std::map<std::string, double>& metrics);
  void save_checkpoint();
  // At a step boundary: when a stop was requested on any rank, saves the
  // checkpoint of this step and throws Stopped on every rank.
  void stop_if_requested();
  void write_final();
  void restore(const std::string& checkpoint);
  // The trainable parameters saved in a checkpoint folder (adapter/ or model/).
  void load_trained(const std::string& checkpoint);
  void log_train_line();
  bool better(double value) const;
  // Epochs done as a fraction (2.5 = half way through the third epoch).
  double epoch_progress() const {
    const auto n = order_ ? order_->size() : 0;
    return static_cast<double>(state_.epoch) + (n ? static_cast<double>(state_.position) / n : 0.0);
  }

  // Data parallelism (docs/distributed.md): rank 0 of world_ writes everything.
  void connect_ranks();
  bool writer() const { return rank_ == 0; }
  // Sums every rank's gradients (undefined ones count as zeros).
  void all_reduce_gradients();
  // Sums every rank's metric sums in place. Every rank must hold the same
  // metrics; when their numbers differ (a rank left without lists at an
  // epoch's end has none) nothing changes and every rank returns false.
  bool reduce_metrics(MetricSums& metrics);

  const TrainJob& job_;
  const config::Config& cfg_;
  std::unique_ptr<ProcessGroup> group_;
  // Overlaps the gradient all-reduce with the step's last backward (not with
  // activation checkpointing, whose per-segment backward passes deliver a
  // gradient in parts).
  std::unique_ptr<GradientReducer> reducer_;
  int rank_ = 0, world_ = 1;
  std::string run_dir_;
  std::string resume_checkpoint_;  // "" = fresh run
  torch::Device device_{torch::kCPU};
  int threads_ = 1;

  std::optional<data::ListDataset> train_data_, eval_data_;
  Split train_split_, eval_split_;
  std::optional<data::EpochOrder> order_;
  std::string target_kind_;  // the kind of every list's targets
  data::TokenizeOptions tokenize_;
  std::optional<data::FolderTokenizer> tokenizer_;
  ReferenceTable train_table_, eval_table_;

  std::optional<models::LanguageModel> model_, reference_model_;
  config::LoraOptions lora_;  // cfg_.lora with the architecture's default targets filled in
  std::vector<std::pair<std::string, torch::Tensor>> trainable_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<losses::Loss> loss_;
  losses::LossOptions loss_options_;
  bool needs_sft_ = false;
  ReferenceMode reference_mode_ = ReferenceMode::kNone;
  LrScheduleOptions schedule_;
  std::int64_t total_steps_ = 0, steps_per_epoch_ = 0;
  models::LogprobOptions logprob_options_;

  TrainerState state_;
  MetricsLog metrics_;
  std::int64_t last_saved_step_ = -1;
  std::map<std::string, double> last_eval_;
  std::optional<cli::Progress> progress_;

  // The window since the last log line.
  struct Window {
    std::int64_t steps = 0, lists = 0, tokens = 0, nonfinite = 0;
    double loss_sum = 0, grad_norm_sum = 0, seconds = 0, lr = 0;
    MetricSums metrics;
  } window_;
};

// ------------------------------------------------------------------ setup

void Trainer::prepare_run_directory() {
  run_dir_ = job_.output;
  LIRE_CHECK(!run_dir_.empty(), "--output DIR is required");
  std::error_code ec;
  const bool exists = fs::exists(run_dir_, ec);
  if (exists && !fs::is_directory(run_dir_)) throw ConfigError(str("--output ", run_dir_, " is a file, not a folder"));
  // A folder holding only the run.json and config.yaml of a run that failed
  // during setup (bad data, a wrong path) counts as empty: the fixed command
  // runs again without --resume.
  bool empty = true;
  if (exists)
    for (const auto& entry : fs::directory_iterator(run_dir_)) {
      const auto name = entry.path().filename().string();
      if (!(entry.is_regular_file() && (name == "run.json" || name == "config.yaml"))) empty = false;
    }
  if (!job_.resume_from.empty()) {
    if (!fs::exists(fs::path(job_.resume_from) / "trainer_state.json"))
      throw ConfigError(str("--resume-from ", job_.resume_from,
                            ": not a complete checkpoint (no trainer_state.json); checkpoints are "
                            "<run>/checkpoints/step-N"));
    resume_checkpoint_ = job_.resume_from;
  } else if (job_.resume) {
    resume_checkpoint_ = latest_checkpoint(run_dir_);
    // (An Evolve step's folder holds its pool before the run starts: not worth a warning.)
    if (resume_checkpoint_.empty() && !empty && fs::exists(fs::path(run_dir_) / "metrics.jsonl"))
      spdlog::warn("--resume: no checkpoint in {}; starting from scratch", run_dir_);
  } else if (!empty) {
    throw ConfigError(str("--output ", run_dir_, " is not empty; pass --resume to continue that run, or choose "
                          "another folder"));
  }
  // Every rank has seen the folder as it was; from here on only rank 0 writes.
  if (group_) group_->barrier();
  if (!writer()) return;
  std::error_code made;
  fs::create_directories(run_dir_, made);
  if (made) throw Error(str("--output ", run_dir_, ": cannot create the folder: ", made.message()));
  // A read-only or full disk fails here, not at the first checkpoint.
  check_writable(run_dir_, "--output");

  // run.json: provenance. A resumed run keeps its own; the resume is added to
  // it once the checkpoint has been restored (record_resume), so a resume
  // that fails leaves no entry.
  const std::string run_json = (fs::path(run_dir_) / "run.json").string();
  if (resume_checkpoint_.empty() || !fs::exists(run_json)) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    const nlohmann::json run = {{"lire_version", LIRE_VERSION},
                                {"git_commit", LIRE_GIT_COMMIT},
                                {"libtorch", torch_description()},
                                {"device", device_.str()},
                                {"threads", threads_},
                                {"world_size", world_},
                                {"host", host},
                                {"start_time", utc_timestamp()},
                                {"command_line", job_.command_line},
                                {"resumes", nlohmann::json::array()}};
    config::write_file_atomically(run_json, run.dump(2) + "\n");
  }
  config::write_file_atomically((fs::path(run_dir_) / "config.yaml").string(), cfg_.tree.to_yaml());
}

void Trainer::record_resume() {
  if (!writer()) return;
  const std::string run_json = (fs::path(run_dir_) / "run.json").string();
  nlohmann::json run = nlohmann::json::object();
  {
    std::ifstream in(run_json);
    try {
      run = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
    }
  }
  if (!run.is_object()) run = nlohmann::json::object();  // unreadable: start it again
  if (!run.contains("resumes") || !run["resumes"].is_array()) run["resumes"] = nlohmann::json::array();
  run["resumes"].push_back({{"time", utc_timestamp()}, {"checkpoint", resume_checkpoint_},
                            {"command_line", job_.command_line}});
  config::write_file_atomically(run_json, run.dump(2) + "\n");
}

void Trainer::open_data() {
  const auto& d = cfg_.data;
  if (d.train.empty()) throw ConfigError("data.train: no training data given (a JSONL file of candidate lists)");
  data::ListDatasetOptions opts;
  opts.on_error = d.on_error;
  opts.eval_fraction = d.eval.empty() ? d.eval_fraction : 0.0;
  opts.seed = static_cast<std::uint64_t>(cfg_.runtime.seed);
  opts.max_responses = static_cast<std::size_t>(d.max_responses);
  opts.vocab_size = model_->vocab_size();
  opts.fields = d.fields;
  const auto report = [](const data::ListDataset& ds) {
    const auto& s = ds.stats();
    spdlog::info("{}: {} lists ({} lines, {} skipped)", ds.path(), s.records, s.lines, s.skipped);
    for (const auto& e : s.errors) spdlog::warn("skipped {}", e);
  };
  train_data_.emplace(data::ListDataset::open(d.train, opts));
  report(*train_data_);
  auto [train_idx, eval_idx] = train_data_->split();
  train_split_ = Split{"train", &*train_data_, std::move(train_idx), nullptr, {}};
  if (!d.eval.empty()) {
    data::ListDatasetOptions eval_opts = opts;
    eval_opts.eval_fraction = 0.0;
    eval_data_.emplace(data::ListDataset::open(d.eval, eval_opts));
    report(*eval_data_);
    std::vector<std::size_t> all(eval_data_->size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    eval_split_ = Split{"eval", &*eval_data_, std::move(all), nullptr, {}};
  } else {
    eval_split_ = Split{"eval", &*train_data_, std::move(eval_idx), nullptr, {}};
  }
  if (cfg_.eval.max_lists > 0 && eval_split_.records.size() > static_cast<std::size_t>(cfg_.eval.max_lists))
    eval_split_.records.resize(static_cast<std::size_t>(cfg_.eval.max_lists));
  if (train_split_.records.empty()) throw DataError(str(d.train, ": no training lists left"));
}

models::LanguageModel Trainer::load_base(const std::string& device) const {
  models::LoadOptions load;
  load.dtype = cfg_.model.dtype;
  load.device = device;
  load.adapter = cfg_.model.adapter;
  return models::load_language_model(cfg_.model.path, load);
}

torch::Dtype Trainer::compute_dtype() const {
  return model_->dtype() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

void Trainer::build_model() {
  if (cfg_.model.path.empty()) throw ConfigError("model.path: no model given (a Hugging Face model folder)");
  model_ = load_base(device_.str());
  tokenizer_.emplace(cfg_.model.path, model_->vocab_size(), model_->bos_id());
  lora_ = cfg_.lora;
  if (lora_.targets.empty()) lora_.targets = model_->default_lora_targets();
  spdlog::info("model {}{}: {}, {}", cfg_.model.path,
               cfg_.model.adapter.empty() ? "" : " + adapter " + cfg_.model.adapter + " (merged)", model_->describe(),
               c10::toString(model_->dtype()));
}

void Trainer::resolve_reference_mode() {
  const auto& spec = losses::loss_spec(loss_options_.name);
  const std::string& r = cfg_.train.reference;
  if (!spec.uses_reference) {
    if (r != "auto" && r != "none")
      spdlog::warn("loss '{}' uses no reference policy; train.reference: {} is ignored", spec.name, r);
    reference_mode_ = ReferenceMode::kNone;
  } else if (r == "none") {
    reference_mode_ = ReferenceMode::kNone;
  } else if (r == "adapter-off") {
    if (!cfg_.lora.enabled)
      throw ConfigError("train.reference: adapter-off needs LoRA (lora.enabled: true); full fine-tuning uses "
                        "frozen-copy, precomputed or auto");
    reference_mode_ = ReferenceMode::kAdapterOff;
  } else if (r == "frozen-copy") {
    reference_mode_ = ReferenceMode::kFrozenCopy;
  } else if (r == "precomputed") {
    reference_mode_ = ReferenceMode::kPrecomputed;
  } else {
    reference_mode_ = ReferenceMode::kCached;
  }
  spdlog::info("reference log-probs: {}", mode_name(reference_mode_));
}

// ------------------------------------------------------------------ examples

Example Trainer::make_example(const Split& split, std::size_t record, const data::CandidateList& list) {
  Example ex;
  auto tok = tokenizer_->tokenize(list, tokenize_);
  ex.tokens.prompt_ids = std::move(tok.prompt_ids);
  ex.tokens.response_ids = std::move(tok.response_ids);
  const std::size_t k = ex.tokens.response_ids.size();
  for (const auto& r : ex.tokens.response_ids)
    ex.token_total += static_cast<std::int64_t>(ex.tokens.prompt_ids.size() + r.size());

  auto targets = data::training_targets(list);
  if (target_kind_.empty()) target_kind_ = targets.kind;
  if (targets.kind != target_kind_)
    throw DataError(str(list.where(), ": this list has ", targets.kind, " but earlier lists have ", target_kind_,
                        "; a run trains on one kind of target"));
  ex.targets = std::move(targets.values);

  if (needs_sft_) {
    const std::string& which = loss_options_.sft_target;
    std::int64_t human = -1;
    if (list.human)
      for (std::size_t i = 0; i < list.human->size(); ++i)
        if ((*list.human)[i]) {
          human = static_cast<std::int64_t>(i);
          break;
        }
    if (which == "human" || (which == "auto" && human >= 0)) {
      ex.sft_index = human;
    } else {
      ex.sft_index = std::max_element(ex.targets.begin(), ex.targets.end()) - ex.targets.begin();
    }
  }

  if (reference_mode_ == ReferenceMode::kPrecomputed) {
    if (!list.ref_logps)
      throw DataError(str(list.where(), ": train.reference: precomputed needs ref_logps in every list (lire-score "
                                        "--policy DIR writes them)"));
    ex.ref_logps = *list.ref_logps;
    if (list.ref_token_counts) {
      for (std::size_t i = 0; i < k; ++i) {
        const auto ours = static_cast<std::int64_t>(ex.tokens.response_ids[i].size());
        if ((*list.ref_token_counts)[i] != ours)
          throw DataError(str(list.where(), ": ref_token_counts[", i, "] is ", (*list.ref_token_counts)[i],
                              " but this run tokenizes response ", i, " into ", ours,
                              " tokens; score the data with the same model and data.* options"));
      }
    }
  } else if (reference_mode_ == ReferenceMode::kCached && split.reference) {
    const auto row = static_cast<std::int64_t>(record);
    auto logps = split.reference->logps[row];
    auto counts = split.reference->token_counts[row];
    for (std::size_t i = 0; i < k; ++i) {
      const auto ours = static_cast<std::int64_t>(ex.tokens.response_ids[i].size());
      if (counts[static_cast<std::int64_t>(i)].item<std::int64_t>() != ours)
        throw Error(str(list.where(), ": the reference cache disagrees with this tokenization (response ", i,
                        "); delete ", run_dir_, "/reference to recompute it"));
      ex.ref_logps.push_back(logps[static_cast<std::int64_t>(i)].item<double>());
    }
  }
  return ex;
}

Example Trainer::load_example(const Split& split, std::size_t record) {
  return make_example(split, record, split.dataset->get(record));
}

std::vector<models::ListTokens> Trainer::tokens_of(const std::vector<Example>& batch) const {
  std::vector<models::ListTokens> out;
  out.reserve(batch.size());
  for (const auto& ex : batch) out.push_back(ex.tokens);
  return out;
}

torch::Tensor Trainer::reference_logps(const std::vector<Example>& batch, const models::ListBatchLogprobs& lp) {
  switch (reference_mode_) {
    case ReferenceMode::kNone:
      return {};
    case ReferenceMode::kAdapterOff: {
      torch::NoGradGuard no_grad;
      models::AdaptersDisabled off(**model_);
      return models::batch_logprobs(*model_, tokens_of(batch), logprob_options_).logps.to(lp.logps.scalar_type());
    }
    case ReferenceMode::kFrozenCopy: {
      torch::NoGradGuard no_grad;
      return models::batch_logprobs(*reference_model_, tokens_of(batch), logprob_options_)
          .logps.to(lp.logps.scalar_type());
    }
    case ReferenceMode::kPrecomputed:
    case ReferenceMode::kCached: {
      const auto B = lp.logps.size(0), K = lp.logps.size(1);
      std::vector<double> flat(static_cast<std::size_t>(B * K), 0.0);
      for (std::int64_t b = 0; b < B; ++b)
        for (std::size_t k = 0; k < batch[b].ref_logps.size(); ++k) flat[b * K + k] = batch[b].ref_logps[k];
      return torch::tensor(flat, torch::kFloat64).view({B, K}).to(lp.logps.options());
    }
  }
  return {};
}

losses::LossInput Trainer::make_input(const std::vector<Example>& batch, const models::ListBatchLogprobs& lp,
                                      bool with_reference) {
  const auto B = static_cast<std::int64_t>(batch.size());
  const auto K = lp.logps.size(1);
  std::vector<double> rewards(static_cast<std::size_t>(B * K), 0.0);
  std::vector<std::int64_t> sft(static_cast<std::size_t>(B), -1);
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::size_t k = 0; k < batch[b].targets.size(); ++k) rewards[b * K + k] = batch[b].targets[k];
    sft[b] = batch[b].sft_index;
  }
  losses::LossInput in;
  in.logps = lp.logps;
  in.mask = lp.mask;
  in.token_counts = lp.token_counts;
  in.rewards = torch::tensor(rewards, torch::kFloat64).view({B, K}).to(lp.logps.options());
  if (with_reference) in.ref_logps = reference_logps(batch, lp);
  if (needs_sft_) in.sft_index = torch::tensor(sft, torch::kLong).to(lp.logps.device());
  return in;
}

// Placeholder log-probs with the batch's shape and mask: the loss's
// denominators depend only on these (and the labels).
models::ListBatchLogprobs shape_only(const std::vector<Example>& batch, const torch::TensorOptions& options) {
  const auto B = static_cast<std::int64_t>(batch.size());
  std::int64_t K = 0;
  for (const auto& ex : batch) K = std::max<std::int64_t>(K, ex.tokens.response_ids.size());
  std::vector<std::int64_t> counts(static_cast<std::size_t>(B * K), 1);
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(B * K), 0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::size_t k = 0; k < batch[b].tokens.response_ids.size(); ++k) {
      mask[b * K + k] = 1;
      counts[b * K + k] = static_cast<std::int64_t>(batch[b].tokens.response_ids[k].size());
    }
  models::ListBatchLogprobs lp;
  lp.logps = torch::zeros({B, K}, options);
  lp.token_counts = torch::tensor(counts, torch::kLong).view({B, K}).to(options.device());
  lp.mask = torch::tensor(mask, torch::kUInt8).view({B, K}).to(torch::kBool).to(options.device());
  return lp;
}

// ------------------------------------------------------------------ reference tables

// Validates (tokenizes) every record of a split, dropping the ones that fail
// when data.on_error is skip, and fills `table` (when given) with reference
// log-probs computed by the frozen reference.
void Trainer::prepare_split(Split& split, ReferenceTable* table) {
  if (split.records.empty()) return;
  const bool compute = table != nullptr;
  const auto N = static_cast<std::int64_t>(split.dataset->size());
  std::int64_t K = 0;
  std::vector<std::size_t> kept;
  std::vector<std::pair<std::size_t, Example>> pending;
  std::vector<double> logps_flat;
  std::vector<std::int64_t> counts_flat;
  std::vector<std::vector<double>> rows_logps(compute ? N : 0);
  std::vector<std::vector<std::int64_t>> rows_counts(compute ? N : 0);
  std::size_t skipped = 0, single = 0;
  cli::Progress progress(str(compute ? "reference log-probs " : "checking ", split.name), 
                         static_cast<std::int64_t>(split.records.size()), job_.progress && isatty(2));
  const auto flush = [&] {
    if (pending.empty()) return;
    std::vector<models::ListTokens> tokens;
    for (const auto& p : pending) tokens.push_back(p.second.tokens);
    torch::NoGradGuard no_grad;
    models::ListBatchLogprobs lp;
    if (cfg_.lora.enabled) {  // the frozen base of a LoRA run
      models::AdaptersDisabled off(**model_);
      lp = models::batch_logprobs(*model_, tokens, logprob_options_);
    } else {
      lp = models::batch_logprobs(reference_model_ ? *reference_model_ : *model_, tokens, logprob_options_);
    }
    const auto l = lp.logps.to(torch::kFloat64).cpu();
    const auto c = lp.token_counts.cpu();
    for (std::size_t i = 0; i < pending.size(); ++i) {
      const auto rec = pending[i].first;
      const auto k = pending[i].second.tokens.response_ids.size();
      for (std::size_t j = 0; j < k; ++j) {
        rows_logps[rec].push_back(l[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(j)].item<double>());
        rows_counts[rec].push_back(c[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(j)].item<std::int64_t>());
      }
    }
    progress.advance(static_cast<std::int64_t>(pending.size()));
    pending.clear();
  };
  const auto saved_mode = reference_mode_;
  if (compute) reference_mode_ = ReferenceMode::kNone;  // examples without a reference while computing it
  for (const auto rec : split.records) {
    try {
      Example ex = load_example(split, rec);
      K = std::max<std::int64_t>(K, ex.tokens.response_ids.size());
      kept.push_back(rec);
      if (ex.tokens.response_ids.size() < 2) ++single;
      if (split.lengths.size() != static_cast<std::size_t>(N)) split.lengths.assign(static_cast<std::size_t>(N), 0);
      split.lengths[rec] = ex.tokens.prompt_ids.size();
      for (const auto& r : ex.tokens.response_ids) split.lengths[rec] += r.size();
      if (compute) {
        // Shared out among the ranks: list i is computed by rank i % world; the
        // others hold zeros until the tables are summed below.
        if (world_ > 1 && (kept.size() - 1) % static_cast<std::size_t>(world_) != static_cast<std::size_t>(rank_)) {
          const auto k = ex.tokens.response_ids.size();
          rows_logps[rec].assign(k, 0.0);
          rows_counts[rec].assign(k, 0);
          progress.advance();
          continue;
        }
        pending.emplace_back(rec, std::move(ex));
        if (static_cast<std::int64_t>(pending.size()) >= cfg_.train.batch_size) flush();
      } else {
        progress.advance();
      }
    } catch (const DataError& e) {
      if (cfg_.data.on_error != "skip") {
        reference_mode_ = saved_mode;
        throw;
      }
      if (skipped < 20) spdlog::warn("skipped {}", e.what());
      ++skipped;
    }
  }
  flush();
  reference_mode_ = saved_mode;
  progress.finish();
  if (skipped > 0) spdlog::warn("{}: {} of {} {} lists skipped (data.on_error: skip)", split.dataset->path(), skipped,
                                split.records.size(), split.name);
  if (single > 0 && loss_options_.name != "sft")
    spdlog::warn("{}: {} of {} {} lists have a single response: the {} loss learns nothing from them{}",
                 split.dataset->path(), single, kept.size(), split.name, loss_options_.name,
                 loss_options_.sft_weight > 0 ? " (only its sft term does)" : "");
  split.records = std::move(kept);
  if (compute) {
    table->logps = torch::zeros({N, K}, torch::kFloat64);
    table->token_counts = torch::zeros({N, K}, torch::kLong);
    auto la = table->logps.accessor<double, 2>();
    auto ca = table->token_counts.accessor<std::int64_t, 2>();
    for (std::int64_t r = 0; r < N; ++r)
      for (std::size_t j = 0; j < rows_logps[r].size(); ++j) {
        la[r][static_cast<std::int64_t>(j)] = rows_logps[r][j];
        ca[r][static_cast<std::int64_t>(j)] = rows_counts[r][j];
      }
    if (group_) {  // every rank computed its share; each entry is non-zero on one rank only
      std::vector<torch::Tensor> parts = {table->logps.to(device_), table->token_counts.to(device_)};
      group_->all_reduce_sum(parts);
      table->logps = parts[0].cpu();
      table->token_counts = parts[1].cpu();
      la = table->logps.accessor<double, 2>();
    }
    for (std::int64_t r = 0; r < N; ++r)  // no response there
      for (auto j = static_cast<std::int64_t>(rows_logps[r].size()); j < K; ++j)
        la[r][j] = std::numeric_limits<double>::quiet_NaN();
  }
}

void Trainer::prepare_reference_tables() {
  // The key of a cache: everything the numbers depend on.
  const auto key_for = [&](const data::ListDataset& ds) {
    nlohmann::json key = {{"lire_version", LIRE_VERSION},
                          {"model", folder_fingerprint(cfg_.model.path)},
                          {"model_dtype", c10::toString(model_->dtype())},
                          {"data", file_fingerprint(ds.path())},
                          {"records", ds.size()},
                          {"on_error", cfg_.data.on_error},
                          {"fields", cfg_.data.fields},
                          {"max_responses", cfg_.data.max_responses},
                          {"seed", cfg_.runtime.seed},
                          {"prompt_template", tokenize_.prompt_template},
                          {"append_eos", tokenize_.append_eos},
                          {"max_length", tokenize_.max_length},
                          {"max_prompt_length", tokenize_.max_prompt_tokens},
                          {"max_response_length", tokenize_.max_response_tokens}};
    key["adapter"] = cfg_.model.adapter.empty() ? nlohmann::json(nullptr) : folder_fingerprint(cfg_.model.adapter);
    return key;
  };
  const bool cached = reference_mode_ == ReferenceMode::kCached;
  const bool separate_eval = eval_data_.has_value();
  // Records the cache must cover: for a split of one file, both splits.
  const auto do_dataset = [&](Split& primary, Split* other, ReferenceTable& table) {
    if (!cached) {
      prepare_split(primary, nullptr);
      if (other) prepare_split(*other, nullptr);
      return;
    }
    const auto key = key_for(*primary.dataset);
    const std::string name = primary.dataset == &*train_data_ ? "train" : "eval";
    const std::string path = (fs::path(run_dir_) / "reference" / (name + ".safetensors")).string();
    if (auto loaded = load_reference_table(path, key)) {
      spdlog::info("reference log-probs of {} read from {}", primary.dataset->path(), path);
      table = std::move(*loaded);
      prepare_split(primary, nullptr);
      if (other) prepare_split(*other, nullptr);
    } else {
      // One pass over every record the run uses from this file.
      Split all{primary.name, primary.dataset, primary.records, nullptr, {}};
      if (other) {
        all.records.insert(all.records.end(), other->records.begin(), other->records.end());
        std::sort(all.records.begin(), all.records.end());
      }
      // A full-fine-tuning resume needs the initial weights to recompute.
      if (!cfg_.lora.enabled && !resume_checkpoint_.empty() && !reference_model_) {
        reference_model_ = load_base(device_.str());
        (*reference_model_)->eval();
      }
      const auto t0 = Clock::now();
      (*model_)->eval();
      prepare_split(all, &table);
      primary.lengths = all.lengths;
      if (other) other->lengths = all.lengths;
      (*model_)->train();
      if (writer()) save_reference_table(path, key, table);
      spdlog::info("reference log-probs of {} lists computed in {} and cached in {}", all.records.size(),
                   format_duration(seconds_since(t0)), path);
      const auto keep = [&](Split& s) {
        std::vector<std::size_t> kept;
        for (auto r : s.records)
          if (std::binary_search(all.records.begin(), all.records.end(), r)) kept.push_back(r);
        s.records = std::move(kept);
      };
      keep(primary);
      if (other) keep(*other);
      if (!cfg_.lora.enabled && !resume_checkpoint_.empty()) reference_model_.reset();
    }
    primary.reference = &table;
    if (other) other->reference = &table;
  };
  if (separate_eval) {
    do_dataset(train_split_, nullptr, train_table_);
    do_dataset(eval_split_, nullptr, eval_table_);
  } else {
    do_dataset(train_split_, &eval_split_, train_table_);
  }
  if (train_split_.records.empty()) throw DataError(str(cfg_.data.train, ": no training lists left"));
}

// ------------------------------------------------------------------ steps

bool Trainer::train_step() {
  const auto t0 = Clock::now();
  const auto& order = order_->order(static_cast<std::size_t>(state_.epoch));
  const auto n = static_cast<std::int64_t>(order.size());
  // The step's lists: batch_size x grad_accum per rank, world_ ranks.
  const std::int64_t want = cfg_.train.batch_size * cfg_.train.grad_accum * world_;
  std::vector<std::size_t> records;
  while (static_cast<std::int64_t>(records.size()) < want && state_.position < n)
    records.push_back(order[static_cast<std::size_t>(state_.position++)]);
  if (state_.position >= n) {
    ++state_.epoch;
    state_.position = 0;
  }

  // Micro-batches, and the denominators of the whole step. Micro-batch i of
  // the step is lists [i * B * W, (i + 1) * B * W) of `records`, of which rank
  // r trains on [i * B * W + r * B, + B): together the ranks train on exactly
  // the lists one process would with batch_size B * W.
  const auto B = static_cast<std::size_t>(cfg_.train.batch_size);
  const auto W = static_cast<std::size_t>(world_);
  std::vector<std::vector<Example>> micro;
  for (std::size_t i = 0; i < records.size(); i += B * W) {
    std::vector<Example> mb;
    const std::size_t begin = std::min(records.size(), i + B * static_cast<std::size_t>(rank_));
    for (std::size_t j = begin; j < std::min(records.size(), begin + B); ++j)
      mb.push_back(load_example(train_split_, records[j]));
    if (!mb.empty()) micro.push_back(std::move(mb));
  }
  const auto compute_options = torch::TensorOptions().dtype(compute_dtype()).device(device_);
  double den = 0, sft_den = 0;
  for (const auto& mb : micro) {
    torch::NoGradGuard no_grad;
    const auto lp = shape_only(mb, compute_options);
    auto in = make_input(mb, lp, false);
    const auto out = loss_->forward(in);
    den += out.denominator.item<double>();
    sft_den += out.sft_denominator.defined() ? out.sft_denominator.item<double>() : 0.0;
  }
  if (group_) {  // the loss's normalisers are those of the global batch
    const auto sums = group_->all_reduce_sum(std::vector<double>{den, sft_den});
    den = sums[0];
    sft_den = sums[1];
  }

  bool finite = true;
  double step_loss = 0;
  std::int64_t tokens = 0;
  MetricSums metrics;
  (*model_)->train();
  for (const auto& mb : micro) {
    for (const auto& ex : mb) tokens += ex.token_total;
    if (!finite) continue;
    if (reducer_ && &mb == &micro.back()) reducer_->arm();  // its backward starts the gradient all-reduce
    const auto lp = models::batch_logprobs(*model_, tokens_of(mb), logprob_options_);
    if (!torch::isfinite(lp.logps.masked_select(lp.mask)).all().item<bool>()) {
      finite = false;
      continue;
    }
    auto in = make_input(mb, lp, true);
    if (in.ref_logps.defined() && !torch::isfinite(in.ref_logps.masked_select(lp.mask)).all().item<bool>()) {
      finite = false;
      continue;
    }
    const auto out = loss_->forward(in);
    torch::Tensor part = out.numerator / std::max(den, 1.0);
    if (out.sft_weight > 0 && out.sft_numerator.defined())
      part = part + out.sft_weight * out.sft_numerator / std::max(sft_den, 1.0);
    const double value = part.item<double>();
    if (!std::isfinite(value)) {
      finite = false;
      continue;
    }
    if (part.requires_grad()) part.backward();
    step_loss += value;
    metrics.add(out.metrics);
  }
  if (group_) {
    // Every rank steps or none does; the gradients and the loss are the global batch's.
    const bool overlapped = reducer_ && reducer_->finish();
    const auto flags = group_->all_reduce_min(std::vector<double>{finite ? 1.0 : 0.0, overlapped ? 1.0 : 0.0});
    finite = flags[0] > 0.5;
    if (finite && flags[1] > 0.5)
      reducer_->commit();
    else if (finite)
      all_reduce_gradients();
    const auto sums = group_->all_reduce_sum(std::vector<double>{step_loss, static_cast<double>(tokens)});
    step_loss = sums[0];
    tokens = static_cast<std::int64_t>(sums[1]);
    // Metrics: summed when every rank has the same ones (else each rank's own are logged).
    reduce_metrics(metrics);
  }
  GradNorm norm;
  if (finite) {
    norm = clip_grad_norm(params_, cfg_.train.max_grad_norm);
    finite = norm.finite;
  }
  const double lr = lr_at(schedule_, state_.step);
  if (finite) {
    set_lr(*optimizer_, lr);
    optimizer_->step();
    state_.nonfinite_in_a_row = 0;
  } else {
    ++state_.nonfinite_steps;
    ++state_.nonfinite_in_a_row;
    spdlog::warn("step {}: non-finite {}; the step is skipped ({} in a row)", state_.step + 1,
                 norm.finite ? "log-probs or loss" : "gradient", state_.nonfinite_in_a_row);
  }
  zero_grads(params_);
  ++state_.step;
  const double seconds = seconds_since(t0);
  state_.lists_seen += static_cast<std::int64_t>(records.size());  // the global batch's
  state_.tokens_seen += tokens;
  state_.train_seconds += seconds;

  window_.steps += 1;
  window_.lists += static_cast<std::int64_t>(records.size());
  window_.tokens += tokens;
  window_.seconds += seconds;
  window_.lr = lr;
  if (finite) {
    window_.loss_sum += step_loss;
    window_.grad_norm_sum += norm.norm;
    for (const auto& [name, v] : metrics.values) window_.metrics.add(name, v.first, v.second);
  } else {
    window_.nonfinite += 1;
  }
  if (state_.nonfinite_in_a_row >= cfg_.train.max_nonfinite_steps) {
    const std::string last = latest_checkpoint(run_dir_);
    throw Error(str(state_.nonfinite_in_a_row, " non-finite steps in a row (up to step ", state_.step,
                    "): the loss or the gradients are NaN/Inf; lower train.lr or check the data. ",
                    last.empty() ? std::string("No checkpoint was saved.") : "Last checkpoint: " + last));
  }
  return finite;
}

void Trainer::log_train_line() {
  if (window_.steps == 0) return;
  const double good = static_cast<double>(window_.steps - window_.nonfinite);
  nlohmann::json rec = {{"step", state_.step}, {"epoch", epoch_progress()}};
  const double loss = good > 0 ? window_.loss_sum / good : std::nan("");
  const double gnorm = good > 0 ? window_.grad_norm_sum / good : std::nan("");
  const double lists_per_s = window_.seconds > 0 ? window_.lists / window_.seconds : 0.0;
  const double tokens_per_s = window_.seconds > 0 ? window_.tokens / window_.seconds : 0.0;
  if (good > 0) {
    rec["train/loss"] = loss;
    rec["train/grad_norm"] = gnorm;
  }
  rec["train/lr"] = window_.lr;
  rec["train/lists_per_s"] = lists_per_s;
  rec["train/tokens_per_s"] = tokens_per_s;
  rec["train/nonfinite_steps"] = state_.nonfinite_steps;
  for (const auto& [name, v] : window_.metrics.values) rec["train/" + name] = window_.metrics.value(name);
  metrics_.write(rec);
  const double per_step = state_.step > 0 ? state_.train_seconds / static_cast<double>(state_.step) : 0.0;
  const std::string line =
      fmt::format("step {}/{} epoch {:.2f} loss {:.4f} lr {:.2e} grad_norm {:.3f} lists/s {:.1f} tokens/s {:.0f} eta {}",
                  state_.step, total_steps_, epoch_progress(), loss, window_.lr, gnorm, lists_per_s, tokens_per_s,
                  format_duration(per_step * static_cast<double>(total_steps_ - state_.step)));
  if (progress_) std::fputs("\r\033[K", stderr);
  spdlog::info("{}", line);
  window_ = Window{};
}

// ------------------------------------------------------------------ eval

std::map<std::string, double> Trainer::evaluate() {
  std::map<std::string, double> result;
  if (eval_split_.records.empty()) return result;
  const auto t0 = Clock::now();
  torch::NoGradGuard no_grad;
  (*model_)->eval();
  std::vector<losses::LossOutput> parts;
  MetricSums metrics;
  double best_sum = 0, best_count = 0;
  const auto bs = static_cast<std::size_t>(cfg_.eval.batch_size);
  // Data parallel: batch k is rank k % W's when every rank gets one.
  const std::size_t batches = (eval_split_.records.size() + bs - 1) / bs;
  const bool shard = group_ && batches >= static_cast<std::size_t>(world_);
  for (std::size_t i = 0; i < eval_split_.records.size(); i += bs) {
    if (shard && (i / bs) % static_cast<std::size_t>(world_) != static_cast<std::size_t>(rank_)) continue;
    std::vector<Example> batch;
    for (std::size_t j = i; j < std::min(eval_split_.records.size(), i + bs); ++j)
      batch.push_back(load_example(eval_split_, eval_split_.records[j]));
    const auto lp = models::batch_logprobs(*model_, tokens_of(batch), logprob_options_);
    auto in = make_input(batch, lp, true);
    auto out = loss_->forward(in);
    metrics.add(out.metrics);
    const auto l = lp.logps.to(torch::kFloat64).cpu();
    for (std::size_t b = 0; b < batch.size(); ++b) {
      const auto& t = batch[b].targets;
      const auto best = std::max_element(t.begin(), t.end()) - t.begin();
      best_sum += l[static_cast<std::int64_t>(b)][best].item<double>();
      best_count += 1;
    }
    parts.push_back(std::move(out));
  }
  (*model_)->train();
  if (shard) {
    // The loss's numerators and normalisers, the metrics and best_logp, summed over the ranks.
    const auto value = [](const torch::Tensor& t) { return t.defined() ? t.item<double>() : 0.0; };
    double num = 0, den = 0, sft_num = 0, sft_den = 0;
    for (const auto& p : parts) {
      num += value(p.numerator);
      den += value(p.denominator);
      sft_num += value(p.sft_numerator);
      sft_den += value(p.sft_denominator);
    }
    auto sums = group_->all_reduce_sum(std::vector<double>{num, den, sft_num, sft_den, best_sum, best_count});
    const double sft_weight = parts.front().sft_weight;
    result["eval/loss"] = sums[0] / std::max(sums[1], 1.0) +
                          (sft_weight > 0 ? sft_weight * sums[2] / std::max(sums[3], 1.0) : 0.0);
    best_sum = sums[4];
    best_count = sums[5];
    LIRE_CHECK(reduce_metrics(metrics), "evaluation: the ranks computed different metrics");
  } else {
    result["eval/loss"] = losses::combine(parts).item<double>();
  }
  for (const auto& [name, v] : metrics.values) result["eval/" + name] = metrics.value(name);
  result["eval/best_logp"] = best_count > 0 ? best_sum / best_count : 0.0;
  state_.last_eval_step = state_.step;
  nlohmann::json rec = {{"step", state_.step}, {"epoch", epoch_progress()}};
  std::string line = fmt::format("eval at step {}:", state_.step);
  for (const auto& [k, v] : result) {
    rec[k] = v;
    line += fmt::format(" {} {:.4f}", k.substr(5), v);
  }
  rec["eval/lists"] = eval_split_.records.size();
  metrics_.write(rec);
  if (progress_) std::fputs("\r\033[K", stderr);
  spdlog::info("{} ({} lists, {})", line, eval_split_.records.size(), format_duration(seconds_since(t0)));
  last_eval_ = result;
  return result;
}

bool Trainer::better(double value) const {
  if (state_.best_step < 0) return true;
  std::string mode = cfg_.output.keep_best_mode;
  if (mode == "auto") mode = cfg_.output.keep_best == "eval/loss" ? "min" : "max";
  return mode == "max" ? value > state_.best_value : value < state_.best_value;
}

void Trainer::after_eval(const std::map<std::string, double>& metrics) {
  const auto& metric = cfg_.output.keep_best;
  if (metric.empty() || metrics.empty()) return;
  const auto it = metrics.find(metric);
  if (it == metrics.end()) {
    std::vector<std::string> names;
    for (const auto& m : metrics) names.push_back(m.first);
    throw ConfigError(str("output.keep_best: ", metric, " is not an eval metric of this run (", join_sorted(names), ")"));
  }
  if (!better(it->second)) return;
  state_.best_metric = metric;
  state_.best_value = it->second;
  state_.best_step = state_.step;
  spdlog::info("new best {} {:.4f} at step {}", metric, it->second, state_.step);
  save_checkpoint();
}

// ------------------------------------------------------------------ saving

void Trainer::save_checkpoint() {
  if (last_saved_step_ == state_.step) return;
  // Every rank's generator states (its dropout stream), gathered to rank 0.
  std::vector<std::pair<std::string, torch::Tensor>> rank_rng;
  if (group_) {
    std::vector<std::pair<std::string, torch::Tensor>> mine = {{"cpu", generator_state(torch::kCPU)}};
    if (device_.is_cuda()) mine.emplace_back("cuda", generator_state(device_));
    for (const auto& [name, state] : mine) {
      auto all = torch::zeros({world_, state.numel()}, torch::kInt32);
      all[rank_].copy_(state.to(torch::kInt32));
      std::vector<torch::Tensor> t = {all.to(device_)};
      group_->all_reduce_sum(t);
      const auto gathered = t[0].cpu().to(torch::kUInt8);
      for (int r = 1; r < world_; ++r) rank_rng.emplace_back(str("rank", r, ".", name), gathered[r].clone());
    }
  }
  if (!writer()) {  // rank 0 saves the weights every rank holds
    last_saved_step_ = state_.step;
    return;
  }
  const auto t0 = Clock::now();
  write_checkpoint(run_dir_, state_.step, [&](const std::string& folder) {
    const fs::path f(folder);
    if (cfg_.lora.enabled) {
      models::save_lora_adapter(**model_, (f / "adapter").string(), lora_, cfg_.model.path, model_->peft_task_type());
    } else {
      fs::create_directories(f / "model");
      std::vector<std::pair<std::string, torch::Tensor>> tensors;
      for (const auto& p : (*model_)->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
      io::save_safetensors((f / "model" / "model.safetensors").string(), tensors);
      // config.json with torch_dtype naming the dtype the tensors were saved in.
      std::ifstream in((fs::path(cfg_.model.path) / "config.json").string());
      nlohmann::json hf = nlohmann::json::parse(in);
      hf["torch_dtype"] = models::hf_dtype_name(model_->dtype());
      config::write_file_atomically((f / "model" / "config.json").string(), hf.dump(2) + "\n");
    }
    save_optimizer(*optimizer_, (f / "optimizer.pt").string());
    save_rng_state((f / "rng.safetensors").string(), rank_rng);
    config::write_file_atomically((f / "config.yaml").string(), cfg_.tree.to_yaml());
    config::write_file_atomically((f / "trainer_state.json").string(), state_.to_json().dump(2) + "\n");
  });
  last_saved_step_ = state_.step;
  prune_checkpoints(run_dir_, cfg_.output.keep_last, state_.best_step);
  spdlog::info("checkpoint {} saved in {}", checkpoint_path(run_dir_, state_.step), format_duration(seconds_since(t0)));
}

void Trainer::stop_if_requested() {
  int signal = stop_requested();
  // Every rank stops at the same step: the largest request of any rank.
  if (group_) signal = static_cast<int>(-group_->all_reduce_min(-static_cast<double>(signal)));
  if (signal == 0) return;
  if (progress_) std::fputs("\r\033[K", stderr);
  spdlog::warn("signal {} received: saving the checkpoint of step {} and stopping", signal, state_.step);
  save_checkpoint();
  if (group_) group_->barrier();  // rank 0's checkpoint is complete before any rank exits
  const std::string checkpoint = checkpoint_path(run_dir_, state_.step);
  spdlog::warn("stopped at step {} of {} by signal {}; {} is the latest checkpoint: run the same command with "
               "--resume to continue (exit status {})",
               state_.step, total_steps_, signal, checkpoint, stopped_exit_status(signal));
  throw Stopped(signal, state_.step, checkpoint);
}

void Trainer::restore(const std::string& checkpoint) {
  const fs::path f(checkpoint);
  std::ifstream in((f / "trainer_state.json").string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(str((f / "trainer_state.json").string(), ": not valid JSON (", e.what(), ")"));
  }
  state_ = TrainerState::from_json(j, (f / "trainer_state.json").string());
  load_trained(checkpoint);
  // Warn when the config changed since the checkpoint (resume is exact only with the same one).
  std::ifstream saved((f / "config.yaml").string());
  std::stringstream text;
  text << saved.rdbuf();
  if (text.str() != cfg_.tree.to_yaml())
    spdlog::warn("the config differs from the one saved in {}; the run continues with the new one", checkpoint);
}

void Trainer::load_trained(const std::string& checkpoint) {
  const fs::path f(checkpoint);
  if (cfg_.lora.enabled) {
    if (!fs::exists(f / "adapter"))
      throw Error(str(checkpoint, ": no adapter/ folder; was this run full fine-tuning (lora.enabled: false)?"));
    const std::string folder = (f / "adapter").string();
    const auto saved = models::load_lora_adapter(**model_, folder, compute_dtype());
    // The adapter's shape and scaling are the run's: a config asking for
    // others would be silently ignored (and the optimizer state would not fit).
    const auto differs = [&](const std::string& key, const std::string& config_value, const std::string& saved_value) {
      throw ConfigError(str("lora.", key, " is ", config_value, " but the adapter in ", folder, " has ", saved_value,
                            "; set lora.", key, ": ", saved_value, " (an adapter keeps the LoRA settings it was "
                            "trained with)"));
    };
    if (saved.r != lora_.r) differs("r", std::to_string(lora_.r), std::to_string(saved.r));
    if (std::abs(saved.alpha - lora_.alpha) > 1e-9 * std::max(1.0, std::abs(saved.alpha)))
      differs("alpha", fmt::format("{}", lora_.alpha), fmt::format("{}", saved.alpha));
    if (saved.rslora != lora_.rslora) differs("rslora", lora_.rslora ? "true" : "false", saved.rslora ? "true" : "false");
    const auto want = models::lora_target_paths(**model_, lora_.targets), have = models::adapted_paths(**model_);
    if (want != have)
      differs("targets", str("[", join_sorted(lora_.targets), "]"), str("[", join_sorted(saved.targets), "]"));
    models::set_lora_dropout(**model_, lora_.dropout);  // the config's dropout, as any other training setting
  } else {
    if (!fs::exists(f / "model"))
      throw Error(str(checkpoint, ": no model/ folder; was this run a LoRA run (lora.enabled: true)?"));
    const auto unused = models::load_parameters(**model_, io::CheckpointReader((f / "model").string()));
    if (!unused.empty()) throw Error(str(checkpoint, "/model: unexpected tensor ", unused.front()));
  }
}

void Trainer::write_final() {
  if (!writer()) return;
  // A finished run resumed again: final/ already holds these weights (rewriting
  // it would only change its files' times, which the reference caches of runs
  // built on it compare).
  const fs::path done = fs::path(run_dir_) / "final";
  if (fs::exists(done / "trainer_state.json") && fs::exists(done / "config.yaml")) {
    std::ifstream state_in((done / "trainer_state.json").string()), config_in((done / "config.yaml").string());
    const auto saved = nlohmann::json::parse(state_in, nullptr, /*allow_exceptions=*/false);
    std::stringstream config_text;
    config_text << config_in.rdbuf();
    if (saved.is_object() && saved.value("step", std::int64_t{-1}) == state_.step &&
        config_text.str() == cfg_.tree.to_yaml()) {
      spdlog::info("{} is up to date", done.string());
      return;
    }
  }
  // Leftovers of a writer killed while replacing final/ (rank 0 is the run's only writer).
  for (const auto& entry : fs::directory_iterator(run_dir_)) {
    const auto name = entry.path().filename().string();
    if (entry.is_directory() && (name.rfind("final.tmp.", 0) == 0 || name.rfind("final.old.", 0) == 0)) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  }
  models::ExportOptions exp;
  exp.dtype = cfg_.output.dtype;
  config::write_folder_atomically((fs::path(run_dir_) / "final").string(), [&](const std::string& tmp_folder) {
    const fs::path tmp(tmp_folder);
    if (cfg_.lora.enabled) {
      models::save_lora_adapter(**model_, (tmp / "adapter").string(), lora_, cfg_.model.path,
                                model_->peft_task_type());
      if (cfg_.output.merge) {
        // Merge into a fresh copy so the trained model stays as it is.
        auto merged = load_base("cpu");
        models::load_lora_adapter(*merged, (tmp / "adapter").string(), compute_dtype());
        models::merge_lora(*merged);
        models::save_hf_folder(*merged, cfg_.model.path, (tmp / "merged").string(), exp);
      }
    } else {
      models::save_hf_folder(**model_, cfg_.model.path, (tmp / "model").string(), exp);
    }
    config::write_file_atomically((tmp / "config.yaml").string(), cfg_.tree.to_yaml());
    config::write_file_atomically((tmp / "trainer_state.json").string(), state_.to_json().dump(2) + "\n");
  });
}

// ------------------------------------------------------------------ run

TrainResult Trainer::run() {
  device_ = resolve_device(cfg_.runtime.device);
  torch::manual_seed(static_cast<std::uint64_t>(cfg_.runtime.seed));  // LoRA init, dropout: runtime.seed
  threads_ = torch::get_num_threads();
  connect_ranks();
  prepare_run_directory();
  loss_options_ = cfg_.loss;
  tokenize_ = data::tokenize_options(cfg_.data);
  logprob_options_.max_sequences = cfg_.train.max_sequences;
  logprob_options_.shared_prompt = cfg_.model.shared_prompt;

  build_model();
  model_->set_gradient_checkpointing(cfg_.train.checkpointing);
  tokenize_.prompt_eos = model_->is_t5();
  open_data();

  // The targets' kind decides the label transform where the config left it open.
  target_kind_.clear();
  {
    const auto first = data::training_targets(train_split_.dataset->get(train_split_.records.front()));
    target_kind_ = first.kind;
    const auto& spec = losses::loss_spec(loss_options_.name);
    const bool takes_labels =
        std::find(spec.option_keys.begin(), spec.option_keys.end(), "label_transform") != spec.option_keys.end();
    const bool explicit_transform = cfg_.tree.find("loss.label_transform") != nullptr;
    if (takes_labels && target_kind_ == "labels" && loss_options_.label_transform != "none") {
      if (explicit_transform)
        throw ConfigError(str("loss.label_transform: the data has labels (psi in [0, 1]), which need "
                              "label_transform: none, not ", loss_options_.label_transform));
      loss_options_.label_transform = "none";
      spdlog::info("the data has labels: loss.label_transform none");
    } else if (takes_labels && target_kind_ == "ranks" && !explicit_transform) {
      loss_options_.label_transform = "rank-winrate";
      spdlog::info("the data has ranks: loss.label_transform rank-winrate");
    }
  }
  loss_ = losses::make(loss_options_);
  needs_sft_ = loss_options_.name == "sft" || loss_options_.sft_weight > 0;
  resolve_reference_mode();

  // LoRA (or full fine-tuning), then the reference model where one is needed.
  if (reference_mode_ == ReferenceMode::kFrozenCopy) {
    reference_model_ = load_base(device_.str());
    (*reference_model_)->eval();
    for (auto& p : (*reference_model_)->parameters()) p.set_requires_grad(false);
  }
  const auto adapter_dtype = compute_dtype();
  if (!resume_checkpoint_.empty()) {
    restore(resume_checkpoint_);
  } else if (!job_.init_from.empty()) {
    load_trained(job_.init_from);
    spdlog::info("trainable parameters from {}", job_.init_from);
  } else if (cfg_.lora.enabled) {
    const auto adapted = models::apply_lora(**model_, lora_, adapter_dtype);
    spdlog::info("LoRA r={} alpha={} on {} modules", lora_.r, lora_.alpha, adapted.size());
  }
  if (cfg_.lora.enabled) {
    trainable_ = models::lora_parameters(**model_);
  } else {
    for (const auto& p : (*model_)->named_parameters()) {
      p.value().set_requires_grad(true);
      trainable_.emplace_back(p.key(), p.value());
    }
  }
  std::int64_t n_trainable = 0;
  for (const auto& p : trainable_) n_trainable += p.second.numel();
  spdlog::info("{} trainable parameters ({} tensors)", n_trainable, trainable_.size());

  // Data checks and reference log-probs, before the first step.
  prepare_reference_tables();
  order_.emplace(train_split_.records, static_cast<std::uint64_t>(cfg_.runtime.seed), cfg_.data.shuffle);
  if (cfg_.data.length_grouping) {
    // Runs of one rank's micro-batch, windows of 64 optimizer steps.
    const auto group = static_cast<std::size_t>(cfg_.train.batch_size);
    order_->group_by_length(train_split_.lengths, group,
                            group * static_cast<std::size_t>(cfg_.train.grad_accum * world_) * 64);
  }
  const auto lists_per_step = cfg_.train.batch_size * cfg_.train.grad_accum;
  steps_per_epoch_ = (static_cast<std::int64_t>(train_split_.records.size()) + lists_per_step - 1) / lists_per_step;
  total_steps_ = cfg_.train.max_steps > 0 ? cfg_.train.max_steps : steps_per_epoch_ * cfg_.train.epochs;
  spdlog::info("{} training lists, {} eval lists; {} lists a step, {} steps an epoch, {} steps", train_split_.records.size(),
               eval_split_.records.size(), lists_per_step, steps_per_epoch_, total_steps_);
  if (eval_split_.records.empty()) spdlog::info("no eval lists (data.eval / data.eval_fraction): evaluation is off");
  if (!cfg_.output.keep_best.empty() && eval_split_.records.empty())
    throw ConfigError("output.keep_best needs eval lists (data.eval or data.eval_fraction)");

  schedule_.kind = cfg_.train.lr_schedule;
  schedule_.lr = cfg_.train.lr;
  schedule_.total_steps = total_steps_;
  schedule_.warmup_steps = resolve_warmup(cfg_.train.warmup_steps, cfg_.train.warmup_ratio, total_steps_);
  if (schedule_.warmup_steps > total_steps_) {
    spdlog::warn("train.warmup_steps {} is longer than the run ({} steps): the warmup is cut to {}",
                 schedule_.warmup_steps, total_steps_, total_steps_);
    schedule_.warmup_steps = total_steps_;
  }
  schedule_.min_lr_ratio = cfg_.train.min_lr_ratio;
  validate(schedule_);
  OptimizerOptions opt;
  opt.lr = cfg_.train.lr;
  opt.weight_decay = cfg_.train.weight_decay;
  opt.beta1 = cfg_.train.adam_beta1;
  opt.beta2 = cfg_.train.adam_beta2;
  opt.eps = cfg_.train.adam_eps;
  optimizer_ = make_adamw(trainable_, opt);
  params_ = all_params(*optimizer_);
  if (group_ && !cfg_.train.checkpointing) {
    reducer_ = std::make_unique<GradientReducer>(*group_, params_);
    spdlog::info("gradients: summed over the ranks in {} bucket(s), started during backward", reducer_->buckets());
  } else if (group_) {
    spdlog::info("gradients: summed over the ranks after backward (train.checkpointing)");
  }
  if (!resume_checkpoint_.empty()) {
    const std::string optimizer_file = (fs::path(resume_checkpoint_) / "optimizer.pt").string();
    if (!fs::exists(optimizer_file)) throw Error(str(optimizer_file, ": not found (an incomplete checkpoint copy?)"));
    try {
      torch::load(*optimizer_, optimizer_file);
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      throw Error(str(optimizer_file, ": cannot read the optimizer state (", what.substr(0, what.find('\n')), ")"));
    }
    load_rng_state((fs::path(resume_checkpoint_) / "rng.safetensors").string(), rank_, device_);
    last_saved_step_ = state_.step;
    spdlog::info("resumed from {} at step {} (epoch {}, list {} of it)", resume_checkpoint_, state_.step,
                 state_.epoch, state_.position);
    record_resume();
  } else {
    state_ = TrainerState{};
    state_.best_metric = cfg_.output.keep_best;
  }
  if (writer())
    metrics_.open((fs::path(run_dir_) / "metrics.jsonl").string(), resume_checkpoint_.empty() ? -1 : state_.step);
  if (!resume_checkpoint_.empty()) {
    // The last evaluation before the checkpoint, for the summary of a run that resumes at its end.
    std::ifstream in((fs::path(run_dir_) / "metrics.jsonl").string());
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || !j.contains("eval/loss")) continue;
      last_eval_.clear();
      for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key().rfind("eval/", 0) == 0 && it.key() != "eval/lists" && it.value().is_number())
          last_eval_[it.key()] = it.value().get<double>();
    }
  }

  if (job_.progress && isatty(2)) progress_.emplace("train", total_steps_, true);
  if (progress_ && state_.step > 0) progress_->advance(state_.step);

  if (state_.step == 0 && cfg_.eval.at_start && state_.last_eval_step < 0) after_eval(evaluate());
  while (state_.step < total_steps_) {
    stop_if_requested();
    train_step();
    if (progress_) progress_->advance();
    const bool last = state_.step == total_steps_;
    if (state_.step % cfg_.train.log_every == 0 || last) log_train_line();
    test_step_pause();
    if (cfg_.eval.every > 0 && state_.step % cfg_.eval.every == 0 && !last) after_eval(evaluate());
    if (cfg_.output.save_every > 0 && state_.step % cfg_.output.save_every == 0 && !last) save_checkpoint();
  }
  stop_if_requested();
  if (progress_) progress_->finish();
  if (state_.last_eval_step != state_.step) after_eval(evaluate());
  save_checkpoint();
  write_final();

  TrainResult result;
  result.steps = state_.step;
  result.nonfinite_steps = state_.nonfinite_steps;
  result.eval = last_eval_;
  result.final_dir = (fs::path(run_dir_) / "final").string();
  result.lists_per_s = state_.train_seconds > 0 ? state_.lists_seen / state_.train_seconds : 0.0;
  result.tokens_per_s = state_.train_seconds > 0 ? state_.tokens_seen / state_.train_seconds : 0.0;
  std::string summary = fmt::format("done: {} steps ({} skipped) in {}, {:.2f} lists/s, {:.0f} tokens/s", state_.step,
                                    state_.nonfinite_steps, format_duration(state_.train_seconds), result.lists_per_s,
                                    result.tokens_per_s);
  for (const char* k : {"eval/loss", "eval/pair_accuracy"})
    if (last_eval_.count(k)) summary += fmt::format("; {} {:.4f}", k, last_eval_.at(k));
  spdlog::info("{}; outputs in {}", summary, result.final_dir);
  return result;
}

}  // namespace

void Trainer::connect_ranks() {
  const DistEnv env = read_dist_env();
  if (!env.distributed()) return;
  if (device_.is_cuda()) device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  group_ = ProcessGroup::connect(env, cfg_.runtime.dist_timeout_s, device_);
  rank_ = group_->rank();
  world_ = group_->size();
  if (!writer()) spdlog::set_level(spdlog::level::warn);  // rank 0 logs for the job
  spdlog::info("data parallel: {} ranks ({}), {} lists a rank a micro-batch", world_, group_->backend(),
               cfg_.train.batch_size);
}

bool Trainer::reduce_metrics(MetricSums& metrics) {
  // Both collectives run on every rank, whatever the counts, so that the
  // ranks' sequences of collectives stay in step.
  const auto count = static_cast<double>(metrics.values.size());
  const double lowest = group_->all_reduce_min(count);
  const double total = group_->all_reduce_sum(std::vector<double>{count})[0];
  if (lowest * world_ != total) return false;
  std::vector<double> flat;
  for (const auto& [name, v] : metrics.values) flat.insert(flat.end(), {v.first, v.second});
  flat = group_->all_reduce_sum(flat);
  std::size_t k = 0;
  for (auto& [name, v] : metrics.values) {
    v = {flat[k], flat[k + 1]};
    k += 2;
  }
  return true;
}

void Trainer::all_reduce_gradients() {
  std::vector<torch::Tensor> grads;
  for (auto& p : params_) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  group_->all_reduce_sum(grads);
}

void request_stop(int signal) noexcept {
  if (g_stop_signal == 0) g_stop_signal = signal;
}

void clear_stop_request() noexcept { g_stop_signal = 0; }

int stop_requested() noexcept { return g_stop_signal; }

Stopped::Stopped(int signal, std::int64_t step, const std::string& checkpoint)
    : std::runtime_error(str("stopped by signal ", signal, " at step ", step, "; latest checkpoint ", checkpoint)),
      signal_(signal),
      step_(step),
      checkpoint_(checkpoint) {}

TrainResult train_once(const TrainJob& job) {
  Trainer trainer(job);
  return trainer.run();
}

TrainResult train(const TrainJob& job) {
  if (job.config.evolve.steps > 0 && read_dist_env().distributed())
    throw ConfigError("evolve.steps > 0 runs in one process in this version (sampling between steps is not "
                      "sharded yet); launch it without torchrun/srun/--nproc");
  return job.config.evolve.steps > 0 ? evolve(job) : train_once(job);
}

}  // namespace lire::train

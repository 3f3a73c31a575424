// The Evolve/Iterate driver (see evolve.h and docs/training.md#evolve).
#include "lire/train/evolve.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "lire/cli/sample_command.h"
#include "lire/core/error.h"
#include "lire/core/torch_runtime.h"
#include "lire/train/checkpoint.h"
#include "lire/version.h"

namespace lire::train {
namespace fs = std::filesystem;
namespace {

// What a scored pool (or eval sample file) says about the policy that wrote it.
struct PoolStats {
  std::int64_t lists = 0, responses = 0, human = 0;
  // Over the model responses: the mean reward of each source (the first is
  // "rewards"), the mean over lists of the best one, and the mean length.
  std::vector<double> mean;
  double best = 0.0, human_mean = 0.0;
  std::map<std::string, std::int64_t> finish;
};

PoolStats pool_stats(const std::string& path, const std::vector<std::string>& sources) {
  // One source fills "rewards"; several fill "rewards" (the first) and rewards_<name> each.
  std::vector<std::string> fields{"rewards"};
  if (sources.size() > 1)
    for (const auto& s : sources) fields.push_back("rewards_" + s);
  PoolStats st;
  std::vector<double> sums(fields.size(), 0.0);
  std::int64_t best_lists = 0;
  double human_sum = 0.0;
  std::ifstream in(path);
  if (!in) throw Error(str("cannot read ", path));
  std::string line;
  std::int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) throw DataError(str(path, ":", number, ": not a JSON object"));
    const auto& finish = j.contains("finish") ? j["finish"] : nlohmann::json::array();
    double best = -std::numeric_limits<double>::infinity();
    bool any = false;
    for (std::size_t f = 0; f < fields.size(); ++f) {
      if (!j.contains(fields[f]) || !j[fields[f]].is_array())
        throw DataError(str(path, ":", number, ": no ", fields[f], " (the pool was not scored)"));
      const auto& r = j[fields[f]];
      for (std::size_t k = 0; k < r.size(); ++k) {
        if (!r[k].is_number()) throw DataError(str(path, ":", number, ": ", fields[f], "[", k, "] is not a number"));
        const bool human = k < finish.size() && finish[k] == "human";
        const double v = r[k].get<double>();
        if (f == 0) {
          if (human) {
            ++st.human;
            human_sum += v;
            continue;
          }
          ++st.responses;
          if (k < finish.size() && finish[k].is_string()) ++st.finish[finish[k].get<std::string>()];
          best = std::max(best, v);
          any = true;
        } else if (human) {
          continue;
        }
        sums[f] += v;
      }
    }
    if (any) {
      st.best += best;
      ++best_lists;
    }
    ++st.lists;
  }
  for (double s : sums) st.mean.push_back(st.responses ? s / static_cast<double>(st.responses) : 0.0);
  st.best = best_lists ? st.best / static_cast<double>(best_lists) : 0.0;
  st.human_mean = st.human ? human_sum / static_cast<double>(st.human) : 0.0;
  return st;
}

// The policy an Evolve step samples with: the base model (+ model.adapter),
// then each step's final adapter (LoRA) or final model (full fine-tuning).
struct PolicyRef {
  std::string folder, adapter;
};

// Samples `samples` responses for each record of `data` with `policy` into
// `output` (resuming a .partial file), scored by evolve.rewards.
void sample_pool(const config::Config& cfg, const PolicyRef& policy, const std::string& data,
                 const std::string& output, std::int64_t samples, bool keep_human, std::uint64_t seed,
                 bool progress) {
  config::Config c = cfg;
  c.sample.generate.num_samples = samples;
  c.sample.generate.seed = seed;
  c.sample.keep_human = keep_human;
  c.sample.rewards = cfg.evolve.rewards;
  cli::SampleArgs args;
  args.data = data;
  args.output = output;
  args.policy = policy.folder;
  args.adapter = policy.adapter;
  args.resume = true;
  args.max_sequences = cfg.train.max_sequences;
  args.progress = progress;
  cli::run_sample(args, c);
}

void add_stats(nlohmann::json& line, const std::string& prefix, const PoolStats& st,
               const std::vector<std::string>& sources) {
  line[prefix + "reward"] = st.mean.at(0);
  for (std::size_t f = 1; f < st.mean.size(); ++f) line[prefix + "reward_" + sources.at(f - 1)] = st.mean[f];
}

}  // namespace

config::Config evolve_step_config(const config::Config& cfg, std::int64_t e, const std::string& pool) {
  config::ConfigTree tree = cfg.tree;
  tree.set("data.train", pool);
  tree.set("data.fields", nlohmann::json::object());  // the pool is in the canonical format
  tree.set("train.epochs", cfg.evolve.iterate);
  tree.set("runtime.seed", cfg.runtime.seed + (e - 1));
  tree.set("evolve", nullptr);
  return config::resolve(tree);
}

TrainResult evolve(const TrainJob& job) {
  const config::Config& cfg = job.config;
  const auto& ev = cfg.evolve;
  const std::string& run = job.output;
  LIRE_CHECK(!run.empty(), "--output DIR is required");
  if (!job.resume_from.empty())
    throw ConfigError("--resume-from does not apply to an Evolve run (evolve.steps > 0); use --resume");
  if (cfg.data.train.empty())
    throw ConfigError("data.train: no prompts for the Evolve steps (prompt records or candidate lists)");
  if (cfg.model.path.empty()) throw ConfigError("model.path: no model given (a Hugging Face model folder)");
  if (cfg.lora.enabled && !cfg.model.adapter.empty())
    throw ConfigError(str("model.adapter: an Evolve run with LoRA samples with base + its own adapter; merge ",
                          cfg.model.adapter, " into the base first (lire-merge) and give the merged folder as "
                          "model.path"));
  std::error_code ec;
  if (fs::exists(run, ec) && !fs::is_directory(run)) throw ConfigError(str("--output ", run, " is a file, not a folder"));
  const bool empty = !fs::exists(run, ec) || fs::is_empty(run);
  if (!empty && !job.resume)
    throw ConfigError(str("--output ", run, " is not empty; pass --resume to continue that run, or choose another "
                          "folder"));
  fs::create_directories(run);

  // run.json: provenance, with one entry per resume.
  const std::string run_json = (fs::path(run) / "run.json").string();
  nlohmann::json info;
  if (!empty && fs::exists(run_json)) {
    std::ifstream in(run_json);
    info = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!info.is_object()) info = nlohmann::json::object();
    info["resumes"].push_back({{"time", utc_timestamp()}, {"command_line", job.command_line}});
  } else {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    info = {{"lire_version", LIRE_VERSION},     {"git_commit", LIRE_GIT_COMMIT},
            {"libtorch", torch_description()}, {"evolve_steps", ev.steps},
            {"host", host},                    {"start_time", utc_timestamp()},
            {"command_line", job.command_line}, {"resumes", nlohmann::json::array()}};
  }
  config::write_file_atomically(run_json, info.dump(2) + "\n");
  config::write_file_atomically((fs::path(run) / "config.yaml").string(), cfg.tree.to_yaml());

  std::vector<nlohmann::json> lines;
  const auto write_metrics = [&] {
    std::string text;
    for (const auto& l : lines) text += l.dump() + "\n";
    config::write_file_atomically((fs::path(run) / "metrics.jsonl").string(), text);
  };
  const auto eval_policy = [&](std::int64_t e, const PolicyRef& policy, nlohmann::json& line) {
    if (ev.eval_prompts.empty()) return;
    const fs::path dir = fs::path(run) / str("evolve-", e);
    fs::create_directories(dir);
    const std::string file = (dir / "eval.jsonl").string();
    if (!fs::exists(file)) {
      spdlog::info("evolve {}: sampling {} with the {} policy", e, ev.eval_prompts, e == 0 ? "initial" : "new");
      // The same seed every step: each step's policy is judged on the same random streams.
      sample_pool(cfg, policy, ev.eval_prompts, file, ev.eval_samples, false, cfg.sample.generate.seed, job.progress);
    }
    const PoolStats st = pool_stats(file, ev.rewards);
    add_stats(line, "evolve/eval_", st, ev.rewards);
    line["evolve/eval_best_reward"] = st.best;
  };

  PolicyRef policy{cfg.model.path, cfg.model.adapter};
  std::string init_from;
  std::int64_t steps = 0, nonfinite = 0;
  TrainResult inner;
  // Throughput: the mean over the steps that trained.
  double trained_steps = 0.0, lists_per_s = 0.0, tokens_per_s = 0.0;
  if (!ev.eval_prompts.empty()) {
    nlohmann::json line = {{"evolve/step", 0}, {"step", 0}};
    eval_policy(0, policy, line);
    lines.push_back(line);
    write_metrics();
  }
  for (std::int64_t e = 1; e <= ev.steps; ++e) {
    const fs::path dir = fs::path(run) / str("evolve-", e);
    fs::create_directories(dir);
    const std::string pool = (dir / "pool.jsonl").string();
    if (!fs::exists(pool)) {
      spdlog::info("evolve {}/{}: sampling {} responses for each prompt of {}", e, ev.steps, ev.samples,
                   cfg.data.train);
      sample_pool(cfg, policy, cfg.data.train, pool, ev.samples, ev.keep_human,
                  cfg.sample.generate.seed + static_cast<std::uint64_t>(e - 1), job.progress);
    }
    const PoolStats st = pool_stats(pool, ev.rewards);
    spdlog::info("evolve {}/{}: pool of {} lists, {} model responses, mean reward {:.4f} (best of each list {:.4f})",
                 e, ev.steps, st.lists, st.responses, st.mean.at(0), st.best);

    TrainJob step;
    step.config = evolve_step_config(cfg, e, pool);
    step.output = dir.string();
    step.resume = true;  // a step interrupted in training continues from its newest checkpoint
    step.init_from = init_from;
    step.command_line = job.command_line;
    step.progress = job.progress;
    spdlog::info("evolve {}/{}: training {} epoch(s) on the pool in {}", e, ev.steps, ev.iterate, dir.string());
    inner = train_once(step);
    steps += inner.steps;
    nonfinite += inner.nonfinite_steps;
    init_from = latest_checkpoint(dir.string());
    LIRE_CHECK(!init_from.empty(), dir.string(), ": the step's run left no checkpoint");
    if (cfg.lora.enabled)
      policy.adapter = (dir / "final" / "adapter").string();
    else
      policy = PolicyRef{(dir / "final" / "model").string(), ""};

    nlohmann::json line = {{"evolve/step", e}, {"step", steps}};
    add_stats(line, "evolve/mean_", st, ev.rewards);
    line["evolve/best_reward"] = st.best;
    if (st.human) line["evolve/human_reward"] = st.human_mean;
    line["evolve/pool_lists"] = st.lists;
    line["evolve/pool_responses"] = st.responses;
    for (const auto& [why, n] : st.finish) line["evolve/finish_" + why] = n;
    line["evolve/train_steps"] = inner.steps;
    for (const auto& [k, v] : inner.eval) line[k] = v;
    eval_policy(e, policy, line);
    lines.push_back(line);
    write_metrics();
    if (inner.lists_per_s > 0) {
      trained_steps += 1.0;
      lists_per_s += inner.lists_per_s;
      tokens_per_s += inner.tokens_per_s;
    }
    std::string summary = fmt::format("evolve {}/{} done: pool mean reward {:.4f}", e, ev.steps, st.mean.at(0));
    if (line.contains("evolve/eval_reward"))
      summary += fmt::format("; eval reward of the new policy {:.4f}", line["evolve/eval_reward"].get<double>());
    spdlog::info("{}", summary);
  }

  // <run>/final: the last step's final/.
  const fs::path last = fs::path(run) / str("evolve-", ev.steps) / "final";
  config::write_folder_atomically((fs::path(run) / "final").string(), [&](const std::string& tmp) {
    fs::copy(last, tmp, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  });

  TrainResult result;
  result.steps = steps;
  result.nonfinite_steps = nonfinite;
  result.eval = inner.eval;
  result.final_dir = (fs::path(run) / "final").string();
  result.lists_per_s = trained_steps > 0 ? lists_per_s / trained_steps : 0.0;
  result.tokens_per_s = trained_steps > 0 ? tokens_per_s / trained_steps : 0.0;
  std::string trajectory;
  for (const auto& l : lines)
    if (l.contains("evolve/eval_reward"))
      trajectory += fmt::format("{}{:.4f}", trajectory.empty() ? "" : " -> ", l["evolve/eval_reward"].get<double>());
  spdlog::info("evolve done: {} steps, {} optimizer steps{}; outputs in {}", ev.steps, steps,
               trajectory.empty() ? "" : "; eval reward " + trajectory, result.final_dir);
  return result;
}

}  // namespace lire::train

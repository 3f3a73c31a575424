#include "lire/cli/eval_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/cli/command.h"
#include "lire/config/config_tree.h"
#include "lire/cli/policy.h"
#include "lire/cli/progress.h"
#include "lire/cli/scoring.h"
#include "lire/cli/sharded_output.h"
#include "lire/core/dist_env.h"
#include "lire/core/error.h"
#include "lire/eval/statistics.h"
#include "lire/train/process_group.h"
#include "lire/models/sequence_logprobs.h"

namespace lire::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One prompt's response on one side (policy or baseline).
struct Response {
  std::string text;
  bool has_text = false;                         // text is known (else only ids)
  std::optional<std::vector<std::int64_t>> ids;  // token ids when known
  std::optional<double> logprob;                 // log pi(response) when known (policy side)
  std::string finish;                            // policy side: eos | stop | length (generated)
};

// The baseline of a data record: its human-written response (the first one
// flagged human), else the best by rewards or ranks, else the first one.
Response data_baseline(const data::CandidateList& list) {
  if (list.size() == 0)
    throw DataError(str(list.where(), ": no baseline response (the record has no responses); give --baseline FILE"));
  std::size_t pick = 0;
  if (list.human && std::find(list.human->begin(), list.human->end(), true) != list.human->end()) {
    pick = static_cast<std::size_t>(std::find(list.human->begin(), list.human->end(), true) - list.human->begin());
  } else if (list.rewards) {
    pick = static_cast<std::size_t>(std::max_element(list.rewards->begin(), list.rewards->end()) - list.rewards->begin());
  } else if (list.ranks) {
    pick = static_cast<std::size_t>(std::min_element(list.ranks->begin(), list.ranks->end()) - list.ranks->begin());
  }
  Response r;
  r.has_text = !list.responses.empty();
  if (r.has_text) r.text = list.responses[pick];
  if (list.responses_ids) r.ids = (*list.responses_ids)[pick];
  return r;
}

// The response of a model-output file's record: its first response not flagged human.
Response file_response(const data::CandidateList& list) {
  std::size_t pick = 0;
  if (list.human) {
    while (pick < list.size() && (*list.human)[pick]) ++pick;
    if (pick == list.size())
      throw DataError(str(list.where(), ": every response is flagged human; expected a model's response"));
  }
  Response r;
  r.has_text = !list.responses.empty();
  if (r.has_text) r.text = list.responses[pick];
  if (list.responses_ids) r.ids = (*list.responses_ids)[pick];
  const auto it = list.raw.find("sample_logps");
  if (it != list.raw.end() && it->is_array() && pick < it->size() && (*it)[pick].is_number())
    r.logprob = (*it)[pick].get<double>();
  const auto f = list.raw.find("finish");
  if (f != list.raw.end() && f->is_array() && pick < f->size() && (*f)[pick].is_string())
    r.finish = (*f)[pick].get<std::string>();
  return r;
}

// Responses of a file, one per data record, matched by position; records must
// agree on the id (when both give one) and on the prompt text (when both have it).
std::vector<Response> read_responses(const std::string& path, const std::vector<data::CandidateList>& prompts,
                                     const data::ReadOptions& read, const char* flag) {
  data::CandidateListReader reader(path, read);
  std::vector<Response> out;
  data::CandidateList list;
  while (out.size() < prompts.size() && reader.next(list)) {
    const auto& want = prompts[out.size()];
    if (list.raw.contains("id") && want.raw.contains("id") && list.id != want.id)
      throw DataError(str(list.where(), ": id '", list.id, "' does not match ", want.where(), " (id '", want.id,
                          "'); ", flag, " must hold the test prompts in the data's order"));
    if (!list.prompt.empty() && !want.prompt.empty() && list.prompt != want.prompt)
      throw DataError(str(list.where(), ": the prompt differs from ", want.where(), "; ", flag,
                          " must hold the test prompts in the data's order"));
    out.push_back(file_response(list));
  }
  if (out.size() < prompts.size())
    throw DataError(str(path, ": ", out.size(), " records for ", prompts.size(), " test prompts (", flag, ")"));
  return out;
}

std::size_t utf8_length(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json length_json(const eval::LengthStats& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"median", s.median}, {"p10", s.p10},
          {"p90", s.p90},     {"min", s.min},   {"max", s.max}};
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string percent(double v) { return fixed(100.0 * v, 1) + "%"; }

}  // namespace

int run_eval(const EvalArgs& args, const config::Config& cfg) {
  const std::string policy_folder = !args.policy.empty() ? args.policy : (args.responses.empty() ? cfg.model.path : "");
  // model.adapter belongs to model.path: it applies only when the policy is a model.
  const std::string adapter = !args.adapter.empty() ? args.adapter : policy_folder.empty() ? "" : cfg.model.adapter;
  LIRE_CHECK(policy_folder.empty() != args.responses.empty(),
             policy_folder.empty() ? "no policy: give --policy DIR (or model.path) or --responses FILE"
                                   : "give --policy DIR or --responses FILE, not both");
  LIRE_CHECK(adapter.empty() || !policy_folder.empty(), "--adapter needs --policy");
  LIRE_CHECK(args.max_sequences > 0, "--max-sequences must be positive");
  if (!policy_folder.empty())
    LIRE_CHECK(cfg.sample.generate.num_samples == 1,
               "lire-eval compares one response per prompt; set sample.num_samples: 1 (got ",
               cfg.sample.generate.num_samples, ")");
  if (fs::exists(args.output)) {
    LIRE_CHECK(fs::is_directory(args.output), args.output, ": exists and is not a folder");
    LIRE_CHECK(args.overwrite || fs::is_empty(args.output), args.output,
               ": the report folder exists; pass --overwrite to replace it");
  }

  // Reward sources: those named (--reward, eval.rewards) and --reward-model
  // folders; when none is named, every source of the rewards section.
  std::vector<std::string> names = args.rewards;
  names.insert(names.end(), cfg.eval.rewards.begin(), cfg.eval.rewards.end());
  if (names.empty() && args.reward_models.empty())
    for (const auto& s : cfg.rewards.sources) names.push_back(s.name);
  LIRE_CHECK(!names.empty() || !args.reward_models.empty(),
             "no reward source: give --reward-model [NAME=]DIR, --reward NAME or a rewards section");

  // Everything that can fail on a bad folder or file comes before the slow part.
  const DistEnv env = read_dist_env();  // torchrun / srun: prompts are shared out among the ranks
  models::LoadOptions load;
  load.dtype = cfg.model.dtype;
  load.device = rank_device(cfg.runtime.device, env);
  const data::TokenizeOptions tokenize = data::tokenize_options(cfg.data);
  data::ReadOptions read;
  read.fields = cfg.data.fields;
  data::ReadOptions read_prompts = read;
  read_prompts.allow_prompt_only = true;
  auto lists = data::read_candidate_lists(args.data, read_prompts);
  if (cfg.eval.max_lists > 0 && static_cast<int64_t>(lists.size()) > cfg.eval.max_lists)
    lists.resize(static_cast<std::size_t>(cfg.eval.max_lists));
  LIRE_CHECK(!lists.empty(), args.data, ": no test prompts");
  const std::size_t n = lists.size();

  std::vector<Response> baseline;
  const bool baseline_is_model = !args.baseline.empty();
  if (baseline_is_model) {
    baseline = read_responses(args.baseline, lists, read, "--baseline");
  } else {
    for (const auto& list : lists) baseline.push_back(data_baseline(list));
  }
  std::vector<Response> policy_out;
  if (!args.responses.empty()) policy_out = read_responses(args.responses, lists, read, "--responses");

  std::unique_ptr<Policy> policy, reference;
  if (!policy_folder.empty()) policy = std::make_unique<Policy>(policy_folder, adapter, load);
  if (!args.reference.empty()) {
    reference = std::make_unique<Policy>(args.reference, "", load, "reference");
    if (policy) {
      LIRE_CHECK(policy->model().family() == reference->model().family(), "--reference ", args.reference, ": a ",
                 reference->model().family(), " model, and the policy is a ", policy->model().family(),
                 " model (KL needs the same architecture and tokenizer)");
      LIRE_CHECK(policy->model().vocab_size() == reference->model().vocab_size(), "--reference ", args.reference,
                 ": vocabulary size ", reference->model().vocab_size(), " differs from the policy's ",
                 policy->model().vocab_size());
    }
  }
  Scorer scorer(cfg, names, args.reward_models, args.max_sequences);
  std::unique_ptr<train::ProcessGroup> group;
  if (env.distributed()) {
    group = train::ProcessGroup::connect(env, cfg.runtime.dist_timeout_s, torch::kCPU);
    if (env.rank != 0) spdlog::set_level(spdlog::level::warn);  // rank 0 reports for the job
  }
  torch::NoGradGuard no_grad;

  // Under torchrun/srun, rank r handles prompts i with i % W == r (steps 1-3)
  // and rank 0 gathers their results (step 4 and the report).
  const std::int64_t W = env.world_size;
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < n; ++i)
    if (static_cast<std::int64_t>(i) % W == env.rank) mine.push_back(i);
  const bool show = args.progress && env.rank == 0;

  // 1. The policy's responses.
  std::vector<std::vector<std::int64_t>> prompt_ids(n);  // the policy's (or reference's) prompt tokens
  if (policy) {
    policy_out.assign(n, Response{});
    Progress progress("generating", static_cast<int64_t>(mine.size()), show);
    progress.advance(0);
    const auto batch = static_cast<std::size_t>(cfg.sample.generate.batch_prompts);
    for (std::size_t begin = 0; begin < mine.size(); begin += batch) {
      const std::size_t end = std::min(mine.size(), begin + batch);
      std::vector<std::vector<std::int64_t>> prompts;
      std::vector<std::uint64_t> keys;
      for (std::size_t m = begin; m < end; ++m) {
        prompts.push_back(policy->prompt_ids(lists[mine[m]], tokenize));
        keys.push_back(mine[m]);
      }
      const auto samples = policy->sample(prompts, keys, cfg.sample);
      for (std::size_t k = 0; k < samples.size(); ++k) {
        const auto& s = samples[k].front();
        const std::size_t i = mine[begin + k];
        policy_out[i] = {s.text, policy->tokenizer() != nullptr, s.ids, s.logprob, s.finish};
        prompt_ids[i] = std::move(prompts[k]);
      }
      progress.advance(static_cast<int64_t>(end - begin));
    }
    progress.finish();
  }

  // 2. KL(pi || pi_ref) on the policy's responses.
  std::optional<eval::KlEstimate> kl;
  std::vector<double> policy_logps(n, 0.0), reference_logps(n, 0.0);
  if (reference) {
    for (const auto i : mine) {
      if (!policy_out[i].ids || !policy_out[i].logprob)
        throw DataError(str(args.responses, ": record ", i + 1, " has no responses_ids and sample_logps; KL needs "
                                                                "the policy's token ids and log-probs (lire-sample writes them)"));
      if (prompt_ids[i].empty()) prompt_ids[i] = reference->prompt_ids(lists[i], tokenize);
    }
    models::LogprobOptions lp_options;
    lp_options.max_sequences = args.max_sequences;
    const auto step = static_cast<std::size_t>(args.max_sequences);
    for (std::size_t begin = 0; begin < mine.size(); begin += step) {
      const std::size_t end = std::min(mine.size(), begin + step);
      std::vector<models::ListTokens> batch;
      for (std::size_t m = begin; m < end; ++m) batch.push_back({prompt_ids[mine[m]], {*policy_out[mine[m]].ids}});
      const auto lp = models::batch_logprobs(reference->model(), batch, lp_options).logps.to(torch::kFloat64).cpu();
      for (std::size_t m = begin; m < end; ++m) {
        reference_logps[mine[m]] = lp[static_cast<int64_t>(m - begin)][0].item<double>();
        policy_logps[mine[m]] = *policy_out[mine[m]].logprob;
      }
    }
  }

  // 3. Rewards of both responses of every prompt.
  std::map<std::string, std::vector<double>> policy_rewards, baseline_rewards;
  for (const auto& name : scorer.names()) {
    policy_rewards[name].assign(n, 0.0);
    baseline_rewards[name].assign(n, 0.0);
  }
  {
    Progress progress("scoring", static_cast<int64_t>(mine.size()), show);
    progress.advance(0);
    const auto batch = static_cast<std::size_t>(std::max<int64_t>(cfg.eval.batch_size, 1));
    for (std::size_t begin = 0; begin < mine.size(); begin += batch) {
      const std::size_t end = std::min(mine.size(), begin + batch);
      std::vector<data::CandidateList> pairs;
      for (std::size_t m = begin; m < end; ++m) {
        const std::size_t i = mine[m];
        // Text when both sides have it (reward models use their own tokenizer), else token ids.
        std::vector<std::string> texts;
        std::vector<std::vector<std::int64_t>> ids;
        if (policy_out[i].has_text && baseline[i].has_text) {
          texts = {policy_out[i].text, baseline[i].text};
        } else if (policy_out[i].ids && baseline[i].ids) {
          ids = {*policy_out[i].ids, *baseline[i].ids};
        } else {
          throw DataError(str(lists[i].where(), ": the policy's and the baseline's responses are neither both text "
                                                "nor both token ids; they cannot be scored together"));
        }
        pairs.push_back(scoring_list(lists[i], texts, ids));
      }
      const auto scores = scorer.score(pairs);
      for (const auto& name : scorer.names()) {
        const auto& rows = scores.at(name);
        for (std::size_t k = 0; k < rows.size(); ++k) {
          policy_rewards[name][mine[begin + k]] = rows[k][0];
          baseline_rewards[name][mine[begin + k]] = rows[k][1];
        }
      }
      progress.advance(static_cast<int64_t>(end - begin));
    }
    progress.finish();
  }

  // Rank 0 gathers every rank's prompts (through shard files next to the
  // report folder: responses are text) and writes the report; the others stop here.
  if (env.distributed()) {
    const auto shard = [&](int r) { return str(args.output, ".rank", r, "-of", W, ".jsonl"); };
    {
      std::ostringstream lines;
      for (const auto i : mine) {
        const auto& r = policy_out[i];
        json e = {{"i", i}, {"text", r.text}, {"has_text", r.has_text}, {"finish", r.finish},
                  {"policy_logp", policy_logps[i]}, {"reference_logp", reference_logps[i]}};
        if (r.ids) e["ids"] = *r.ids;
        if (r.logprob) e["logprob"] = *r.logprob;
        for (const auto& name : scorer.names())
          e["rewards"][name] = {policy_rewards[name][i], baseline_rewards[name][i]};
        lines << e.dump() << "\n";
      }
      config::write_file_atomically(shard(env.rank), lines.str());
    }
    group->barrier();
    if (env.rank != 0) {
      group->barrier();  // rank 0 has read the shards
      return 0;
    }
    for (int r = 0; r < W; ++r) {
      std::ifstream in(shard(r));
      LIRE_CHECK(in.good(), shard(r), ": cannot read the shard of rank ", r);
      std::string line;
      while (std::getline(in, line)) {
        const auto e = json::parse(line);
        const auto i = e["i"].get<std::size_t>();
        LIRE_CHECK(i < n, shard(r), ": prompt index ", i, " out of range");
        Response resp;
        resp.text = e["text"].get<std::string>();
        resp.has_text = e["has_text"].get<bool>();
        resp.finish = e["finish"].get<std::string>();
        if (e.contains("ids")) resp.ids = e["ids"].get<std::vector<std::int64_t>>();
        if (e.contains("logprob")) resp.logprob = e["logprob"].get<double>();
        if (policy) policy_out[i] = resp;  // (--responses: rank 0 read them all itself)
        policy_logps[i] = e["policy_logp"].get<double>();
        reference_logps[i] = e["reference_logp"].get<double>();
        for (const auto& name : scorer.names()) {
          policy_rewards[name][i] = e["rewards"][name][0].get<double>();
          baseline_rewards[name][i] = e["rewards"][name][1].get<double>();
        }
      }
    }
    group->barrier();
    for (int r = 0; r < W; ++r) fs::remove(shard(r));
  }
  if (reference) kl = eval::sequence_kl(policy_logps, reference_logps);

  // 4. The numbers.
  eval::WinRateOptions win_options;
  win_options.tie_tolerance = cfg.eval.tie_tolerance;
  eval::BootstrapOptions boot;
  boot.resamples = static_cast<std::size_t>(cfg.eval.bootstrap);
  boot.level = cfg.eval.confidence;
  boot.seed = static_cast<std::uint64_t>(cfg.runtime.seed);
  std::vector<eval::SourceScores> tables;
  for (const auto& name : scorer.names()) tables.push_back({name, policy_rewards[name], baseline_rewards[name]});
  const auto summary = eval::summarize_sources(tables, win_options);

  json report;
  report["version"] = version_string();
  report["data"] = args.data;
  report["prompts"] = n;
  report["policy"] = policy_folder.empty() ? json(nullptr) : json(policy_folder);
  report["adapter"] = adapter.empty() ? json(nullptr) : json(adapter);
  report["responses"] = args.responses.empty() ? json(nullptr) : json(args.responses);
  report["baseline"] = baseline_is_model ? json{{"kind", "file"}, {"path", args.baseline}}
                                         : json{{"kind", "data"}, {"path", args.data}};
  report["reference"] = args.reference.empty() ? json(nullptr) : json(args.reference);
  if (policy) {
    const auto& g = cfg.sample.generate;
    report["sample"] = {{"strategy", g.strategy},
                        {"max_new_tokens", g.max_new_tokens},
                        {"temperature", g.temperature},
                        {"top_k", g.top_k},
                        {"top_p", g.top_p},
                        {"num_beams", g.num_beams},
                        {"num_beam_groups", g.num_beam_groups},
                        {"diversity_penalty", g.diversity_penalty},
                        {"length_penalty", g.length_penalty},
                        {"seed", g.seed},
                        {"batch_prompts", g.batch_prompts},
                        {"stop", cfg.sample.stop}};
  }
  report["bootstrap"] = {{"resamples", boot.resamples}, {"level", boot.level}, {"seed", boot.seed}};
  report["tie_tolerance"] = win_options.tie_tolerance;
  json sources = json::array();
  std::vector<eval::WinRateInterval> intervals;
  std::vector<std::optional<eval::NegativeFlips>> flips;
  for (std::size_t s = 0; s < tables.size(); ++s) {
    const auto& t = tables[s];
    const auto& sum = summary.sources[s];
    intervals.push_back(eval::bootstrap_win_rate(t.policy, t.baseline, boot, win_options));
    flips.push_back(baseline_is_model ? std::optional(eval::negative_flip_rate(t.policy, t.baseline)) : std::nullopt);
    json j = {{"name", t.name},
              {"kind", scorer.is_label_source(t.name) ? "labels" : "rewards"},
              {"mean_reward", sum.mean_policy_reward},
              {"baseline_mean_reward", sum.mean_baseline_reward},
              {"win_rate", sum.win_rate.rate},
              {"ci_lower", intervals.back().lower},
              {"ci_upper", intervals.back().upper},
              {"wins", sum.win_rate.wins},
              {"ties", sum.win_rate.ties},
              {"losses", sum.win_rate.losses}};
    j["negative_flip_rate"] = flips.back() ? json(flips.back()->rate) : json(nullptr);
    sources.push_back(std::move(j));
  }
  report["sources"] = sources;
  report["average_win_rate"] = summary.average_win_rate;
  if (kl) {
    report["kl"] = {{"mean", kl->mean}, {"samples", kl->samples}};
    report["kl"]["standard_error"] = kl->standard_error ? json(*kl->standard_error) : json(nullptr);
  } else {
    report["kl"] = nullptr;
  }
  std::vector<std::int64_t> policy_chars, baseline_chars, policy_tokens;
  std::map<std::string, std::int64_t> finishes;
  for (std::size_t i = 0; i < n; ++i) {
    policy_chars.push_back(static_cast<std::int64_t>(utf8_length(policy_out[i].text)));
    baseline_chars.push_back(static_cast<std::int64_t>(utf8_length(baseline[i].text)));
    if (policy_out[i].ids) policy_tokens.push_back(static_cast<std::int64_t>(policy_out[i].ids->size()));
    if (!policy_out[i].finish.empty()) ++finishes[policy_out[i].finish];
  }
  report["length"] = {{"policy_chars", length_json(eval::length_statistics(policy_chars))},
                      {"baseline_chars", length_json(eval::length_statistics(baseline_chars))}};
  report["length"]["policy_tokens"] =
      policy_tokens.size() == n ? length_json(eval::length_statistics(policy_tokens)) : json(nullptr);
  report["finish"] = finishes;

  // report.md: the table a person reads (also printed).
  std::ostringstream md;
  md << "# lire-eval report\n\n";
  md << "- prompts: " << n << " from `" << args.data << "`\n";
  md << "- policy: " << (policy ? "`" + policy_folder + "`" + (adapter.empty() ? "" : " + adapter `" + adapter + "`")
                                : "responses from `" + args.responses + "`")
     << "\n";
  md << "- baseline: "
     << (baseline_is_model ? "responses from `" + args.baseline + "`" : std::string("the data's target responses"))
     << "\n\n";
  md << "| reward source | policy reward | baseline reward | win rate | " << fixed(100 * boot.level, 0)
     << "% CI | wins / ties / losses |" << (baseline_is_model ? " negative flips |" : "") << "\n";
  md << "|---|---:|---:|---:|---|---|" << (baseline_is_model ? "---:|" : "") << "\n";
  for (std::size_t s = 0; s < tables.size(); ++s) {
    const auto& sum = summary.sources[s];
    md << "| " << sum.name << " | " << fixed(sum.mean_policy_reward, 4) << " | " << fixed(sum.mean_baseline_reward, 4)
       << " | " << percent(sum.win_rate.rate) << " | " << fixed(100 * intervals[s].lower, 1) << "-"
       << fixed(100 * intervals[s].upper, 1) << "% | " << sum.win_rate.wins << " / " << sum.win_rate.ties << " / "
       << sum.win_rate.losses << " |";
    if (flips[s]) md << " " << percent(flips[s]->rate) << " |";
    md << "\n";
  }
  md << "\naverage win rate over " << tables.size() << " source" << (tables.size() > 1 ? "s" : "") << ": "
     << percent(summary.average_win_rate) << "\n";
  if (kl) {
    md << "KL(pi || pi_ref): " << fixed(kl->mean, 4);
    if (kl->standard_error) md << " +- " << fixed(*kl->standard_error, 4) << " (standard error)";
    md << " nats over " << kl->samples << " responses\n";
  }
  const auto& pc = eval::length_statistics(policy_chars);
  const auto& bc = eval::length_statistics(baseline_chars);
  md << "response length (characters): policy mean " << fixed(pc.mean, 1) << ", median " << fixed(pc.median, 1)
     << "; baseline mean " << fixed(bc.mean, 1) << ", median " << fixed(bc.median, 1) << "\n";
  if (policy_tokens.size() == n) {
    const auto pt = eval::length_statistics(policy_tokens);
    md << "policy response tokens: mean " << fixed(pt.mean, 1) << ", p10 " << fixed(pt.p10, 1) << ", p90 "
       << fixed(pt.p90, 1) << ", max " << pt.max << "\n";
  }
  if (!finishes.empty()) {
    md << "policy responses ended by:";
    for (const auto& [why, count] : finishes) md << " " << why << " " << count;
    md << "\n";
  }

  // examples.jsonl: per prompt, both responses, their rewards and who won.
  std::ostringstream examples;
  for (std::size_t i = 0; i < n; ++i) {
    json e;
    e["id"] = lists[i].id;
    if (!lists[i].prompt.empty()) e["prompt"] = lists[i].prompt;
    e["policy"] = policy_out[i].text;
    e["baseline"] = baseline[i].text;
    if (policy_out[i].ids) e["policy_ids"] = *policy_out[i].ids;
    if (!policy_out[i].finish.empty()) e["finish"] = policy_out[i].finish;
    json rewards = json::object(), outcome = json::object();
    for (const auto& t : tables) {
      rewards[t.name] = {{"policy", t.policy[i]}, {"baseline", t.baseline[i]}};
      const auto o = eval::compare_rewards(t.policy[i], t.baseline[i], win_options);
      outcome[t.name] = o == eval::Outcome::kWin ? "win" : o == eval::Outcome::kTie ? "tie" : "loss";
    }
    e["rewards"] = rewards;
    e["outcome"] = outcome;
    if (kl) {
      e["policy_logp"] = policy_logps[i];
      e["reference_logp"] = reference_logps[i];
    }
    examples << e.dump() << "\n";
  }

  config::write_folder_atomically(args.output, [&](const std::string& tmp) {
    const auto write = [&](const std::string& name, const std::string& text) {
      std::ofstream f(fs::path(tmp) / name, std::ios::binary);
      f << text;
      f.close();
      LIRE_CHECK(!f.fail(), (fs::path(tmp) / name).string(), ": write failed");
    };
    write("report.json", report.dump(2) + "\n");
    write("report.md", md.str());
    write("examples.jsonl", examples.str());
  });
  std::cout << md.str() << "report: " << (fs::path(args.output) / "report.md").string() << "\n";
  return 0;
}

}  // namespace lire::cli

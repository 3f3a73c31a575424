#include "lire/cli/sample_command.h"

#include <algorithm>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/cli/input_records.h"
#include "lire/cli/jsonl_output.h"
#include "lire/cli/policy.h"
#include "lire/cli/progress.h"
#include "lire/cli/sharded_output.h"
#include "lire/cli/scoring.h"
#include "lire/core/error.h"

namespace lire::cli {

bool is_candidate_field(const std::string& name) {
  static const std::set<std::string> fields = {
      "responses", "responses_ids", "rewards", "ranks",  "labels", "ref_logps",    "ref_token_counts",
      "human",     "chosen",        "rejected", "score_chosen", "score_rejected", "prefix", "suffix",
      "reward",    "sample_logps",  "finish"};
  return fields.count(name) > 0 || name.rfind("rewards_", 0) == 0;
}

namespace {

// The human-written responses of a list: those flagged human, or all of them
// when the record has no flags. Each with its token ids by the data rule.
void human_responses(const data::CandidateList& list, const Policy& policy, const data::TokenizeOptions& tokenize,
                     std::vector<std::string>& texts, std::vector<std::vector<std::int64_t>>& ids) {
  if (list.size() == 0) return;
  data::TokenizeOptions whole = tokenize;  // the responses as written: no cut
  whole.max_length = whole.max_prompt_tokens = whole.max_response_tokens = 0;
  data::TokenizedList t;
  if (list.responses_ids) {
    data::CandidateList ids_only = list;
    if (!ids_only.prompt_ids) ids_only.prompt_ids = std::vector<std::int64_t>{0};  // only the responses matter
    ids_only.responses.clear();
    t = data::tokenize_pretokenized(ids_only, policy.model().vocab_size(), -1, whole);
  } else {
    LIRE_CHECK(policy.tokenizer(), list.where(), ": keep_human needs a tokenizer in ", policy.folder(),
               " for the responses' text");
    t = data::tokenize(list, *policy.tokenizer(), whole);
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list.human && !(*list.human)[i]) continue;
    // Pre-tokenized responses: their text is their ids decoded, as a sample's is.
    texts.push_back(!list.responses.empty() ? list.responses[i]
                    : policy.tokenizer()    ? policy.tokenizer()->decode(t.response_ids[i])
                                            : std::string());
    ids.push_back(t.response_ids[i]);
  }
}

}  // namespace

int run_sample(const SampleArgs& args, const config::Config& cfg) {
  const std::string policy_folder = args.policy.empty() ? cfg.model.path : args.policy;
  const std::string adapter = args.adapter.empty() ? cfg.model.adapter : args.adapter;
  LIRE_CHECK(!policy_folder.empty(), "no policy: give --policy DIR (or model.path)");
  LIRE_CHECK(args.max_sequences > 0, "--max-sequences must be positive");
  check_distinct_output(args.data, args.output);
  const auto& options = cfg.sample;
  const data::TokenizeOptions tokenize = data::tokenize_options(cfg.data);

  // Models first: a bad folder fails before any output is touched.
  const DistEnv env = read_dist_env();  // torchrun / srun: this rank samples every W-th prompt
  models::LoadOptions load;
  load.dtype = cfg.model.dtype;
  load.device = rank_device(cfg.runtime.device, env);
  Policy policy(policy_folder, adapter, load);
  std::vector<std::string> reward_names = options.rewards;
  reward_names.insert(reward_names.end(), args.rewards.begin(), args.rewards.end());
  Scorer scorer(cfg, reward_names, args.reward_models, args.max_sequences);
  const bool has_text = policy.tokenizer() != nullptr;
  if (!has_text) spdlog::warn("{} has no tokenizer.model: responses are written as token ids only", policy_folder);

  ShardedOutput shards(args.output, args.resume, cfg.runtime.dist_timeout_s);
  auto& out = shards.out();
  const int64_t total = count_records(args.data);
  const int64_t W = env.world_size;
  data::ReadOptions read = input_read_options(cfg);
  read.allow_prompt_only = true;
  data::CandidateListReader reader(args.data, read);
  Progress progress("sampling", (total + W - 1 - env.rank) / W, args.progress && env.rank == 0);
  progress.advance(0);
  int64_t prompts_done = 0, generated_tokens = 0, responses_written = 0;
  std::map<std::string, int64_t> finishes;

  std::vector<data::CandidateList> batch;
  std::vector<std::uint64_t> keys;
  const auto flush = [&] {
    if (batch.empty()) return;
    std::vector<std::vector<std::int64_t>> prompts;
    for (const auto& list : batch) prompts.push_back(policy.prompt_ids(list, tokenize));
    const auto samples = policy.sample(prompts, keys, options);

    std::vector<nlohmann::json> records;
    std::vector<data::CandidateList> pools;  // what the reward sources read
    for (std::size_t b = 0; b < batch.size(); ++b) {
      const auto& list = batch[b];
      std::vector<std::string> texts;
      std::vector<std::vector<std::int64_t>> ids;
      if (options.keep_human) human_responses(list, policy, tokenize, texts, ids);
      const std::size_t humans = texts.size();
      nlohmann::json logps = nlohmann::json::array(), finish = nlohmann::json::array();
      for (std::size_t h = 0; h < humans; ++h) logps.push_back(nullptr), finish.push_back("human");
      for (const auto& s : samples[b]) {
        texts.push_back(s.text);
        ids.push_back(s.ids);
        logps.push_back(s.logprob);
        finish.push_back(s.finish);
        ++finishes[s.finish];
        generated_tokens += static_cast<int64_t>(s.ids.size());
      }
      // The record: the input's own fields (id, reference answers, ...), the
      // prompt as read, and the new candidates.
      nlohmann::json record = nlohmann::json::object();
      for (auto it = list.raw.begin(); it != list.raw.end(); ++it) {
        const auto mapped = cfg.data.fields.find(it.key());
        const std::string& name = mapped == cfg.data.fields.end() ? it.key() : mapped->second;
        if (!is_candidate_field(name) && name != "prompt") record[it.key()] = it.value();
      }
      if (!list.prompt.empty() || !list.prompt_ids) record["prompt"] = list.prompt;
      if (has_text) record["responses"] = texts;
      record["responses_ids"] = ids;
      if (options.keep_human) {
        std::vector<bool> human(texts.size(), false);
        std::fill(human.begin(), human.begin() + static_cast<std::ptrdiff_t>(humans), true);
        record["human"] = human;
      }
      record["sample_logps"] = logps;
      record["finish"] = finish;
      records.push_back(std::move(record));
      responses_written += static_cast<int64_t>(texts.size());

      if (!scorer.empty()) {
        // Reward models read the text with their own tokenizer (ids only when there is no text).
        const bool text = has_text && !(options.keep_human && humans > 0 && list.responses.empty());
        pools.push_back(scoring_list(list, text ? texts : std::vector<std::string>{},
                                     text ? std::vector<std::vector<std::int64_t>>{} : ids));
      }
    }
    if (!scorer.empty()) annotate_rewards(records, pools, scorer.names(), scorer.score(pools), true);
    for (const auto& r : records) out.write(r);
    out.flush();
    prompts_done += static_cast<int64_t>(batch.size());
    progress.advance(static_cast<int64_t>(batch.size()));
    batch.clear();
    keys.clear();
  };

  data::CandidateList list;
  int64_t index = 0;
  while (reader.next(list)) {
    const auto key = static_cast<std::uint64_t>(index);
    const int64_t i = index++;
    if (!shards.mine(i)) continue;
    if (shards.done(i)) {
      progress.advance(1);
      continue;
    }
    batch.push_back(std::move(list));
    keys.push_back(key);
    if (static_cast<int64_t>(batch.size()) == options.generate.batch_prompts) flush();
  }
  flush();
  progress.finish();
  report_skipped(reader, args.data, env.rank == 0);
  shards.commit(index);
  const double seconds = std::max(progress.elapsed_s(), 1e-9);
  // The job's totals (every rank's), reported by rank 0.
  const auto sums = shards.sum({static_cast<double>(prompts_done), static_cast<double>(responses_written),
                                static_cast<double>(generated_tokens), static_cast<double>(finishes["eos"]),
                                static_cast<double>(finishes["stop"]), static_cast<double>(finishes["length"])});
  if (env.rank != 0) return 0;
  prompts_done = static_cast<int64_t>(sums[0]);
  responses_written = static_cast<int64_t>(sums[1]);
  generated_tokens = static_cast<int64_t>(sums[2]);
  finishes.clear();
  for (std::size_t k = 0; k < 3; ++k)
    if (sums[3 + k] > 0) finishes[std::vector<std::string>{"eos", "stop", "length"}[k]] = static_cast<int64_t>(sums[3 + k]);
  std::cout << "sampled " << prompts_done << " prompts (" << responses_written << " responses, " << generated_tokens
            << " generated tokens; finish:";
  for (const auto& [why, n] : finishes) std::cout << " " << why << " " << n;
  std::cout << ") in " << seconds << " s: " << prompts_done / seconds << " prompts/s, "
            << generated_tokens / seconds << " generated tokens/s -> " << args.output << "\n";
  return 0;
}

}  // namespace lire::cli

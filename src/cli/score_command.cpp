#include "lire/cli/score_command.h"

#include <iostream>
#include <optional>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/cli/input_records.h"
#include "lire/cli/jsonl_output.h"
#include "lire/cli/progress.h"
#include "lire/cli/sharded_output.h"
#include "lire/cli/scoring.h"
#include "lire/core/error.h"
#include "lire/data/candidate_list.h"
#include "lire/data/tokenizer.h"
#include "lire/models/language_model.h"
#include "lire/models/weights.h"

namespace lire::cli {

int run_score(const ScoreArgs& args, const config::Config& cfg) {
  const std::string policy_folder = args.policy.empty() ? cfg.model.path : args.policy;
  const std::string adapter = args.adapter.empty() ? cfg.model.adapter : args.adapter;
  LIRE_CHECK(!policy_folder.empty() || !args.reward_models.empty() || !args.rewards.empty(),
             "nothing to do: give --policy DIR (reference log-probs) and/or --reward-model [NAME=]DIR or "
             "--reward NAME (rewards)");
  LIRE_CHECK(adapter.empty() || !policy_folder.empty(), "--adapter needs --policy");
  LIRE_CHECK(args.batch_size > 0 && args.max_sequences > 0, "--batch-size and --max-sequences must be positive");
  check_distinct_output(args.data, args.output);

  const DistEnv env = read_dist_env();  // torchrun / srun: this rank scores every W-th list
  models::LoadOptions load;
  load.dtype = cfg.model.dtype;
  load.device = rank_device(cfg.runtime.device, env);
  data::TokenizeOptions tokenize = data::tokenize_options(cfg.data);

  // Models first: a bad folder fails before any output is touched.
  std::optional<models::LanguageModel> policy;
  std::optional<data::FolderTokenizer> policy_tokenizer;
  if (!policy_folder.empty()) {
    models::LoadOptions policy_load = load;
    policy_load.adapter = adapter;
    policy = models::load_language_model(policy_folder, policy_load);
    policy_tokenizer.emplace(policy_folder, policy->vocab_size(), policy->bos_id());
    tokenize.prompt_eos = policy->is_t5();
    spdlog::info("policy {}{} ({})", policy_folder, adapter.empty() ? "" : " + adapter " + adapter,
                 policy->describe());
  }
  Scorer scorer(cfg, args.rewards, args.reward_models, args.max_sequences);
  ShardedOutput shards(args.output, args.resume, cfg.runtime.dist_timeout_s);
  auto& out = shards.out();
  const int64_t W = env.world_size;

  const int64_t total = count_records(args.data);
  data::CandidateListReader reader(args.data, input_read_options(cfg));
  Progress progress("scoring", (total + W - 1 - env.rank) / W, args.progress && env.rank == 0);
  progress.advance(0);
  int64_t records = 0, responses = 0, tokens = 0;
  models::LogprobOptions logprob_options;
  logprob_options.max_sequences = args.max_sequences;
  logprob_options.shared_prompt = cfg.model.shared_prompt;
  torch::NoGradGuard no_grad;

  std::vector<data::CandidateList> batch;
  const auto flush = [&] {
    if (batch.empty()) return;
    std::vector<nlohmann::json> records_out;
    for (const auto& list : batch) records_out.push_back(list.raw);
    if (policy) {
      std::vector<models::ListTokens> lists;
      for (const auto& list : batch) {
        auto t = policy_tokenizer->tokenize(list, tokenize);
        lists.push_back({std::move(t.prompt_ids), std::move(t.response_ids)});
      }
      const auto lp = models::batch_logprobs(*policy, lists, logprob_options);
      const auto logps = lp.logps.to(torch::kFloat64).cpu(), counts = lp.token_counts.cpu();
      for (std::size_t b = 0; b < batch.size(); ++b) {
        std::vector<double> values;
        std::vector<int64_t> n;
        for (std::size_t k = 0; k < batch[b].size(); ++k) {
          values.push_back(logps[b][k].item<double>());
          n.push_back(counts[b][k].item<int64_t>());
          tokens += n.back();
        }
        set_field(records_out[b], batch[b], "ref_logps", values, args.overwrite);
        set_field(records_out[b], batch[b], "ref_token_counts", n, args.overwrite);
      }
    }
    if (!scorer.empty()) annotate_rewards(records_out, batch, scorer.names(), scorer.score(batch), args.overwrite);
    for (std::size_t b = 0; b < batch.size(); ++b) {
      out.write(records_out[b]);
      responses += static_cast<int64_t>(batch[b].size());
    }
    out.flush();
    records += static_cast<int64_t>(batch.size());
    progress.advance(static_cast<int64_t>(batch.size()));
    batch.clear();
  };

  data::CandidateList list;
  int64_t index = 0;
  while (reader.next(list)) {
    const int64_t i = index++;
    if (!shards.mine(i)) continue;
    if (shards.done(i)) {
      progress.advance(1);
      continue;
    }
    batch.push_back(std::move(list));
    if (static_cast<int64_t>(batch.size()) == args.batch_size) flush();
  }
  flush();
  progress.finish();
  report_skipped(reader, args.data, env.rank == 0);
  shards.commit(index);
  const double seconds = std::max(progress.elapsed_s(), 1e-9);
  // The job's totals (every rank's), reported by rank 0.
  const auto sums = shards.sum({static_cast<double>(records), static_cast<double>(responses), static_cast<double>(tokens)});
  if (env.rank != 0) return 0;
  records = static_cast<int64_t>(sums[0]);
  responses = static_cast<int64_t>(sums[1]);
  tokens = static_cast<int64_t>(sums[2]);
  std::cout << "scored " << records << " lists (" << responses << " responses";
  if (policy) std::cout << ", " << tokens << " tokens";
  std::cout << ") in " << seconds << " s: " << records / seconds << " lists/s";
  if (policy) std::cout << ", " << tokens / seconds << " tokens/s";
  std::cout << " -> " << args.output << "\n";
  return 0;
}

}  // namespace lire::cli

#include "lire/cli/score_command.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/cli/progress.h"
#include "lire/core/error.h"
#include "lire/data/candidate_list.h"
#include "lire/data/tokenizer.h"
#include "lire/models/sequence_logprobs.h"
#include "lire/models/weights.h"
#include "lire/rewards/sequence_classifier.h"

namespace lire::cli {
namespace {

namespace fs = std::filesystem;

// Non-blank lines of a file (the progress total).
int64_t count_records(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(str(path, ": cannot open file"));
  int64_t n = 0;
  std::string line;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) ++n;
  return n;
}

// Complete lines of an interrupted run's partial output; a trailing incomplete
// line is cut off so that appending continues cleanly.
int64_t recover_partial(const std::string& partial) {
  std::ifstream in(partial, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto last_newline = text.rfind('\n');
  const std::size_t keep = last_newline == std::string::npos ? 0 : last_newline + 1;
  if (keep != text.size()) fs::resize_file(partial, keep);
  int64_t lines = 0;
  for (std::size_t i = 0; i < keep; ++i) lines += text[i] == '\n';
  return lines;
}

struct RewardModelSpec {
  std::string name, folder;
};

RewardModelSpec parse_reward_model(const std::string& spec) {
  const auto eq = spec.find('=');
  RewardModelSpec r;
  if (eq == std::string::npos) {
    r.folder = spec;
    r.name = fs::path(spec).lexically_normal().filename().string();
    if (r.name.empty()) r.name = fs::path(spec).lexically_normal().parent_path().filename().string();
  } else {
    r.name = spec.substr(0, eq);
    r.folder = spec.substr(eq + 1);
  }
  LIRE_CHECK(!r.name.empty() && !r.folder.empty(), "--reward-model '", spec, "': expected [NAME=]DIR");
  for (char c : r.name)
    LIRE_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.',
               "--reward-model '", spec, "': NAME may hold letters, digits, '_', '-', '.'");
  return r;
}

void set_field(nlohmann::json& record, const data::CandidateList& list, const std::string& field,
               nlohmann::json value, bool overwrite) {
  if (record.contains(field) && !overwrite)
    throw DataError(str(list.where(), ": field '", field, "' is already there; pass --overwrite to replace it"));
  record[field] = std::move(value);
}

}  // namespace

int run_score(const ScoreArgs& args, const config::Config& cfg) {
  const std::string policy_folder = args.policy.empty() ? cfg.model.path : args.policy;
  const std::string adapter = args.adapter.empty() ? cfg.model.adapter : args.adapter;
  LIRE_CHECK(!policy_folder.empty() || !args.reward_models.empty(),
             "nothing to do: give --policy DIR (reference log-probs) and/or --reward-model [NAME=]DIR (rewards)");
  LIRE_CHECK(adapter.empty() || !policy_folder.empty(), "--adapter needs --policy");
  LIRE_CHECK(args.batch_size > 0 && args.max_sequences > 0, "--batch-size and --max-sequences must be positive");
  LIRE_CHECK(fs::absolute(args.data).lexically_normal() != fs::absolute(args.output).lexically_normal(),
             "--output must differ from --data");

  models::LoadOptions load;
  load.dtype = cfg.model.dtype;
  load.device = cfg.runtime.device;
  const data::TokenizeOptions tokenize = data::tokenize_options(cfg.data);

  // Models first: a bad folder fails before any output is touched.
  std::optional<models::LlamaForCausalLM> policy;
  std::optional<data::FolderTokenizer> policy_tokenizer;
  if (!policy_folder.empty()) {
    models::LoadOptions policy_load = load;
    policy_load.adapter = adapter;
    policy = models::load_causal_lm(policy_folder, policy_load);
    const auto& c = (*policy)->config();
    policy_tokenizer.emplace(policy_folder, c.vocab_size, c.bos_token_id.value_or(-1));
    spdlog::info("policy {}{}", policy_folder, adapter.empty() ? "" : " + adapter " + adapter);
  }
  std::vector<std::unique_ptr<rewards::SequenceClassifierReward>> reward_models;
  for (const auto& spec : args.reward_models) {
    const auto rm = parse_reward_model(spec);
    for (const auto& other : reward_models)
      LIRE_CHECK(other->name() != rm.name, "two reward models are named '", rm.name, "'; name them NAME=DIR");
    reward_models.push_back(
        std::make_unique<rewards::SequenceClassifierReward>(rm.name, rm.folder, load, tokenize, args.max_sequences));
    spdlog::info("reward model '{}' from {}", rm.name, rm.folder);
  }

  const std::string partial = args.output + ".partial";
  int64_t skip = 0;
  if (args.resume && fs::exists(partial)) {
    skip = recover_partial(partial);
    spdlog::info("resuming: {} records already in {}", skip, partial);
  }
  std::ofstream out(partial, skip > 0 ? std::ios::app : std::ios::trunc);
  LIRE_CHECK(out.good(), partial, ": cannot write");

  const int64_t total = count_records(args.data);
  data::CandidateListReader reader(args.data);
  Progress progress("scoring", total, args.progress);
  progress.advance(0);
  int64_t records = 0, responses = 0, tokens = 0;
  models::LogprobOptions logprob_options;
  logprob_options.max_sequences = args.max_sequences;
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
      const auto lp = models::batch_logprobs(**policy, lists, logprob_options);
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
    for (std::size_t m = 0; m < reward_models.size(); ++m) {
      const auto scores = reward_models[m]->score(batch);
      if (!policy) tokens += reward_models[m]->last_token_count();
      for (std::size_t b = 0; b < batch.size(); ++b) {
        if (reward_models.size() > 1)
          set_field(records_out[b], batch[b], "rewards_" + reward_models[m]->name(), scores[b], args.overwrite);
        if (m == 0) set_field(records_out[b], batch[b], "rewards", scores[b], args.overwrite);
      }
    }
    for (std::size_t b = 0; b < batch.size(); ++b) {
      out << records_out[b].dump() << '\n';
      responses += static_cast<int64_t>(batch[b].size());
    }
    out.flush();
    LIRE_CHECK(out.good(), partial, ": write failed");
    records += static_cast<int64_t>(batch.size());
    progress.advance(static_cast<int64_t>(batch.size()));
    batch.clear();
  };

  data::CandidateList list;
  int64_t index = 0;
  while (reader.next(list)) {
    if (index++ < skip) {
      progress.advance(1);
      continue;
    }
    batch.push_back(std::move(list));
    if (static_cast<int64_t>(batch.size()) == args.batch_size) flush();
  }
  flush();
  progress.finish();
  out.close();
  LIRE_CHECK(!out.fail(), partial, ": close failed");
  // fsync, then the atomic rename.
  if (FILE* f = std::fopen(partial.c_str(), "r")) {
    ::fsync(fileno(f));
    std::fclose(f);
  }
  fs::rename(partial, args.output);
  const double seconds = std::max(progress.elapsed_s(), 1e-9);
  std::cout << "scored " << records << " lists (" << responses << " responses, " << tokens << " tokens) in "
            << seconds << " s: " << records / seconds << " lists/s, " << tokens / seconds << " tokens/s -> "
            << args.output << "\n";
  return 0;
}

}  // namespace lire::cli

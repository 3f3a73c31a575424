// A reward model read from a Hugging Face LlamaForSequenceClassification
// folder: each (prompt, response) is scored as one sequence, prompt and
// response tokenised by the data rule (docs/data.md) with the reward model's
// own tokenizer, the score read at the last real token.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lire/data/candidate_list.h"
#include "lire/data/tokenizer.h"
#include "lire/models/llama.h"
#include "lire/models/weights.h"
#include "lire/rewards/reward_source.h"

namespace lire::rewards {

class SequenceClassifierReward : public RewardSource {
 public:
  // `name` labels the output field (rewards_<name>).
  SequenceClassifierReward(std::string name, const std::string& folder, const models::LoadOptions& load,
                           data::TokenizeOptions tokenize, int64_t max_sequences);

  const std::string& folder() const { return folder_; }

  // One score per response of each list ([list][response]); tokens are the
  // lists' pre-tokenized ids when given, else the reward model's tokenizer.
  ListRewards score(const std::vector<data::CandidateList>& lists) override;

  // Response tokens scored by the last call (for throughput figures).
  int64_t last_token_count() const { return last_tokens_; }

 private:
  std::string folder_;
  models::LlamaForSequenceClassification model_{nullptr};
  std::unique_ptr<data::FolderTokenizer> tokenizer_;
  data::TokenizeOptions tokenize_;
  int64_t max_sequences_;
  int64_t last_tokens_ = 0;
};

// Makes the hf-seq-cls sources of a `rewards` section (RewardSet's factory).
ModelRewardFactory sequence_classifier_factory(const models::LoadOptions& load, const data::TokenizeOptions& tokenize,
                                               int64_t max_sequences);

// Scores [N] of right-padded sequences, `max_sequences` per forward pass.
std::vector<double> score_sequences(models::LlamaForSequenceClassificationImpl& model,
                                    const std::vector<std::vector<int64_t>>& sequences, int64_t max_sequences);

}  // namespace lire::rewards

#include "lire/rewards/sequence_classifier.h"

#include <algorithm>

#include <torch/torch.h>

#include "lire/core/error.h"

namespace lire::rewards {

std::vector<double> score_sequences(models::LlamaForSequenceClassificationImpl& model,
                                    const std::vector<std::vector<int64_t>>& sequences, int64_t max_sequences) {
  torch::NoGradGuard no_grad;
  const auto device = model.score->weight.device();
  std::vector<double> out;
  out.reserve(sequences.size());
  for (std::size_t begin = 0; begin < sequences.size(); begin += max_sequences) {
    const std::size_t end = std::min(sequences.size(), begin + static_cast<std::size_t>(max_sequences));
    int64_t T = 1;
    for (std::size_t i = begin; i < end; ++i) T = std::max<int64_t>(T, sequences[i].size());
    const auto n = static_cast<int64_t>(end - begin);
    auto ids = torch::zeros({n, T}, torch::kLong), mask = torch::zeros({n, T}, torch::kLong);
    auto I = ids.accessor<int64_t, 2>(), M = mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < n; ++r) {
      const auto& seq = sequences[begin + r];
      LIRE_CHECK(!seq.empty(), "score_sequences: empty sequence");
      for (std::size_t t = 0; t < seq.size(); ++t) I[r][t] = seq[t], M[r][t] = 1;
    }
    const auto scores = model.forward(ids.to(device), mask.to(device)).select(-1, 0).to(torch::kFloat64).cpu();
    for (int64_t r = 0; r < n; ++r) out.push_back(scores[r].item<double>());
  }
  return out;
}

SequenceClassifierReward::SequenceClassifierReward(std::string name, const std::string& folder,
                                                   const models::LoadOptions& load, data::TokenizeOptions tokenize,
                                                   int64_t max_sequences)
    : RewardSource(std::move(name)),
      folder_(folder),
      model_(models::load_sequence_classifier(folder, load)),
      tokenize_(std::move(tokenize)),
      max_sequences_(max_sequences) {
  LIRE_CHECK(model_->config().num_labels == 1, folder, "/config.json: a reward model has num_labels 1, got ",
             model_->config().num_labels);
  const auto& c = model_->config();
  tokenizer_ = std::make_unique<data::FolderTokenizer>(folder, c.vocab_size, c.bos_token_id.value_or(-1));
}

ListRewards SequenceClassifierReward::score(const std::vector<data::CandidateList>& lists) {
  std::vector<std::vector<int64_t>> sequences;
  last_tokens_ = 0;
  for (const auto& list : lists) {
    const auto tokens = tokenizer_->tokenize(list, tokenize_);
    for (const auto& response : tokens.response_ids) {
      std::vector<int64_t> seq = tokens.prompt_ids;
      seq.insert(seq.end(), response.begin(), response.end());
      last_tokens_ += static_cast<int64_t>(seq.size());
      sequences.push_back(std::move(seq));
    }
  }
  const auto flat = score_sequences(*model_, sequences, max_sequences_);
  std::vector<std::vector<double>> out;
  std::size_t i = 0;
  for (const auto& list : lists) {
    out.emplace_back(flat.begin() + i, flat.begin() + i + list.size());
    i += list.size();
  }
  return out;
}

ModelRewardFactory sequence_classifier_factory(const models::LoadOptions& load, const data::TokenizeOptions& tokenize,
                                               int64_t max_sequences) {
  return [=](const config::RewardSourceOptions& o) -> std::unique_ptr<RewardSource> {
    return std::make_unique<SequenceClassifierReward>(o.name, o.path, load, tokenize, max_sequences);
  };
}

}  // namespace lire::rewards

// LiPO's pairwise reward-ranking model (Liu et al. 2024, Sec. 4 and App. F):
// a T5 text-to-text model reads
//     "[CONTEXT] x [SUMMARY A] y1 [SUMMARY B] y2"
// (or [RESPONSE A] / [RESPONSE B] for assistant tasks) and decodes "A" or "B";
// the probability of decoding "A" estimates P(y1 > y2 | x). Such rankers
// favour one position, so every pair is read in both orders and averaged:
//     Psi_ij = 0.5 * (pA(x, y_i, y_j) + 1 - pA(x, y_j, y_i)),
// which makes Psi_ji = 1 - Psi_ij exactly; Psi_kk = 0.5. A list of K responses
// costs K*(K-1) ranker calls. The labels are the mean winning probabilities
//     psi_k = (1/K) sum_i Psi_ki        (i over all K, Psi_kk included),
// LiPO's aggregation, so psi lies in [0.5/K, 1 - 0.5/K] and averages 0.5.
//
// pA is the model's probability of the choice_a token sequence
// (tokenizer.encode(choice_a), no EOS) after the decoder start token:
// exp(sum of its tokens' log-probs), log-softmax over the whole vocabulary in
// float32 (float64 for a float64 model). With `normalize` it is
// P(A) / (P(A) + P(B)) instead, which ignores the mass the model puts on
// other tokens.
//
// The encoder input is tokenizer.encode(text) + [EOS], as HF's T5Tokenizer
// builds it (a T5 folder's tokenizer adds EOS, no BOS). The context is the
// record's prompt text, followed by a blank line and its `input` when the
// record has one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lire/config/rewards_options.h"
#include "lire/data/candidate_list.h"
#include "lire/data/tokenizer.h"
#include "lire/models/t5.h"
#include "lire/models/weights.h"
#include "lire/rewards/reward_source.h"

namespace lire::rewards {

// `pair_template` with {context}, {a} and {b} replaced by the texts, in one
// pass (braces inside the texts stay as written). Throws ConfigError unless
// each placeholder occurs exactly once.
std::string render_pair_template(const std::string& pair_template, const std::string& context, const std::string& a,
                                 const std::string& b);

// LiPO's labels of a preference matrix: psi_k = (1/K) sum_i Psi_ki. Throws for
// a matrix that is not square.
std::vector<double> labels_from_preferences(const std::vector<std::vector<double>>& preferences);

// What the ranker reads as x for a list: its prompt text, plus "\n\n" and the
// record's `input` when it has one. A list with only prompt ids is a DataError
// naming its file:line.
std::string ranker_context(const data::CandidateList& list, const std::string& source);

// A t5-pairwise source: its values are the labels psi of each list.
class T5PairwiseRanker : public RewardSource {
 public:
  // Loads the T5 (models::load_t5) and its tokenizer from options.path.
  // Throws ConfigError when a choice text encodes to no tokens or the
  // tokenizer's ids do not fit the model's vocabulary.
  T5PairwiseRanker(const config::RewardSourceOptions& options, const models::LoadOptions& load);

  // Labels psi_k of each list ([list][response]); the matrices go to last_matrices().
  ListRewards score(const std::vector<data::CandidateList>& lists) override;
  const ListMatrices& last_matrices() const override { return matrices_; }

  // Psi [K][K] of one list (K >= 1; K = 1 gives [[0.5]]).
  std::vector<std::vector<double>> preference_matrix(const std::string& context,
                                                     const std::vector<std::string>& responses);

  // The encoder input of one ordered pair: encode(template(context, a, b)) +
  // [EOS]. With max_input_tokens > 0 and a longer input, context tokens are
  // dropped from the left until it fits (or the context is empty: responses
  // are never cut).
  std::vector<std::int64_t> input_ids(const std::string& context, const std::string& a, const std::string& b) const;

  // pA (see the file comment) of each encoder input, batch_pairs inputs per
  // forward pass, under NoGradGuard.
  std::vector<double> prefer_first(const std::vector<std::vector<std::int64_t>>& inputs);

  const std::vector<std::int64_t>& choice_a_ids() const { return choice_a_; }
  const std::vector<std::int64_t>& choice_b_ids() const { return choice_b_; }
  const config::RewardSourceOptions& options() const { return options_; }
  models::T5ForConditionalGenerationImpl& model() { return *model_; }
  const data::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  // Log-probs [n] of `choice` decoded against encoder states [n,S,d] / mask [n,S].
  std::vector<double> choice_logprobs(const std::vector<std::int64_t>& choice, const torch::Tensor& states,
                                      const torch::Tensor& mask);

  config::RewardSourceOptions options_;
  models::T5ForConditionalGeneration model_{nullptr};
  data::Tokenizer tokenizer_;
  std::vector<std::int64_t> choice_a_, choice_b_;
  ListMatrices matrices_;
};

// Makes t5-pairwise sources (for RewardSet's ModelRewardFactory).
ModelRewardFactory t5_pairwise_factory(const models::LoadOptions& load);

}  // namespace lire::rewards

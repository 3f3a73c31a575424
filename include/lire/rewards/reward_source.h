// Reward sources by the name users give them in the `rewards:` section
// (config/rewards_options.h): each scores every response of candidate lists,
// one float per (prompt, response).
//
//   hf-seq-cls   a Llama sequence-classification reward model (LibTorch; made
//                by the factory the caller passes, see sequence_classifier.h)
//   t5-pairwise  LiPO's pairwise T5 ranker: each response's label psi in [0, 1]
//                aggregated from all ordered pairs of its list (LibTorch; made
//                by the factory too, see t5_pairwise.h). Its values are labels,
//                not rewards: callers write them as `labels`
//                (config::is_label_source)
//   exact-match  1 when the response equals the record's reference answer (or
//                one of several), after optional normalisation; else 0
//   rouge-l      ROUGE-L F1 between the response and the reference answer (the
//                best over several): graded credit in [0, 1]
//   regex        1 when the pattern matches the response; else 0
//   length       1 when the response's length in characters lies in a window; else 0
//   ensemble     the weighted mean of other sources' rewards
//
// Rule sources read text: a pre-tokenized list without response texts is a
// DataError naming its file:line.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lire/config/rewards_options.h"
#include "lire/data/candidate_list.h"

namespace lire::rewards {

// [list][response] rewards.
using ListRewards = std::vector<std::vector<double>>;
// [list][i][j]: one K x K matrix per list (pairwise preferences Psi).
using ListMatrices = std::vector<std::vector<std::vector<double>>>;

class RewardSource {
 public:
  explicit RewardSource(std::string name) : name_(std::move(name)) {}
  virtual ~RewardSource() = default;
  const std::string& name() const { return name_; }
  virtual ListRewards score(const std::vector<data::CandidateList>& lists) = 0;
  // Pairwise sources: the preference matrix of each list scored by the last
  // score() call. Empty for the others.
  virtual const ListMatrices& last_matrices() const;

 private:
  std::string name_;
};

// A rule source (exact-match, rouge-l, regex, length) from its options.
std::unique_ptr<RewardSource> make_rule_source(const config::RewardSourceOptions& options);

// Builds the model sources, hf-seq-cls and t5-pairwise (they need LibTorch and the model's options).
using ModelRewardFactory = std::function<std::unique_ptr<RewardSource>(const config::RewardSourceOptions&)>;

// Every source of a `rewards:` section, scored together: members of an
// ensemble are scored once and combined.
class RewardSet {
 public:
  // Throws ConfigError for a model source (hf-seq-cls, t5-pairwise) when `models` is empty.
  RewardSet(const config::RewardsOptions& options, const ModelRewardFactory& models = {});
  // Source names, sorted.
  std::vector<std::string> names() const;
  bool empty() const { return options_.sources.empty(); }
  // name -> [list][response] for every source.
  std::map<std::string, ListRewards> score(const std::vector<data::CandidateList>& lists);
  // The preference matrices source `name` computed in the last score() call
  // (empty for sources without them).
  const ListMatrices& last_matrices(const std::string& name) const;

 private:
  config::RewardsOptions options_;
  std::map<std::string, std::unique_ptr<RewardSource>> sources_;  // every source but ensembles
};

// The text exact-match compares (trimmed, whitespace runs collapsed to one
// space, ASCII lowercased when `normalize`).
std::string normalize_answer(const std::string& text, bool normalize);

// ROUGE-L F1 (beta = 1) of a response against one reference, as the
// `rouge-score` package's rougeL without stemming, on whitespace tokens:
// with L the length of the longest common subsequence of the two token
// sequences, P = L / |response|, R = L / |reference|, F = 2PR / (P + R)
// (0 when L = 0). `normalize` lowercases ASCII first (whitespace runs are
// token separators either way). Two empty texts score 1 (identical texts
// always do; rouge-score says 0 there); one empty text scores 0.
double rouge_l_f1(const std::string& response, const std::string& reference, bool normalize);

// The longest common subsequence length of two token sequences.
std::size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b);

}  // namespace lire::rewards

// The `rewards` config section: named reward sources, each a mapping with a
// `type` and that type's keys (docs/config.md):
//
//   rewards:
//     rm:      {type: hf-seq-cls, path: models/rm-7b}
//     correct: {type: exact-match, field: answer}
//     overlap: {type: rouge-l, field: reference}
//     format:  {type: regex, pattern: "^Answer: [0-9]+$", full_match: true}
//     short:   {type: length, max_chars: 400}
//     total:   {type: ensemble, weights: {rm: 1.0, correct: 0.5}}
//     ranker:  {type: t5-pairwise, path: models/ranker-t5, template: summary}
//
// A name becomes the output field rewards_<name> of lire-score / lire-sample
// (labels_<name> for label sources: t5-pairwise gives LiPO labels psi in
// [0, 1], not rewards; see rewards/t5_pairwise.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lire::config {

class SectionReader;

struct RewardSourceOptions {
  std::string name;  // the key under `rewards:` (letters, digits, '_', '-', '.')
  std::string type;  // hf-seq-cls | t5-pairwise | exact-match | rouge-l | regex | length | ensemble

  // hf-seq-cls: a Hugging Face LlamaForSequenceClassification folder;
  // t5-pairwise: a T5ForConditionalGeneration folder with its spiece.model.
  std::string path;
  // exact-match, rouge-l: the record field holding the reference answer (a string or a list of strings).
  std::string field = "reference";
  // exact-match, rouge-l: compare after trimming, collapsing whitespace and lowercasing.
  bool normalize = true;
  // regex: an ECMAScript regular expression; 1 when it matches, else 0.
  std::string pattern;
  // regex: the whole response must match (else a match anywhere counts).
  bool full_match = false;
  // length: 1 when min_chars <= characters (UTF-8 code points) <= max_chars (0 = no upper bound), else 0.
  std::int64_t min_chars = 0;
  std::int64_t max_chars = 0;
  // ensemble: (source, weight) pairs, weights > 0; the reward is the weighted mean.
  std::vector<std::pair<std::string, double>> weights;

  // t5-pairwise: the ranker's input text, holding {context}, {a} and {b} once
  // each (YAML also takes the presets `summary` and `response`, LiPO App. F).
  std::string pair_template = kSummaryPairTemplate;
  // t5-pairwise: the texts the ranker decodes for "a is better" / "b is better".
  std::string choice_a = "A";
  std::string choice_b = "B";
  // t5-pairwise (key `normalize`): P(a better) = P(choice_a) / (P(choice_a) +
  // P(choice_b)) when true; else P(choice_a) alone (LiPO's reading).
  bool normalize_choices = false;
  // t5-pairwise: the record field that also receives each list's K x K
  // preference matrix ("" = not written).
  std::string matrix_field;
  // t5-pairwise: ordered pairs per forward pass.
  std::int64_t batch_pairs = 16;
  // t5-pairwise: longest encoder input in tokens (EOS included); longer inputs
  // lose context tokens from the left (0 = no limit).
  std::int64_t max_input_tokens = 0;

  static constexpr const char* kSummaryPairTemplate = "[CONTEXT] {context} [SUMMARY A] {a} [SUMMARY B] {b}";
  static constexpr const char* kResponsePairTemplate = "[CONTEXT] {context} [RESPONSE A] {a} [RESPONSE B] {b}";
};

// Whether a source's values are LiPO labels psi in [0, 1] (written as
// `labels`) rather than rewards (written as `rewards`): t5-pairwise.
bool is_label_source(const RewardSourceOptions& options);

struct RewardsOptions {
  std::vector<RewardSourceOptions> sources;  // sorted by name
  // The source named `name`, or nullptr.
  const RewardSourceOptions* find(const std::string& name) const;
};

// The reward source types, in documentation order: hf-seq-cls, t5-pairwise,
// exact-match, rouge-l, regex, length, ensemble.
const std::vector<std::string>& reward_source_types();

RewardsOptions read_rewards_options(SectionReader& reader);

}  // namespace lire::config

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
//
// A name becomes the output field rewards_<name> of lire-score / lire-sample.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lire::config {

class SectionReader;

struct RewardSourceOptions {
  std::string name;  // the key under `rewards:` (letters, digits, '_', '-', '.')
  std::string type;  // hf-seq-cls | exact-match | rouge-l | regex | length | ensemble

  // hf-seq-cls: a Hugging Face LlamaForSequenceClassification folder.
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
};

struct RewardsOptions {
  std::vector<RewardSourceOptions> sources;  // sorted by name
  // The source named `name`, or nullptr.
  const RewardSourceOptions* find(const std::string& name) const;
};

// The reward source types, in documentation order.
const std::vector<std::string>& reward_source_types();

RewardsOptions read_rewards_options(SectionReader& reader);

}  // namespace lire::config

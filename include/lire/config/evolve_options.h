// The `evolve` config section of lire-train: LIRE's self-enhancement
// (Algorithm 1). Each of `steps` Evolve steps samples `samples` responses per
// training prompt with the current policy (decoding keys from the `sample`
// section), scores them with `rewards`, writes the pool, and trains `iterate`
// epochs on it (docs/training.md#evolve).
//
//   evolve:
//     steps: 2              # E; 0 = off: lire-train trains once on data.train
//     iterate: 1            # I: epochs over each step's pool
//     samples: 4            # M: model responses per prompt
//     keep_human: false     # keep data.train's human responses in every pool
//     rewards: [rm]         # sources of the rewards section scoring the pools
//     eval_prompts: held-out.jsonl  # prompts whose sampled reward is reported per step
//     eval_samples: 1
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lire::config {

class SectionReader;

struct EvolveOptions {
  // Evolve steps E; 0 = off.
  std::int64_t steps = 0;
  // Iterate: training epochs on each step's pool (train.epochs is not used).
  std::int64_t iterate = 1;
  // Model responses per prompt in each pool (sample.num_samples is not used for pools).
  std::int64_t samples = 4;
  // Keep the human-written responses of data.train's lists in every pool
  // (flagged human), replacing only the model ones (LIRE Sec. 4.7).
  bool keep_human = false;
  // Reward sources (names in the rewards section) scoring the pools; the first
  // fills `rewards`, the training target. Required when steps > 0.
  std::vector<std::string> rewards;
  // Held-out prompts (JSONL): before the first step and after each step the
  // policy samples eval_samples responses for each, scored by `rewards`; "" = none.
  std::string eval_prompts;
  std::int64_t eval_samples = 1;
};

EvolveOptions read_evolve_options(SectionReader& reader);

}  // namespace lire::config

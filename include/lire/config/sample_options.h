// The `sample` config section: how lire-sample, lire-eval (and Evolve) decode
// with a policy, and what lire-sample adds to the candidate pools it writes.
//
//   sample:
//     strategy: sample          # greedy | sample | beam | diverse-beam
//     num_samples: 4            # responses per prompt (K)
//     max_new_tokens: 128
//     temperature: 0.7
//     top_k: 40
//     top_p: 1.0
//     num_beams: 4              # beam, diverse-beam
//     num_beam_groups: 2        # diverse-beam
//     diversity_penalty: 0.5    # diverse-beam
//     length_penalty: 1.0       # beam, diverse-beam
//     seed: 1234
//     batch_prompts: 8          # prompts decoded together
//     stop: ["\n\nHuman:"]      # stop strings (kept in the response, as HF does)
//     keep_human: false         # keep the input's responses, flagged human: true
//     rewards: [rm]             # reward sources (rewards: section) scored in the same pass
//
// docs/sampling.md describes every key.
#pragma once

#include <string>
#include <vector>

#include "lire/generate/generate_options.h"

namespace lire::config {

class SectionReader;

struct SampleOptions {
  generate::GenerateOptions generate;  // the decoding keys (strategy ... batch_prompts)
  // A response ends once its text contains one of these (the string stays in it).
  std::vector<std::string> stop;
  // lire-sample: keep the input's human-written responses (before the new ones), flagged human: true.
  bool keep_human = false;
  // lire-sample: reward sources of the `rewards` section to score the pool with;
  // the first one fills "rewards", each one "rewards_<name>" when there are several.
  std::vector<std::string> rewards;
};

SampleOptions read_sample_options(SectionReader& reader);

}  // namespace lire::config

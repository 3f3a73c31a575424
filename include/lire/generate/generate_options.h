// What to generate and how (the `sample` config section's decoding keys, used
// by lire-sample, lire-eval and Evolve): no LibTorch here, so lire_core can
// read and validate it. generate/generate.h documents each strategy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lire::generate {

struct GenerateOptions {
  // "greedy", "sample" (sampling with temperature 0 is greedy), "beam" or "diverse-beam".
  std::string strategy = "sample";
  // New tokens per response at most (EOS not counted).
  std::int64_t max_new_tokens = 128;
  // Responses per prompt (K); with beams, the K best hypotheses (K <= num_beams).
  std::int64_t num_samples = 1;
  // Beams per prompt (beam, diverse-beam).
  std::int64_t num_beams = 4;
  // Groups of diverse-beam (>= 2, dividing num_beams); beam uses one group.
  std::int64_t num_beam_groups = 2;
  // Subtracted from a group's log-prob of a token once per earlier group that chose it at this step.
  double diversity_penalty = 0.5;
  // Hypothesis score = sum of log-probs / generated_length^length_penalty.
  double length_penalty = 1.0;
  // Softmax temperature of sampling; 0 = greedy.
  double temperature = 1.0;
  // Keep the k most likely tokens (ties at the k-th kept); 0 = no limit.
  std::int64_t top_k = 0;
  // Keep the smallest set of most likely tokens whose probability reaches p; 1 = no limit.
  double top_p = 1.0;
  // Seed of every sample's random stream.
  std::uint64_t seed = 1234;
  // Prompts decoded together (rows = prompts x num_samples).
  std::int64_t batch_prompts = 8;
  // Token ids that end a response (not included in it); empty = the model's eos_token_id.
  std::vector<std::int64_t> eos_ids;
  // Prefill (causal LM) or encode (T5) each prompt once and copy its cached
  // keys/values to its K samples or beams. false: prefill it once per row, as
  // K separate sequences would (the same tokens; log-probs equal up to float
  // rounding, as the batch shapes differ). lire-bench compares the two.
  // Not a config key.
  bool reuse_prompt_cache = true;
};

// Throws lire::ConfigError naming the sample.* key of an invalid option.
void validate(const GenerateOptions& options);

}  // namespace lire::generate

// Incremental decoding of a causal LM with its KV cache (or of T5, with an
// encoder pass and the decoder's KV cache): prompts of different
// lengths are left-padded into one batch and prefilled once; the K samples of
// a prompt copy its cached keys/values instead of prefilling K times; then one
// token per step for every row until EOS, a stop condition or max_new_tokens.
//
// Strategies: greedy (argmax, also temperature 0); sampling with temperature,
// top-k and top-p, applied in Hugging Face's order (temperature, then top-k,
// then top-p; ties at the k-th logit are kept, top-p keeps the smallest set of
// most likely tokens whose mass reaches p); beam search; and diverse beam
// search (Vijayakumar et al. 2018, HF's group beam search): the beams are split
// into groups decoded one after another at each step, and a group's scores
// lose diversity_penalty for every time an earlier group chose the same token
// at that step (Hamming diversity). Beam hypotheses are ranked by
// sum log p / generated_length^length_penalty, and a prompt stops when no
// running beam can beat its worst kept hypothesis (HF's early_stopping=False).
//
// Randomness does not depend on batching: sample k of the prompt with key `q`
// draws its uniforms from its own std::mt19937_64 stream seeded by
// (seed, q, k), and a token is chosen by inverting the cumulative distribution
// (in float64) at that uniform. The same seed therefore gives the same pool
// at any batch size, up to float differences in the logits themselves.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "lire/generate/generate_options.h"
#include "lire/models/language_model.h"
#include "lire/models/llama.h"
#include "lire/models/t5.h"

namespace lire::generate {

struct Generation {
  std::vector<std::int64_t> ids;  // new tokens, without the EOS that ended them
  double logprob = 0.0;           // sum of log p_model(token) at temperature 1, unfiltered (EOS included)
  double score = 0.0;             // beams: the hypothesis score that ranked it (0 otherwise)
  std::string finish;             // "eos", "stop" (the stop callback) or "length"
  std::int64_t eos_id = -1;       // the EOS token that ended it (finish "eos"), else -1
};

// Called after each new token of a row with (prompt index, sample index, ids so
// far); returning true ends that response ("stop"). Used for stop strings.
using StopCheck = std::function<bool(std::size_t prompt, std::int64_t sample, const std::vector<std::int64_t>& ids)>;

// Generates num_samples responses for every prompt (each non-empty, BOS
// included as the caller's tokenizer wants). `keys` (one per prompt; empty =
// the prompt's index) identify prompts for the random streams, so a prompt
// keeps its samples whatever else is in the batch. Returns [prompt][sample].
// Responses end at config.json's eos_token_id unless options.eos_ids are given.
std::vector<std::vector<Generation>> generate(models::LlamaForCausalLMImpl& model,
                                              const std::vector<std::vector<std::int64_t>>& prompts,
                                              const GenerateOptions& options,
                                              const std::vector<std::uint64_t>& keys = {},
                                              const StopCheck& stop = {});

// The same for T5: the prompt is the encoder input (encoded once per prompt,
// right-padded in the batch, its encoder states and cross-attention keys and
// values shared by the prompt's samples or beams), and each response is
// decoded from decoder_start_token_id with the decoder's KV cache. Every
// strategy works as for the causal LM, with the same random streams.
std::vector<std::vector<Generation>> generate(models::T5ForConditionalGenerationImpl& model,
                                              const std::vector<std::vector<std::int64_t>>& prompts,
                                              const GenerateOptions& options,
                                              const std::vector<std::uint64_t>& keys = {},
                                              const StopCheck& stop = {});

// Either architecture.
std::vector<std::vector<Generation>> generate(const models::LanguageModel& model,
                                              const std::vector<std::vector<std::int64_t>>& prompts,
                                              const GenerateOptions& options,
                                              const std::vector<std::uint64_t>& keys = {},
                                              const StopCheck& stop = {});

// ---------------------------------------------------------------- building blocks

// Log-probabilities [R, V] (float64) after temperature, top-k and top-p, -inf
// outside the kept support. temperature must be > 0.
torch::Tensor filtered_logprobs(const torch::Tensor& logits, double temperature, std::int64_t top_k, double top_p);

// One token per row of log-probabilities [R, V]: the first token (in id order)
// whose cumulative probability exceeds u[r] * total, for uniforms u in [0, 1).
torch::Tensor draw_tokens(const torch::Tensor& logprobs, const std::vector<double>& u);

// The random stream of sample `sample` of the prompt with key `key`.
std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t key, std::int64_t sample);

}  // namespace lire::generate

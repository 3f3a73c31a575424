// Sequence log-probs of candidate responses, the quantity every loss consumes:
// log pi(y | x) = sum over response tokens t of log p(y_t | x, y_<t).
//
// The full-vocabulary log-softmax is never materialised for the prompt: logits
// are computed only at the positions that predict a response token, a chunk of
// positions at a time, as gather(logits, target) - logsumexp(logits) in at
// least float32. Differentiable: call under torch::NoGradGuard when scoring.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "lire/models/llama.h"

namespace lire::models {

struct LogprobOptions {
  // Positions whose logits are computed at once ([chunk, vocab] floats live at a time).
  int64_t chunk_positions = 512;
  // Sequences per forward pass when scoring many lists.
  int64_t max_sequences = 16;
  // Run each list's prompt once and share its keys/values with its responses
  // (batch_logprobs, list_logprobs); false: one prompt + response sequence each.
  bool shared_prompt = true;
};

struct SequenceLogprobs {
  torch::Tensor sums;          // [N] sum of the response's per-token log-probs
  torch::Tensor token_counts;  // [N] int64 number of response tokens
  torch::Tensor per_token;     // [N, L_max] per-token log-probs, 0 past each count
};

// Right-padded sequences `input_ids` [N,T] with `attention_mask` [N,T]; row n's
// response occupies positions [response_start[n], response_start[n] + count[n]).
// response_start must be >= 1 (the first response token needs a predecessor).
SequenceLogprobs response_logprobs(LlamaForCausalLMImpl& model, const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask, const std::vector<int64_t>& response_start,
                                   const std::vector<int64_t>& response_length, const LogprobOptions& options = {});

// One prompt and its K responses: K sequence log-probs (each response scored
// as the full sequence prompt + response).
SequenceLogprobs list_logprobs(LlamaForCausalLMImpl& model, const std::vector<int64_t>& prompt_ids,
                               const std::vector<std::vector<int64_t>>& response_ids,
                               const LogprobOptions& options = {});

// One list's tokens, as data/candidate_list.h's tokenize() produces them.
struct ListTokens {
  std::vector<int64_t> prompt_ids;
  std::vector<std::vector<int64_t>> response_ids;
};

// B lists of ragged sizes in the loss-ready layout: logps and token_counts
// [B, K_max] (float of the model's compute precision; int64), mask [B, K_max] kBool.
struct ListBatchLogprobs {
  torch::Tensor logps;
  torch::Tensor token_counts;
  torch::Tensor mask;
};
ListBatchLogprobs batch_logprobs(LlamaForCausalLMImpl& model, const std::vector<ListTokens>& lists,
                                 const LogprobOptions& options = {});

}  // namespace lire::models

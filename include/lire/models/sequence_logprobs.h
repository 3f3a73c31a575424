// Sequence log-probs of candidate responses, the quantity every loss consumes:
// log pi(y | x) = sum over response tokens t of log p(y_t | x, y_<t).
//
// Shared prompt (the default): each list's prompt runs through the decoder
// once; its keys/values (and its last hidden state, which predicts the first
// response token) are shared by the list's K responses, which run as a
// right-padded batch behind that cache. Gradients flow back into the prompt
// pass once. A list's log-probs do not depend on the other lists of a batch,
// to the last bit. The naive
// path (shared_prompt false) runs prompt + response as one sequence per
// response; both compute the same function.
//
// Lean log-probs: logits are computed only at the positions that predict a
// response token, a chunk of positions at a time, as gather(logits, target) -
// logsumexp(logits) in at least float32, and no [positions x vocab] tensor is
// kept for backward (token_logprobs below). Differentiable: call under
// torch::NoGradGuard when scoring.
#pragma once

#include <cstdint>
#include <functional>
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

// log p(target_m | hidden_m) = (h W^T)[target] - logsumexp(h W^T) for rows of
// `hidden` [M,H] against the LM head `weight` [V,H] (compute in float32, or
// float64 for float64 inputs), `chunk` rows at a time. Differentiable in hidden
// and weight without keeping logits: when only `hidden` needs a gradient (LoRA)
// the forward pass stores d log p / d h = W[target] - softmax(h W^T) W, [M,H],
// so backward is one multiply; when `weight` needs one too, backward
// recomputes each chunk's logits. Either way at most [chunk, V] floats live.
torch::Tensor token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                             int64_t chunk);

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

// Both architectures' batch_logprobs walk the lists through this: groups of
// whole lists holding at most max_sequences responses (a larger list alone),
// each scored by `score` (sums [responses of the group], in response order),
// scattered into the [B, K_max] layout on `options`' device and dtype.
struct ListGroup {
  std::vector<const std::vector<int64_t>*> prompts;    // one per list of the group
  std::vector<int64_t> owner;                          // per response: its list's index in `prompts`
  std::vector<const std::vector<int64_t>*> responses;  // the group's responses, list by list
};
ListBatchLogprobs score_list_groups(const std::vector<ListTokens>& lists, int64_t max_sequences,
                                    const torch::TensorOptions& options,
                                    const std::function<torch::Tensor(const ListGroup&)>& score);

}  // namespace lire::models

// Sequence log-probs of candidate responses under T5, the quantity every loss
// consumes: log pi(y | x) = sum_t log p(y_t | x, y_<t), where the prompt x is
// the encoder input and the response y the decoder target. The decoder input
// is [decoder_start_token_id] + y[:-1] (HF's _shift_right), so every response
// token, the first included, is predicted.
//
// A list shares its prompt: each prompt is encoded once and its encoder
// states are expanded to its K responses' decoders (the same log-probs and
// gradients as K separate encoder passes, up to float rounding; gradients of
// the K decoders sum into the one encoder pass). Logits are computed only at
// response positions, a chunk at a time, as gather - logsumexp in at least
// float32. Differentiable: call under torch::NoGradGuard when scoring.
//
// The same names and result types as the Llama functions
// (models/sequence_logprobs.h), so callers can be written once for both.
#pragma once

#include <cstdint>
#include <vector>

#include "lire/models/sequence_logprobs.h"
#include "lire/models/t5.h"

namespace lire::models {

// One prompt and its K responses: K sequence log-probs (per_token [K, L_max]).
// The prompt must be non-empty (T5 prompts end with EOS); a response may be empty (log-prob 0).
SequenceLogprobs list_logprobs(T5ForConditionalGenerationImpl& model, const std::vector<int64_t>& prompt_ids,
                               const std::vector<std::vector<int64_t>>& response_ids,
                               const LogprobOptions& options = {});

// B lists of ragged sizes in the loss-ready layout (logps, token_counts, mask
// [B, K_max]). Whole lists go into one forward pass up to
// options.max_sequences responses (a larger list is decoded in chunks of that
// many, sharing one encoder pass).
ListBatchLogprobs batch_logprobs(T5ForConditionalGenerationImpl& model, const std::vector<ListTokens>& lists,
                                 const LogprobOptions& options = {});

}  // namespace lire::models

// Validation and clean-up of a LossInput before any loss touches it: shapes,
// dtypes and devices agree; NaN/Inf in a valid entry is an error naming the
// tensor and position; masked entries are replaced by 0 through torch::where so
// that junk there (NaN included) can reach neither the value nor the gradient.
#pragma once

#include <string>

#include <torch/types.h>

#include "lire/losses/loss_options.h"
#include "lire/losses/registry.h"

namespace lire::losses {

struct PreparedBatch {
  torch::Tensor logps;      // [B,K] clean; divided by token counts when length_normalize
  torch::Tensor ref_logps;  // [B,K] clean (zeros when the input had none), likewise normalised
  torch::Tensor rewards;    // [B,K] clean; undefined when the loss needs none and none was given
  torch::Tensor mask;       // [B,K] kBool
  torch::Tensor list_valid; // [B] kBool: the list has a valid candidate
  torch::Tensor sft_nll;    // [B] token-mean NLL of each list's target (0 where none); undefined: no SFT
  torch::Tensor sft_valid;  // [B] kBool: the list has an SFT target
};

// `needs_rewards`: rewards must be given (every loss but sft).
PreparedBatch prepare_batch(const LossInput& input, const LossOptions& options, bool needs_rewards);

}  // namespace lire::losses

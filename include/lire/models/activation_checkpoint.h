// Activation (gradient) checkpointing, as torch.utils.checkpoint's reentrant
// variant: the forward pass runs without recording a graph and keeps only its
// inputs; the backward pass runs the function again with gradients on and
// back-propagates through that fresh graph. Parameters used inside the
// function get their gradients accumulated as usual. The random state of the
// inputs' device is saved and restored around the recomputation, so dropout
// draws the same mask twice.
#pragma once

#include <functional>
#include <vector>

#include <torch/types.h>

namespace lire::models {

using CheckpointFn = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;

// fn(inputs) with its activations recomputed in backward. Falls back to a plain
// call when no gradient is wanted (grad mode off, or nothing requires grad).
// Undefined inputs are passed through as undefined.
std::vector<torch::Tensor> checkpointed(const CheckpointFn& fn, const std::vector<torch::Tensor>& inputs);

}  // namespace lire::models

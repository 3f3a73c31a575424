// AdamW with Hugging Face Trainer's parameter grouping, learning-rate setting
// and global gradient-norm clipping.
//
// make_adamw builds two parameter groups, as HF Trainer.create_optimizer does:
//   group 0 "decay":    every trainable matrix that is neither a bias nor a
//   norm
//                       weight, with options.weight_decay;
//   group 1 "no decay": biases (name ends in "bias"), norm weights (name
//   contains
//                       "norm", case-insensitive: input_layernorm, model.norm,
//                       ...) and any tensor with fewer than 2 dims, with weight
//                       decay 0.
// LibTorch's AdamW decays decoupled (p -= lr * wd * p before the Adam update),
// as torch.optim.AdamW; both groups exist even when one of them is empty.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lire::train {

struct OptimizerOptions {
  double lr =
      1e-5; // initial learning rate (the schedule overrides it each step)
  double weight_decay = 0.0; // decoupled weight decay of the decay group
  double beta1 = 0.9;        // first-moment decay
  double beta2 = 0.999;      // second-moment decay
  double eps = 1e-8;         // added to sqrt(v_hat) in the denominator
};

// True when the parameter gets weight decay (see the grouping rules above).
bool decays(const std::string &name, const torch::Tensor &param);

// AdamW over the tensors of named_trainable that require grad, in two groups
// (decay, no decay). Throws lire::ConfigError on invalid options (naming
// train.lr, train.weight_decay, train.adam_beta1, train.adam_beta2,
// train.adam_eps) and lire::Error when no tensor requires grad.
std::unique_ptr<torch::optim::AdamW> make_adamw(
    const std::vector<std::pair<std::string, torch::Tensor>> &named_trainable,
    const OptimizerOptions &options);

// Sets the learning rate of every parameter group.
void set_lr(torch::optim::Optimizer &optimizer, double lr);

// The learning rate of parameter group `group` (default the first).
double get_lr(const torch::optim::Optimizer &optimizer, std::size_t group = 0);

struct GradNorm {
  double norm = 0.0;  // global L2 norm of all gradients before clipping
  bool finite = true; // false when the norm is inf or NaN (skip the step)
};

// Global L2 norm of the gradients of `params` (undefined grads are skipped),
// accumulated in float64. When the norm is finite and max_norm > 0, scales
// every gradient by min(1, max_norm / (norm + 1e-6)), as
// torch.nn.utils.clip_grad_norm_ (so it scales exactly when norm + 1e-6 >
// max_norm). A non-finite norm leaves the gradients untouched; max_norm <= 0
// never clips.
GradNorm clip_grad_norm(const std::vector<torch::Tensor> &params,
                        double max_norm);

// Sets every defined gradient to undefined (as
// optimizer.zero_grad(set_to_none=true)).
void zero_grads(const std::vector<torch::Tensor> &params);

// All tensors of all parameter groups, in group order.
std::vector<torch::Tensor> all_params(const torch::optim::Optimizer &optimizer);

} // namespace lire::train

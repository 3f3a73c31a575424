#include "lire/models/activation_checkpoint.h"

#include <optional>

#include <ATen/Context.h>
#include <torch/torch.h>

#include "lire/core/error.h"

namespace lire::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the backward pass needs besides the saved inputs (kept in a capsule:
// saved_data holds IValues only).
struct Recompute : torch::CustomClassHolder {
  CheckpointFn fn;
  std::vector<bool> defined;      // which of fn's inputs are defined (only those go through autograd)
  // fn's inputs from the defined ones.
  std::vector<torch::Tensor> expand(const std::vector<torch::Tensor>& given) const {
    std::vector<torch::Tensor> out;
    std::size_t next = 0;
    for (bool d : defined) out.push_back(d ? given.at(next++) : torch::Tensor());
    return out;
  }
  at::Device device{at::kCPU};
  torch::Tensor rng_state;        // of `device`'s default generator before forward
  bool grad_enabled = true;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // `anchor` is an empty tensor that requires grad, so that the outputs are
  // part of the graph even when no input requires grad (the first layer's input
  // under LoRA is an embedding of frozen weights) and backward reaches the
  // parameters inside fn.
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<Recompute> recompute,
                               const torch::Tensor& anchor, at::TensorList input_list) {
    (void)anchor;
    const variable_list given(input_list.begin(), input_list.end());
    const variable_list inputs = recompute->expand(given);
    {
      auto gen = at::globalContext().defaultGenerator(recompute->device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      recompute->rng_state = gen.get_state();
    }
    variable_list outputs;
    {
      torch::NoGradGuard no_grad;
      outputs = recompute->fn(inputs);
    }
    ctx->save_for_backward(given);
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto recompute = c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    variable_list given;
    for (const auto& s : ctx->get_saved_variables()) given.push_back(s.detach().requires_grad_(s.requires_grad()));
    const variable_list inputs = recompute->expand(given);
    variable_list outputs;
    {
      auto gen = at::globalContext().defaultGenerator(recompute->device);
      torch::Tensor current;
      {
        std::lock_guard<std::mutex> lock(gen.mutex());
        current = gen.get_state();
        gen.set_state(recompute->rng_state);
      }
      torch::AutoGradMode grad(true);
      outputs = recompute->fn(inputs);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(current);
    }
    // Back-propagate the outputs that carry a gradient and are part of a graph.
    variable_list roots, grads;
    for (std::size_t i = 0; i < outputs.size() && i < grad_outputs.size(); ++i) {
      if (outputs[i].defined() && outputs[i].requires_grad() && grad_outputs[i].defined()) {
        roots.push_back(outputs[i]);
        grads.push_back(grad_outputs[i]);
      }
    }
    if (!roots.empty()) torch::autograd::backward(roots, grads);
    variable_list result = {torch::Tensor(), torch::Tensor()};  // recompute, anchor
    for (const auto& in : given) result.push_back(in.requires_grad() ? in.grad() : torch::Tensor());
    return result;
  }
};

}  // namespace

std::vector<torch::Tensor> checkpointed(const CheckpointFn& fn, const std::vector<torch::Tensor>& inputs) {
  if (!torch::GradMode::is_enabled()) return fn(inputs);
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->fn = fn;
  for (const auto& in : inputs) {
    recompute->defined.push_back(in.defined());
    if (in.defined()) recompute->device = in.device();
  }
  std::vector<torch::Tensor> given;
  for (const auto& in : inputs)
    if (in.defined()) given.push_back(in);
  const auto anchor = torch::empty({0}, torch::TensorOptions().requires_grad(true));
  // A TensorList, not a vector: autograd tracks each tensor of a TensorList as
  // an input (a std::vector would be taken for one non-tensor argument).
  return CheckpointFunction::apply(recompute, anchor, at::TensorList(given));
}

}  // namespace lire::models

// AdamW parameter grouping, learning-rate setting and gradient clipping (see
// optimizer.h).
#include "lire/train/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "lire/core/error.h"

namespace lire::train {

namespace {

bool ends_with(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return s;
}

} // namespace

bool decays(const std::string &name, const torch::Tensor &param) {
  const std::string n = lower(name);
  if (ends_with(n, "bias"))
    return false;
  if (n.find("norm") != std::string::npos)
    return false;
  return param.dim() >= 2;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(
    const std::vector<std::pair<std::string, torch::Tensor>> &named_trainable,
    const OptimizerOptions &o) {
  if (!(o.lr >= 0.0) || !std::isfinite(o.lr))
    throw ConfigError(
        str("train.lr: must be a finite number >= 0, got ", o.lr));
  if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay)) {
    throw ConfigError(
        str("train.weight_decay: must be a finite number >= 0, got ",
            o.weight_decay));
  }
  if (!(o.beta1 >= 0.0 && o.beta1 < 1.0))
    throw ConfigError(
        str("train.adam_beta1: must be in [0, 1), got ", o.beta1));
  if (!(o.beta2 >= 0.0 && o.beta2 < 1.0))
    throw ConfigError(
        str("train.adam_beta2: must be in [0, 1), got ", o.beta2));
  if (!(o.eps >= 0.0) || !std::isfinite(o.eps))
    throw ConfigError(str("train.adam_eps: must be >= 0, got ", o.eps));

  std::vector<torch::Tensor> decay, no_decay;
  for (const auto &[name, tensor] : named_trainable) {
    LIRE_CHECK(tensor.defined(), "make_adamw: parameter '", name,
               "' is undefined");
    if (!tensor.requires_grad())
      continue;
    (decays(name, tensor) ? decay : no_decay).push_back(tensor);
  }
  LIRE_CHECK(!decay.empty() || !no_decay.empty(), "make_adamw: none of the ",
             named_trainable.size(),
             " parameters requires grad; nothing to train");

  auto base = torch::optim::AdamWOptions(o.lr)
                  .betas(std::make_tuple(o.beta1, o.beta2))
                  .eps(o.eps)
                  .weight_decay(o.weight_decay)
                  .amsgrad(false);
  auto decay_options = std::make_unique<torch::optim::AdamWOptions>(base);
  auto no_decay_options = std::make_unique<torch::optim::AdamWOptions>(base);
  no_decay_options->weight_decay(0.0);

  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::move(decay), std::move(decay_options));
  groups.emplace_back(std::move(no_decay), std::move(no_decay_options));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), base);
}

void set_lr(torch::optim::Optimizer &optimizer, double lr) {
  LIRE_CHECK(lr >= 0.0 && std::isfinite(lr),
             "set_lr: learning rate must be finite and >= 0, got ", lr);
  for (auto &group : optimizer.param_groups())
    group.options().set_lr(lr);
}

double get_lr(const torch::optim::Optimizer &optimizer, std::size_t group) {
  const auto &groups = optimizer.param_groups();
  LIRE_CHECK(group < groups.size(), "get_lr: group ", group, " out of range (",
             groups.size(), " groups)");
  return groups[group].options().get_lr();
}

GradNorm clip_grad_norm(const std::vector<torch::Tensor> &params,
                        double max_norm) {
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (const auto &p : params) {
    if (p.defined() && p.grad().defined())
      grads.push_back(p.grad());
  }
  GradNorm result;
  if (grads.empty())
    return result;

  // One float64 norm per tensor, then the norm of the norms on the device: a
  // single host sync. (Grads on several devices would need moving first.)
  std::vector<torch::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto &g : grads)
    norms.push_back(g.detach().to(torch::kDouble).norm(2));
  result.norm = torch::stack(norms).norm(2).item<double>();
  result.finite = std::isfinite(result.norm);
  if (!result.finite || max_norm <= 0.0)
    return result;

  const double coef = max_norm / (result.norm + 1e-6);
  if (coef < 1.0) {
    torch::NoGradGuard no_grad;
    for (auto &g : grads)
      g.mul_(coef);
  }
  return result;
}

void zero_grads(const std::vector<torch::Tensor> &params) {
  for (const auto &p : params) {
    if (p.defined() && p.grad().defined())
      p.mutable_grad() = torch::Tensor();
  }
}

std::vector<torch::Tensor>
all_params(const torch::optim::Optimizer &optimizer) {
  std::vector<torch::Tensor> out;
  for (const auto &group : optimizer.param_groups()) {
    out.insert(out.end(), group.params().begin(), group.params().end());
  }
  return out;
}

} // namespace lire::train

#include "lire/losses/lambda_weight.h"

#include <limits>

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/torch_compat.h"

namespace lire::losses {

torch::Tensor positions_by(const torch::Tensor& keys, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  const double inf = std::numeric_limits<double>::infinity();
  // Valid keys are finite, so -inf sends masked candidates after every valid one;
  // a stable sort keeps equal keys (and the masked tail) in index order.
  const auto sort_keys = torch::where(mask, keys.detach(), torch::full_like(keys, -inf));
  const auto order = std::get<1>(compat::stable_sort(sort_keys, -1, /*descending=*/true));
  const auto arange = torch::arange(keys.size(-1), keys.options().dtype(torch::kLong))
                          .expand_as(order)
                          .contiguous();
  return torch::empty_like(order).scatter_(-1, order, arange);
}

torch::Tensor ranks_by_score(const torch::Tensor& scores, const torch::Tensor& mask) {
  return (positions_by(scores, mask) + 1).to(scores.dtype());
}

torch::Tensor rank_discount(const torch::Tensor& ranks) { return 1.0 / torch::log2(1.0 + ranks); }

torch::Tensor gain(const torch::Tensor& labels) { return torch::pow(2.0, labels) - 1.0; }

torch::Tensor lambda_weights(const std::string& kind, const torch::Tensor& scores,
                             const torch::Tensor& labels, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  const auto s = scores.detach();
  const auto pair_valid = mask.unsqueeze(-1) & mask.unsqueeze(-2);
  if (kind == "constant") return pair_valid.to(s.dtype());
  const auto list_size = mask.sum(-1).to(s.dtype()).view({-1, 1, 1});  // K per list
  auto weight = list_size.expand({s.size(0), s.size(1), s.size(1)}).clone();
  if (kind == "dcg" || kind == "constant-gain") {
    const auto g = rank_discount(ranks_by_score(s, mask));
    weight = weight * (g.unsqueeze(-1) - g.unsqueeze(-2)).abs();
  }
  if (kind == "dcg" || kind == "constant-discount") {
    const auto G = gain(labels.detach());
    weight = weight * (G.unsqueeze(-1) - G.unsqueeze(-2)).abs();
  }
  if (kind != "dcg" && kind != "constant-gain" && kind != "constant-discount")
    throw ConfigError(str("unknown lambda_weight '", kind, "'"));
  return torch::where(pair_valid, weight, torch::zeros_like(weight));
}

}  // namespace lire::losses

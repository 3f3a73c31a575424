#include "lire/losses/labels.h"

#include <limits>

#include <torch/torch.h>

#include "lire/core/error.h"

namespace lire::losses {
namespace {

torch::Tensor zeros_where_masked(const torch::Tensor& x, const torch::Tensor& mask) {
  return torch::where(mask, x, torch::zeros_like(x));
}

// Number of valid candidates per list, [B,1], in x's dtype.
torch::Tensor valid_count(const torch::Tensor& mask, const torch::Tensor& like) {
  return mask.sum(-1, /*keepdim=*/true).to(like.dtype());
}

// Per-list min-max scaling over valid entries; a constant list gives 0.5.
torch::Tensor minmax(const torch::Tensor& r, const torch::Tensor& mask) {
  const double inf = std::numeric_limits<double>::infinity();
  const auto hi = torch::where(mask, r, torch::full_like(r, -inf)).amax(-1, true);
  const auto lo = torch::where(mask, r, torch::full_like(r, inf)).amin(-1, true);
  const auto range = hi - lo;
  const auto has_range = range > 0;
  const auto safe_range = torch::where(has_range, range, torch::ones_like(range));
  const auto safe_lo = torch::where(torch::isfinite(lo), lo, torch::zeros_like(lo));
  const auto scaled = torch::where(has_range, (r - safe_lo) / safe_range, torch::full_like(r, 0.5));
  return zeros_where_masked(scaled, mask);
}

// Pairwise win-rate labels: psi_k = mean over valid i of win(r_k, r_i), i = k included.
template <typename Win>
torch::Tensor winrate(const torch::Tensor& r, const torch::Tensor& mask, Win win) {
  const auto pairs = win(r.unsqueeze(-1) - r.unsqueeze(-2));  // [B,K,K]: win(r_k - r_i)
  const auto valid_i = mask.unsqueeze(-2);                      // [B,1,K]
  const auto summed = torch::where(valid_i, pairs, torch::zeros_like(pairs)).sum(-1);
  const auto count = valid_count(mask, r).clamp_min(1);
  return zeros_where_masked(summed / count, mask);
}

}  // namespace

namespace {

// x with masked entries at -inf, and lists without a valid entry all 0 (so that
// their softmax is finite; the caller zeroes them).
torch::Tensor softmax_input(const torch::Tensor& x, const torch::Tensor& mask) {
  const double inf = std::numeric_limits<double>::infinity();
  const auto list_valid = mask.any(-1, /*keepdim=*/true);
  const auto filled = torch::where(mask, x, torch::full_like(x, -inf));
  return torch::where(list_valid, filled, torch::zeros_like(x));
}

}  // namespace

torch::Tensor masked_log_softmax(const torch::Tensor& x, const torch::Tensor& mask) {
  return zeros_where_masked(torch::log_softmax(softmax_input(x, mask), -1), mask);
}

torch::Tensor masked_softmax(const torch::Tensor& x, const torch::Tensor& mask) {
  return zeros_where_masked(torch::softmax(softmax_input(x, mask), -1), mask);
}

torch::Tensor normalize_over_valid(const torch::Tensor& labels, const torch::Tensor& mask) {
  const auto l = zeros_where_masked(labels, mask);
  const auto total = l.sum(-1, true);
  const auto count = valid_count(mask, l).clamp_min(1);
  const auto nonzero = total != 0;
  const auto safe_total = torch::where(nonzero, total, torch::ones_like(total));
  const auto p = torch::where(nonzero, l / safe_total, torch::ones_like(l) / count);
  return zeros_where_masked(p, mask);
}

torch::Tensor transform_labels(const torch::Tensor& rewards, const torch::Tensor& mask,
                               const std::string& transform) {
  const auto r = zeros_where_masked(rewards, mask);
  if (transform == "bt-winrate") return winrate(r, mask, [](const torch::Tensor& d) { return torch::sigmoid(d); });
  if (transform == "rank-winrate") {
    return winrate(r, mask, [](const torch::Tensor& d) {
      return (d > 0).to(d.dtype()) + 0.5 * (d == 0).to(d.dtype());
    });
  }
  if (transform == "minmax") return minmax(r, mask);
  if (transform == "none") {
    const auto outside = mask & ((r < 0) | (r > 1));
    if (outside.any().item<bool>()) {
      const auto where = outside.nonzero()[0];
      const int64_t b = where[0].item<int64_t>(), k = where[1].item<int64_t>();
      throw DataError(str("label_transform none needs labels in [0, 1], but rewards[", b, "][", k,
                          "] = ", r[b][k].item<double>(),
                          "; use bt-winrate, rank-winrate or minmax for raw rewards"));
    }
    return r;
  }
  throw ConfigError(str("unknown label_transform '", transform, "'"));
}

torch::Tensor transform_rewards(const torch::Tensor& rewards, const torch::Tensor& mask,
                                const std::string& transform) {
  const auto r = zeros_where_masked(rewards, mask);
  if (transform == "softmax") return masked_softmax(r, mask);
  if (transform == "raw") return r;
  if (transform == "minmax") return minmax(r, mask);
  if (transform == "zscore") {
    const auto count = valid_count(mask, r).clamp_min(1);
    const auto mean = r.sum(-1, true) / count;
    const auto centred = zeros_where_masked(r - mean, mask);
    const auto std = (centred.pow(2).sum(-1, true) / count).sqrt();
    const auto has_spread = std > 0;
    const auto safe_std = torch::where(has_spread, std, torch::ones_like(std));
    return zeros_where_masked(torch::where(has_spread, centred / safe_std, torch::zeros_like(r)), mask);
  }
  throw ConfigError(str("unknown reward_transform '", transform, "'"));
}

}  // namespace lire::losses

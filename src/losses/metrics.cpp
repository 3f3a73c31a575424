#include "lire/losses/metrics.h"

#include <torch/torch.h>

#include "lire/losses/lambda_weight.h"

namespace lire::losses {
namespace {

Metric metric(const torch::Tensor& sum, const torch::Tensor& count) {
  return Metric{sum.detach(), count.detach().to(sum.dtype())};
}

// DCG of each list when its candidates are placed at `positions` (0-based).
torch::Tensor dcg(const torch::Tensor& gains, const torch::Tensor& positions, const torch::Tensor& mask) {
  const auto discount = rank_discount((positions + 1).to(gains.dtype()));
  return torch::where(mask, gains * discount, torch::zeros_like(gains)).sum(-1);
}

}  // namespace

std::map<std::string, Metric> ranking_metrics(const torch::Tensor& scores_in, const torch::Tensor& labels_in,
                                              const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  const auto scores = torch::where(mask, scores_in.detach(), torch::zeros_like(scores_in));
  const auto labels = torch::where(mask, labels_in.detach().to(scores.dtype()), torch::zeros_like(scores));
  const auto zero = torch::zeros({}, scores.options());
  std::map<std::string, Metric> out;

  // Pairs: i (row) better labelled than j (column).
  const auto both_valid = mask.unsqueeze(-1) & mask.unsqueeze(-2);
  const auto pair = both_valid & (labels.unsqueeze(-1) > labels.unsqueeze(-2));
  const auto score_diff = scores.unsqueeze(-1) - scores.unsqueeze(-2);
  const auto correct = (score_diff > 0).to(scores.dtype()) + 0.5 * (score_diff == 0).to(scores.dtype());
  const auto n_pairs = pair.sum().to(scores.dtype());
  out["pair_accuracy"] = metric(torch::where(pair, correct, torch::zeros_like(correct)).sum(), n_pairs);

  const auto n_valid = mask.sum(-1).to(scores.dtype());
  out["valid_pair_fraction"] = metric(n_pairs, (n_valid * (n_valid - 1) / 2).sum());

  // NDCG of the order by score against the order by label.
  const auto gains = gain(labels);
  const auto ideal = dcg(gains, positions_by(labels, mask), mask);
  const auto actual = dcg(gains, positions_by(scores, mask), mask);
  const auto has_gain = ideal > 0;
  const auto ndcg = torch::where(has_gain, actual / torch::where(has_gain, ideal, torch::ones_like(ideal)),
                                 torch::zeros_like(ideal));
  out["ndcg"] = metric(ndcg.sum(), has_gain.sum());

  // Margin of the best-labelled candidate over those labelled below it.
  if (scores.size(-1) > 0) {
    const auto best = positions_by(labels, mask).argmin(-1, /*keepdim=*/true);  // position 0
    const auto best_score = scores.gather(-1, best);
    const auto best_label = labels.gather(-1, best);
    const auto below = mask & (labels < best_label);
    const auto n_below = below.sum(-1).to(scores.dtype());
    const auto gap = torch::where(below, best_score - scores, torch::zeros_like(scores)).sum(-1);
    const auto has_below = n_below > 0;
    const auto per_list = torch::where(has_below, gap / n_below.clamp_min(1), torch::zeros_like(gap));
    out["margin"] = metric(per_list.sum(), has_below.sum());
  } else {
    out["margin"] = metric(zero, zero);
  }
  return out;
}

}  // namespace lire::losses

// The preference losses. Every loss turns a PreparedBatch into unit losses
// (items, pairs or lists) plus a mask of valid units, and one reduction turns
// those into a numerator and a denominator (see LossOptions::reduction).
// Formulas and references: docs/losses.md.
#include "lire/losses/losses.h"

#include <limits>

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/losses/labels.h"
#include "lire/losses/lambda_weight.h"
#include "lire/losses/metrics.h"
#include "lire/losses/prepared_batch.h"

namespace lire::losses {
namespace {

struct Reduced {
  torch::Tensor numerator;
  torch::Tensor denominator;
};

// Unit losses [B,...] with a same-shaped validity mask, reduced per `reduction`.
// For list-sum / list-mean only lists with a valid unit count: a list without a
// valid pair contributes nothing to a pairwise loss, not even to the denominator.
Reduced reduce_units(const torch::Tensor& losses, const torch::Tensor& valid, const std::string& reduction) {
  const auto kept = torch::where(valid, losses, torch::zeros_like(losses));
  const auto dtype = losses.scalar_type();
  if (reduction == "rax") return {kept.sum(), valid.sum().to(dtype)};
  const auto per_list = kept.flatten(1).sum(-1);
  const auto units = valid.flatten(1).sum(-1).to(dtype);
  const auto list_loss = reduction == "list-mean" ? per_list / units.clamp_min(1) : per_list;
  return {list_loss.sum(), (units > 0).sum().to(dtype)};
}

// Listwise losses have one unit per list: every reduction is the mean over lists with a valid item.
Reduced reduce_lists(const torch::Tensor& list_losses, const torch::Tensor& list_valid) {
  const auto kept = torch::where(list_valid, list_losses, torch::zeros_like(list_losses));
  return {kept.sum(), list_valid.sum().to(list_losses.scalar_type())};
}

LossOutput finish(const Reduced& main, const PreparedBatch& batch, const LossOptions& options,
                  std::map<std::string, Metric> metrics) {
  LossOutput out;
  out.numerator = main.numerator;
  out.denominator = main.denominator;
  out.sft_weight = options.name == "sft" ? 0.0 : options.sft_weight;
  const auto zero = torch::zeros({}, main.numerator.options());
  if (batch.sft_nll.defined() && options.name != "sft") {
    out.sft_numerator = batch.sft_nll.sum();
    out.sft_denominator = batch.sft_valid.sum().to(main.numerator.scalar_type());
    metrics["sft_nll"] = Metric{out.sft_numerator.detach(), out.sft_denominator};
  } else {
    out.sft_numerator = zero;
    out.sft_denominator = zero;
  }
  out.loss = out.numerator / out.denominator.clamp_min(1);
  if (out.sft_weight > 0) out.loss = out.loss + out.sft_weight * out.sft_numerator / out.sft_denominator.clamp_min(1);
  out.metrics = std::move(metrics);
  return out;
}

// ------------------------------------------------------------------- lire
class LireLoss final : public Loss {
 public:
  using Loss::Loss;
  LossOutput forward(const LossInput& input) const override {
    const auto batch = prepare_batch(input, options_, /*needs_rewards=*/true);
    const auto& mask = batch.mask;
    const auto p = masked_softmax(batch.logps / options_.temperature, mask);
    const auto r = transform_rewards(batch.rewards, mask, options_.reward_transform);
    const auto list_loss = -(p * r).sum(-1);
    const auto labels = transform_labels(batch.rewards, mask, "rank-winrate");
    return finish(reduce_lists(list_loss, batch.list_valid), batch, options_,
                  ranking_metrics(batch.logps, labels, mask));
  }
};

// ----------------------------------------------------------- LiPO family
// Scores s = beta * (logps - ref_logps) against labels psi.
class LipoFamilyLoss : public Loss {
 public:
  using Loss::Loss;
  LossOutput forward(const LossInput& input) const override {
    const auto batch = prepare_batch(input, options_, /*needs_rewards=*/true);
    const auto s = options_.beta * (batch.logps - batch.ref_logps);
    const auto psi = transform_labels(batch.rewards, batch.mask, options_.label_transform);
    return finish(reduce(s, psi, batch), batch, options_, ranking_metrics(s, psi, batch.mask));
  }

 protected:
  virtual Reduced reduce(const torch::Tensor& s, const torch::Tensor& psi, const PreparedBatch& b) const = 0;

  // Valid pairs (i better than j) and s_i - s_j, [B,K,K].
  static torch::Tensor valid_pairs(const torch::Tensor& psi, const torch::Tensor& mask) {
    return mask.unsqueeze(-1) & mask.unsqueeze(-2) & (psi.unsqueeze(-1) > psi.unsqueeze(-2));
  }
  static torch::Tensor pair_differences(const torch::Tensor& s) { return s.unsqueeze(-1) - s.unsqueeze(-2); }
};

// Pair-logistic log(1 + exp(-(s_i - s_j))), optionally lambda-weighted: lipo and dpo.
class PairLogisticLoss final : public LipoFamilyLoss {
 public:
  PairLogisticLoss(LossOptions options, std::string weight)
      : LipoFamilyLoss(std::move(options)), weight_(std::move(weight)) {}

 protected:
  Reduced reduce(const torch::Tensor& s, const torch::Tensor& psi, const PreparedBatch& b) const override {
    const auto pairs = valid_pairs(psi, b.mask);
    auto losses = -torch::log_sigmoid(pair_differences(s));
    if (weight_ != "constant") losses = losses * lambda_weights(weight_, s, psi, b.mask);
    return reduce_units(losses, pairs, options_.reduction);
  }

 private:
  std::string weight_;
};

class PairHingeLoss final : public LipoFamilyLoss {
 public:
  using LipoFamilyLoss::LipoFamilyLoss;

 protected:
  Reduced reduce(const torch::Tensor& s, const torch::Tensor& psi, const PreparedBatch& b) const override {
    const auto losses = torch::relu(options_.delta - pair_differences(s));
    return reduce_units(losses, valid_pairs(psi, b.mask), options_.reduction);
  }
};

// List-MLE of the order by psi (ties by index): sum_i [logsumexp_{j at or after i} s_j - s_i].
class ListMleLoss final : public LipoFamilyLoss {
 public:
  using LipoFamilyLoss::LipoFamilyLoss;

 protected:
  Reduced reduce(const torch::Tensor& s, const torch::Tensor& psi, const PreparedBatch& b) const override {
    const double inf = std::numeric_limits<double>::infinity();
    const auto pos = positions_by(psi, b.mask);
    // later[b,i,j]: j is valid and placed at or after i. Row i always holds j = i,
    // so every logsumexp has a finite term (masked rows are dropped below).
    const auto eye = torch::eye(s.size(-1), b.mask.options()).unsqueeze(0);
    const auto later = (b.mask.unsqueeze(-2) & (pos.unsqueeze(-2) >= pos.unsqueeze(-1))) | eye;
    const auto candidates = s.unsqueeze(-2).expand(later.sizes());
    const auto tail = torch::where(later, candidates, torch::full_like(candidates, -inf));
    const auto lse = torch::logsumexp(tail, -1);
    const auto per_item = torch::where(b.mask, lse - s, torch::zeros_like(s));
    return reduce_lists(per_item.sum(-1), b.list_valid);
  }
};

class PointMseLoss final : public LipoFamilyLoss {
 public:
  using LipoFamilyLoss::LipoFamilyLoss;

 protected:
  Reduced reduce(const torch::Tensor& s, const torch::Tensor& psi, const PreparedBatch& b) const override {
    return reduce_units((s - psi).pow(2), b.mask, options_.reduction);
  }
};

class PointSigmoidLoss final : public LipoFamilyLoss {
 public:
  using LipoFamilyLoss::LipoFamilyLoss;

 protected:
  Reduced reduce(const torch::Tensor& s, const torch::Tensor& psi, const PreparedBatch& b) const override {
    const auto losses = -torch::log_sigmoid(-s) - s * psi.clamp(0, 1);  // softplus(s) - s * psi
    return reduce_units(losses, b.mask, options_.reduction);
  }
};

class SoftmaxLoss final : public LipoFamilyLoss {
 public:
  using LipoFamilyLoss::LipoFamilyLoss;

 protected:
  Reduced reduce(const torch::Tensor& s, const torch::Tensor& psi, const PreparedBatch& b) const override {
    const auto target = normalize_over_valid(psi, b.mask);
    const auto list_loss = -(target * masked_log_softmax(s, b.mask)).sum(-1);
    return reduce_lists(list_loss, b.list_valid);
  }
};

// -------------------------------------------------------------------- sft
class SftLoss final : public Loss {
 public:
  using Loss::Loss;
  LossOutput forward(const LossInput& input) const override {
    const auto batch = prepare_batch(input, options_, /*needs_rewards=*/false);
    const Reduced nll{batch.sft_nll.sum(), batch.sft_valid.sum().to(batch.sft_nll.scalar_type())};
    std::map<std::string, Metric> metrics;
    if (batch.rewards.defined())
      metrics = ranking_metrics(batch.logps, transform_labels(batch.rewards, batch.mask, "rank-winrate"),
                                batch.mask);
    metrics["sft_nll"] = Metric{nll.numerator.detach(), nll.denominator};
    return finish(nll, batch, options_, std::move(metrics));
  }
};

}  // namespace

std::unique_ptr<Loss> build_loss(const LossOptions& o) {
  const std::string& n = o.name;
  if (n == "lire") return std::make_unique<LireLoss>(o);
  if (n == "lipo") return std::make_unique<PairLogisticLoss>(o, o.lambda_weight);
  if (n == "dpo") return std::make_unique<PairLogisticLoss>(o, "constant");
  if (n == "dpo-pl") return std::make_unique<ListMleLoss>(o);
  if (n == "slic") return std::make_unique<PairHingeLoss>(o);
  if (n == "point-mse") return std::make_unique<PointMseLoss>(o);
  if (n == "point-sigmoid") return std::make_unique<PointSigmoidLoss>(o);
  if (n == "nce") return std::make_unique<SoftmaxLoss>(o);
  if (n == "sft") return std::make_unique<SftLoss>(o);
  throw Error(str("loss '", n, "' is in the catalogue but has no implementation"));
}

}  // namespace lire::losses

#include "lire/losses/prepared_batch.h"

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/tensor_shape.h"

namespace lire::losses {
namespace {

void check_like(const torch::Tensor& t, const char* name, const torch::Tensor& logps) {
  if (!t.defined()) return;
  if (t.sizes() != logps.sizes())
    throw Error(str("LossInput.", name, " has shape ", shape_of(t), ", expected ", shape_of(logps),
                    " like logps"));
  if (t.device() != logps.device())
    throw Error(str("LossInput.", name, " is on ", t.device(), " but logps is on ", logps.device()));
}

// Throws naming the first valid entry of `t` that is NaN or Inf.
void check_finite(const torch::Tensor& t, const torch::Tensor& mask, const char* name) {
  const auto bad = mask & ~torch::isfinite(t);
  if (!bad.any().item<bool>()) return;
  const auto where = bad.nonzero()[0];
  const int64_t b = where[0].item<int64_t>(), k = where[1].item<int64_t>();
  throw DataError(str("LossInput.", name, "[", b, "][", k, "] is ", t[b][k].item<double>(),
                      " for a valid candidate (NaN and Inf are allowed only in masked entries)"));
}

torch::Tensor clean(const torch::Tensor& t, const torch::Tensor& mask) {
  return torch::where(mask, t, torch::zeros_like(t));
}

}  // namespace

PreparedBatch prepare_batch(const LossInput& in, const LossOptions& options, bool needs_rewards) {
  LIRE_CHECK(in.logps.defined(), "LossInput.logps is required");
  LIRE_CHECK(in.logps.dim() == 2, "LossInput.logps must be [B,K], got shape ", shape_of(in.logps));
  LIRE_CHECK(in.logps.is_floating_point(), "LossInput.logps must be floating point, got ",
             in.logps.scalar_type());
  LIRE_CHECK(in.mask.defined(), "LossInput.mask is required");
  check_like(in.mask, "mask", in.logps);
  LIRE_CHECK(in.mask.scalar_type() == torch::kBool, "LossInput.mask must be kBool, got ",
             in.mask.scalar_type());
  LIRE_CHECK(!needs_rewards || in.rewards.defined(), "loss '", options.name, "' needs LossInput.rewards");
  check_like(in.rewards, "rewards", in.logps);
  check_like(in.ref_logps, "ref_logps", in.logps);
  check_like(in.token_counts, "token_counts", in.logps);

  // Losses run in at least float32: half-precision log-probs are upcast here
  // (autograd carries the gradient back to their dtype).
  const bool reduced = in.logps.scalar_type() == torch::kHalf || in.logps.scalar_type() == torch::kBFloat16;
  const auto dtype = reduced ? torch::kFloat : in.logps.scalar_type();
  const auto logps = in.logps.to(dtype);
  const auto& mask = in.mask;
  PreparedBatch out;
  out.mask = mask;
  out.list_valid = mask.any(-1);

  check_finite(logps, mask, "logps");
  out.logps = clean(logps, mask);
  if (in.ref_logps.defined()) {
    const auto ref = in.ref_logps.to(dtype);
    check_finite(ref, mask, "ref_logps");
    out.ref_logps = clean(ref, mask);
  } else {
    out.ref_logps = torch::zeros_like(out.logps);
  }
  if (in.rewards.defined()) {
    const auto rewards = in.rewards.to(dtype);
    check_finite(rewards, mask, "rewards");
    out.rewards = clean(rewards, mask);
  }
  torch::Tensor counts;
  if (in.token_counts.defined()) {
    counts = in.token_counts.to(dtype);
    const auto bad = mask & ~(torch::isfinite(counts) & (counts > 0));
    if (bad.any().item<bool>()) {
      const auto where = bad.nonzero()[0];
      const int64_t b = where[0].item<int64_t>(), k = where[1].item<int64_t>();
      throw DataError(str("LossInput.token_counts[", b, "][", k, "] is ", counts[b][k].item<double>(),
                          " for a valid candidate; token counts must be positive"));
    }
    counts = torch::where(mask, counts, torch::ones_like(counts));
  }
  if (options.length_normalize) {
    LIRE_CHECK(counts.defined(), "loss.length_normalize needs LossInput.token_counts");
    out.logps = out.logps / counts;
    out.ref_logps = out.ref_logps / counts;
  }

  // SFT term: each list's target NLL, given or computed from the raw log-probs.
  const bool wants_sft = options.name == "sft" || options.sft_weight > 0;
  if (wants_sft) {
    LIRE_CHECK(in.sft_index.defined(), options.name == "sft" ? "loss 'sft'" : "loss.sft_weight > 0",
               " needs LossInput.sft_index (each list's SFT target, -1 for none)");
    const int64_t B = in.logps.size(0), K = in.logps.size(1);
    LIRE_CHECK(in.sft_index.dim() == 1 && in.sft_index.size(0) == B, "LossInput.sft_index must be [",
               B, "], got ", shape_of(in.sft_index));
    const auto index = in.sft_index.to(in.logps.device(), torch::kLong);
    const auto out_of_range = (index < -1) | (index >= K);
    LIRE_CHECK(!out_of_range.any().item<bool>(), "LossInput.sft_index[",
               out_of_range.nonzero()[0][0].item<int64_t>(), "] is outside [-1, ", K - 1, "]");
    out.sft_valid = index >= 0;
    const auto safe_index = index.clamp_min(0).unsqueeze(-1);
    if (in.sft_nll.defined()) {
      LIRE_CHECK(in.sft_nll.dim() == 1 && in.sft_nll.size(0) == B, "LossInput.sft_nll must be [", B,
                 "], got ", shape_of(in.sft_nll));
      const auto nll = in.sft_nll.to(in.logps.device(), dtype);
      const auto bad = out.sft_valid & ~torch::isfinite(nll);
      LIRE_CHECK(!bad.any().item<bool>(), "LossInput.sft_nll[", bad.nonzero()[0][0].item<int64_t>(),
                 "] is not finite");
      out.sft_nll = torch::where(out.sft_valid, nll, torch::zeros_like(nll));
    } else {
      LIRE_CHECK(counts.defined(), "an SFT term computed from logps needs LossInput.token_counts");
      const auto target_valid = mask.gather(-1, safe_index).squeeze(-1);
      const auto bad = out.sft_valid & ~target_valid;
      LIRE_CHECK(!bad.any().item<bool>(), "LossInput.sft_index[", bad.nonzero()[0][0].item<int64_t>(),
                 "] points at a masked candidate");
      const auto raw = clean(logps, mask);
      const auto nll = -raw.gather(-1, safe_index).squeeze(-1) / counts.gather(-1, safe_index).squeeze(-1);
      out.sft_nll = torch::where(out.sft_valid, nll, torch::zeros_like(nll));
    }
  }
  return out;
}

}  // namespace lire::losses

// The loss registry: every preference loss of the LIRE and LiPO papers, keyed
// by the name users write in YAML (`loss.name`). Stable public entry point.
//
//   auto loss = lire::losses::make("lipo", {{"beta", 0.05}});
//   lire::losses::LossInput in;  in.logps = ...; in.rewards = ...; in.mask = ...;
//   lire::losses::LossOutput out = loss->forward(in);
//   out.loss.backward();
//
// Input is a batch of B ragged lists padded to K_max: `mask` marks the real
// candidates; padding entries may hold anything (NaN included), contribute
// nothing and get zero gradient. NaN or Inf in a valid entry is a lire::Error.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "lire/losses/loss_options.h"

namespace lire::losses {

struct LossInput {
  torch::Tensor logps;         // [B,K] policy sequence log-probs (sum over response tokens)
  torch::Tensor ref_logps;     // [B,K] reference policy's; undefined means 0
  torch::Tensor rewards;       // [B,K] rewards (labels in [0,1] with label_transform: none)
  torch::Tensor mask;          // [B,K] kBool, true for real candidates
  torch::Tensor token_counts;  // [B,K] response token counts; needed for length_normalize
                               // and for an SFT term computed from logps
  torch::Tensor sft_index;     // [B] int64: each list's SFT target candidate, -1 for none;
                               // undefined: no SFT term
  torch::Tensor sft_nll;       // [B] token-mean NLL of each list's SFT target; undefined:
                               // -logps[b, sft_index[b]] / token_counts[b, sft_index[b]]
};

// A metric as a sum and a count, so that micro-batches and ranks combine exactly.
struct Metric {
  torch::Tensor sum;    // scalar
  torch::Tensor count;  // scalar; 0 when the batch had nothing to measure
  double value() const;  // sum / count, 0 when count is 0 (never NaN)
};

struct LossOutput {
  // numerator / max(denominator, 1) + sft_weight * sft_numerator / max(sft_denominator, 1)
  torch::Tensor loss;
  torch::Tensor numerator;        // sum of the unit losses (preference term; the NLL for `sft`)
  torch::Tensor denominator;      // count of units; depends only on mask and labels
  torch::Tensor sft_numerator;    // sum of the targets' token-mean NLLs (0 without SFT term)
  torch::Tensor sft_denominator;  // number of lists with an SFT target
  double sft_weight = 0.0;
  // pair_accuracy, ndcg, margin, valid_pair_fraction (see docs/losses.md), and
  // sft_nll when an SFT term is present.
  std::map<std::string, Metric> metrics;
};

class Loss {
 public:
  explicit Loss(LossOptions options);
  virtual ~Loss() = default;
  virtual LossOutput forward(const LossInput& input) const = 0;
  const LossOptions& options() const { return options_; }
  const LossSpec& spec() const;

 protected:
  LossOptions options_;
};

// Builds a loss; `options` is the YAML `loss:` section without `name`.
// Unknown names and keys, wrong types and out-of-range values throw ConfigError.
std::unique_ptr<Loss> make(const std::string& name, const nlohmann::json& options = nlohmann::json::object());
std::unique_ptr<Loss> make(const LossOptions& options);

// Registered names, in documentation order.
std::vector<std::string> names();

// The loss of the union of several parts (micro-batches, ranks): sums their
// numerators and denominators, then applies the formula of LossOutput::loss.
torch::Tensor combine(const std::vector<LossOutput>& parts);

}  // namespace lire::losses

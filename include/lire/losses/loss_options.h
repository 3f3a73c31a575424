// Options of the preference losses (the `loss:` config section) and the
// catalogue of registered losses. No LibTorch here: the config system
// validates the section without linking the tensor code.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lire::config {
class SectionReader;
}

namespace lire::losses {

struct LossOptions {
  // Registry name of the loss (`loss.name`): see loss_specs().
  std::string name = "lire";
  // How unit losses become the batch loss. "rax" (default): pointwise losses
  // average over the valid items of the batch, pairwise ones over its valid
  // pairs, listwise ones over the lists with a valid item. "list-sum": per list,
  // the sum over its units (items or valid pairs), then the mean over lists
  // with a unit. "list-mean": per list, the mean over its units, then the mean
  // over lists with a unit. Listwise losses (lire, nce, dpo-pl) have one unit per
  // list, so the three coincide for them.
  std::string reduction = "rax";
  // Divide sequence log-probs (and reference log-probs) by their token counts.
  bool length_normalize = false;
  // Weight alpha of the SFT term alpha * NLL(target) any loss can add (LIRE Sec. 4.6).
  double sft_weight = 0.0;
  // Which response of a list the SFT term (and the `sft` loss) trains on:
  // "auto" (the first human-written one when the record marks one, else the
  // best by its targets), "best" (highest reward / best rank / highest label),
  // or "human" (the first human-written one; a list without one has no SFT term).
  std::string sft_target = "auto";

  // lire: temperature T of softmax(logps / T) over a list (LIRE code: 2).
  double temperature = 2.0;
  // lire: softmax (default) | raw | minmax | zscore, applied per list to the rewards.
  std::string reward_transform = "softmax";

  // LiPO family: s = beta * (logps - ref_logps). Default 0.05 for lipo, 0.1 otherwise.
  double beta = 0.1;
  // LiPO family: bt-winrate (default) | rank-winrate | minmax | none.
  std::string label_transform = "bt-winrate";
  // lipo: dcg (default) | constant-gain | constant-discount | constant.
  std::string lambda_weight = "dcg";
  // slic: hinge margin delta of max(0, delta - (s_i - s_j)).
  double delta = 1.0;
};

// What the registry knows about a loss without building it.
struct LossSpec {
  std::string name;             // YAML name
  std::string kind;             // "listwise", "pairwise", "pointwise" or "sft"
  bool uses_reference = false;  // scores use ref_logps (an undefined ref_logps means 0)
  std::vector<std::string> option_keys;  // keys of `loss:` this loss takes, besides `name`
  std::string summary;          // one line for --help and docs
};

// Every registered loss, in documentation order.
const std::vector<LossSpec>& loss_specs();
// The spec of `name`; throws ConfigError listing the valid names (and the closest one).
const LossSpec& loss_spec(const std::string& name);

// Reads the `loss:` section (name and the keys of that loss; others are errors).
LossOptions read_loss_options(config::SectionReader& reader);
// Options as lire::losses::make receives them: the `loss:` section without `name`.
LossOptions parse_loss_options(const std::string& name, const nlohmann::json& options);

}  // namespace lire::losses

#include "lire/losses/loss_options.h"

#include <algorithm>

#include "lire/config/section_reader.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"

namespace lire::losses {
namespace {

const std::vector<std::string> kLabelTransforms = {"bt-winrate", "rank-winrate", "minmax", "none"};
const std::vector<std::string> kReductions = {"rax", "list-sum", "list-mean"};

std::vector<std::string> with_common(std::vector<std::string> keys) {
  for (const char* key : {"reduction", "length_normalize", "sft_weight", "sft_target"}) keys.emplace_back(key);
  return keys;
}

}  // namespace

const std::vector<LossSpec>& loss_specs() {
  static const std::vector<LossSpec> specs = {
      {"lire", "listwise", false, with_common({"temperature", "reward_transform"}),
       "LIRE (Zhu et al. 2024, Eq. 6): -sum_j softmax_j(logps/T) * R'_j, R' the per-list reward softmax"},
      {"lipo", "pairwise", true, with_common({"beta", "label_transform", "lambda_weight"}),
       "LiPO-lambda (Liu et al. 2024, Eq. 12): pair-logistic weighted by the DCG lambda weight"},
      {"dpo", "pairwise", true, with_common({"beta", "label_transform"}),
       "DPO / pair-logistic over all valid pairs (DPO-BT when K=2; LiPO Eq. 5)"},
      {"dpo-pl", "listwise", true, with_common({"beta", "label_transform"}),
       "DPO-PL / PRO: Plackett-Luce list-MLE of the label order (LiPO Eq. 7)"},
      {"slic", "pairwise", true, with_common({"beta", "label_transform", "delta"}),
       "SLiC-norm: pair-hinge max(0, delta - (s_i - s_j)) (LiPO Eq. 6)"},
      {"point-mse", "pointwise", true, with_common({"beta", "label_transform"}),
       "pointwise MSE (s - psi)^2 (LiPO Sec. 4.1)"},
      {"point-sigmoid", "pointwise", true, with_common({"beta", "label_transform"}),
       "pointwise sigmoid cross-entropy softplus(s) - s * psi (LiPO Sec. 4.1)"},
      {"nce", "listwise", true, with_common({"beta", "label_transform"}),
       "softmax cross-entropy with psi normalised over the list (LiPO Eq. 11)"},
      {"sft", "sft", false, {"sft_target"},
       "token-level NLL of each list's SFT target (LIRE Sec. 4.6 regulariser, or SFT alone)"},
  };
  return specs;
}

const LossSpec& loss_spec(const std::string& name) {
  const auto& specs = loss_specs();
  auto it = std::find_if(specs.begin(), specs.end(), [&](const LossSpec& s) { return s.name == name; });
  if (it == specs.end()) {
    std::vector<std::string> names;
    for (const auto& s : specs) names.push_back(s.name);
    throw ConfigError(str("unknown loss '", name, "'", did_you_mean(name, names),
                          " (registered losses: ", join_sorted(names), ")"));
  }
  return *it;
}

LossOptions read_loss_options(config::SectionReader& r) {
  LossOptions o;
  o.name = r.string("name", o.name);
  const LossSpec* spec = nullptr;
  try {
    spec = &loss_spec(o.name);
  } catch (const ConfigError& e) {
    r.fail("name", e.what());
  }
  const auto takes = [&](const char* key) {
    return std::find(spec->option_keys.begin(), spec->option_keys.end(), key) != spec->option_keys.end();
  };
  // A key that belongs to another loss is a mistake worth naming precisely
  // (e.g. `temperature` left in a config switched from lire to lipo).
  for (const auto& other : loss_specs()) {
    for (const auto& key : other.option_keys) {
      if (!takes(key.c_str()) && r.has(key)) {
        r.fail(key, str("not an option of loss '", o.name, "' (it belongs to '", other.name,
                        "'; options of '", o.name, "': ",
                        spec->option_keys.empty() ? std::string("none") : join_sorted(spec->option_keys),
                        ")"));
      }
    }
  }
  if (takes("reduction")) o.reduction = r.choice("reduction", o.reduction, kReductions);
  if (takes("length_normalize")) o.length_normalize = r.boolean("length_normalize", o.length_normalize);
  if (takes("sft_weight"))
    o.sft_weight = r.number("sft_weight", o.sft_weight, config::NumberRange::non_negative());
  if (takes("sft_target")) o.sft_target = r.choice("sft_target", o.sft_target, {"auto", "best", "human"});
  if (takes("temperature"))
    o.temperature = r.number("temperature", o.temperature, config::NumberRange::positive());
  if (takes("reward_transform"))
    o.reward_transform =
        r.choice("reward_transform", o.reward_transform, {"softmax", "raw", "minmax", "zscore"});
  if (takes("beta"))
    o.beta = r.number("beta", o.name == "lipo" ? 0.05 : 0.1, config::NumberRange::positive());
  if (takes("label_transform"))
    o.label_transform = r.choice("label_transform", o.label_transform, kLabelTransforms);
  if (takes("lambda_weight"))
    o.lambda_weight = r.choice("lambda_weight", o.lambda_weight,
                               {"dcg", "constant-gain", "constant-discount", "constant"});
  if (takes("delta")) o.delta = r.number("delta", o.delta, config::NumberRange::non_negative());
  r.finish();
  return o;
}

LossOptions parse_loss_options(const std::string& name, const nlohmann::json& options) {
  if (!options.is_null() && !options.is_object())
    throw ConfigError(str("loss options must be a mapping, got ", options.type_name()));
  if (options.is_object() && options.contains("name"))
    throw ConfigError("loss options: give the loss name as the first argument, not as 'name'");
  nlohmann::json section = options.is_null() ? nlohmann::json::object() : options;
  section["name"] = name;
  config::SectionReader reader(section, "loss");
  return read_loss_options(reader);
}

}  // namespace lire::losses

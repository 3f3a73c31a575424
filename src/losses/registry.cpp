#include "lire/losses/registry.h"

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/losses/losses.h"

namespace lire::losses {

double Metric::value() const {
  if (!sum.defined() || !count.defined()) return 0.0;
  const double c = count.item<double>();
  return c > 0 ? sum.item<double>() / c : 0.0;
}

Loss::Loss(LossOptions options) : options_(std::move(options)) {}

const LossSpec& Loss::spec() const { return loss_spec(options_.name); }

std::unique_ptr<Loss> make(const std::string& name, const nlohmann::json& options) {
  return build_loss(parse_loss_options(name, options));
}

std::unique_ptr<Loss> make(const LossOptions& options) {
  loss_spec(options.name);  // unknown names fail with the list of valid ones
  return build_loss(options);
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& spec : loss_specs()) out.push_back(spec.name);
  return out;
}

torch::Tensor combine(const std::vector<LossOutput>& parts) {
  LIRE_CHECK(!parts.empty(), "combine() needs at least one LossOutput");
  auto numerator = parts[0].numerator, denominator = parts[0].denominator;
  auto sft_numerator = parts[0].sft_numerator, sft_denominator = parts[0].sft_denominator;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    LIRE_CHECK(parts[i].sft_weight == parts[0].sft_weight, "combine(): parts have different sft_weight");
    numerator = numerator + parts[i].numerator;
    denominator = denominator + parts[i].denominator;
    sft_numerator = sft_numerator + parts[i].sft_numerator;
    sft_denominator = sft_denominator + parts[i].sft_denominator;
  }
  auto loss = numerator / denominator.clamp_min(1);
  if (parts[0].sft_weight > 0) loss = loss + parts[0].sft_weight * sft_numerator / sft_denominator.clamp_min(1);
  return loss;
}

}  // namespace lire::losses

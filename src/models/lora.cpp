#include "lire/models/lora.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/config/config_tree.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"
#include "lire/core/tensor_shape.h"
#include "lire/io/peft_config.h"
#include "lire/io/safetensors.h"
#include "lire/models/llama.h"
#include "lire/models/weights.h"

namespace lire::models {
namespace {

namespace fs = std::filesystem;
const std::string kPrefix = "base_model.model.";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Every lire Linear of the model by module path (adapters' own Linears excluded).
std::vector<std::pair<std::string, LinearImpl*>> linears(torch::nn::Module& model) {
  std::vector<std::pair<std::string, LinearImpl*>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const std::string& path = item.key();
    if (ends_with(path, ".lora_A") || ends_with(path, ".lora_B")) continue;
    if (auto* linear = dynamic_cast<LinearImpl*>(item.value().get())) out.emplace_back(path, linear);
  }
  return out;
}

bool matches(const std::string& path, const std::vector<std::string>& targets) {
  for (const auto& t : targets) {
    if (t == "all-linear") {
      if (path != "lm_head" && path != "score") return true;
      continue;
    }
    if (path == t || ends_with(path, "." + t)) return true;
  }
  return false;
}

void attach(LinearImpl& linear, int64_t r, double scaling, double dropout, torch::Dtype dtype) {
  LIRE_CHECK(!linear.lora_A, "a LoRA adapter is already attached");
  const auto options = linear.weight.options().dtype(dtype);
  const int64_t out_features = linear.weight.size(0), in_features = linear.weight.size(1);
  linear.lora_A = linear.register_module("lora_A", std::make_shared<LinearImpl>(in_features, r, false, options));
  linear.lora_B = linear.register_module("lora_B", std::make_shared<LinearImpl>(r, out_features, false, options));
  torch::NoGradGuard no_grad;
  // PEFT: kaiming_uniform_(A, a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B = 0.
  torch::nn::init::kaiming_uniform_(linear.lora_A->weight, std::sqrt(5.0));
  linear.lora_B->weight.zero_();
  linear.lora_scaling = scaling;
  linear.lora_dropout = dropout;
  linear.lora_enabled = true;
}

void freeze_all(torch::nn::Module& model) {
  for (auto& p : model.parameters()) p.set_requires_grad(false);
}

void unfreeze_adapters(torch::nn::Module& model) {
  for (auto& [path, linear] : linears(model)) {
    if (!linear->lora_A) continue;
    linear->lora_A->weight.set_requires_grad(true);
    linear->lora_B->weight.set_requires_grad(true);
  }
}

}  // namespace

std::vector<std::string> apply_lora(torch::nn::Module& model, const config::LoraOptions& options,
                                    torch::Dtype adapter_dtype) {
  LIRE_CHECK(options.enabled, "apply_lora: lora.enabled is false");
  LIRE_CHECK(!options.targets.empty(), "apply_lora: no lora.targets (fill in the architecture's default first)");
  std::vector<std::string> adapted;
  for (auto& [path, linear] : linears(model)) {
    if (!matches(path, options.targets)) continue;
    attach(*linear, options.r, options.scaling(), options.dropout, adapter_dtype);
    adapted.push_back(path);
  }
  if (adapted.empty()) {
    std::set<std::string> names;
    for (const auto& [path, linear] : linears(model)) names.insert(path.substr(path.rfind('.') + 1));
    throw ConfigError(str("lora.targets [", join_sorted(options.targets),
                          "] match no Linear module of the model (module names: ",
                          join_sorted(std::vector<std::string>(names.begin(), names.end())), ")"));
  }
  freeze_all(model);
  unfreeze_adapters(model);
  std::sort(adapted.begin(), adapted.end());
  return adapted;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model.named_parameters()) {
    if ((p.key().find(".lora_A.") != std::string::npos || p.key().find(".lora_B.") != std::string::npos) &&
        p.value().requires_grad())
      out.emplace_back(p.key(), p.value());
  }
  return out;
}

void set_adapters_enabled(torch::nn::Module& model, bool enabled) {
  for (auto& [path, linear] : linears(model)) linear->lora_enabled = enabled;
}

AdaptersDisabled::AdaptersDisabled(torch::nn::Module& model) : model_(model) { set_adapters_enabled(model_, false); }
AdaptersDisabled::~AdaptersDisabled() { set_adapters_enabled(model_, true); }

void save_lora_adapter(torch::nn::Module& model, const std::string& folder, const config::LoraOptions& options,
                       const std::string& base_model_name_or_path, const std::string& task_type) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::set<std::string> adapted_names;
  for (auto& [path, linear] : linears(model)) {
    if (!linear->lora_A) continue;
    tensors.emplace_back(kPrefix + path + ".lora_A.weight", linear->lora_A->weight.detach());
    tensors.emplace_back(kPrefix + path + ".lora_B.weight", linear->lora_B->weight.detach());
    adapted_names.insert(path.substr(path.rfind('.') + 1));
  }
  LIRE_CHECK(!tensors.empty(), "save_lora_adapter: the model has no adapters");
  fs::create_directories(folder);
  // target_modules as PEFT writes them: the adapted module names.
  const std::vector<std::string> targets(adapted_names.begin(), adapted_names.end());
  const nlohmann::json config = {
      {"peft_type", "LORA"},
      {"task_type", task_type},
      {"base_model_name_or_path", base_model_name_or_path},
      {"r", options.r},
      {"lora_alpha", options.alpha},
      {"lora_dropout", options.dropout},
      {"use_rslora", options.rslora},
      {"target_modules", targets},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"use_dora", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
  };
  io::save_safetensors((fs::path(folder) / "adapter_model.safetensors").string(), tensors);
  config::write_file_atomically((fs::path(folder) / "adapter_config.json").string(), config.dump(2) + "\n");
}

config::LoraOptions load_lora_adapter(torch::nn::Module& model, const std::string& folder, torch::Dtype adapter_dtype) {
  const auto peft = io::read_peft_config(folder);
  const std::string file = (fs::path(folder) / "adapter_model.safetensors").string();
  LIRE_CHECK(fs::exists(file), folder, ": adapter_model.safetensors not found");
  io::CheckpointReader adapter(file);
  std::set<std::string> used, adapted_names;
  for (auto& [path, linear] : linears(model)) {
    const std::string a = kPrefix + path + ".lora_A.weight", b = kPrefix + path + ".lora_B.weight";
    if (!adapter.contains(a)) continue;
    LIRE_CHECK(adapter.contains(b), file, ": tensor '", a, "' has no matching '", b, "'");
    LIRE_CHECK(peft.targets(path), file, ": tensor '", a, "' adapts '", path,
               "', which adapter_config.json does not select");
    const int64_t r = peft.rank(path);
    attach(*linear, r, peft.scaling(path), peft.lora_dropout, adapter_dtype);
    const auto ta = adapter.tensor(a), tb = adapter.tensor(b);
    check_floating(ta, file, a);
    check_floating(tb, file, b);
    LIRE_CHECK(ta.sizes() == linear->lora_A->weight.sizes() && tb.sizes() == linear->lora_B->weight.sizes(), file,
               ": '", path, "': lora_A ", shape_of(ta), " / lora_B ", shape_of(tb), " do not fit weight ",
               shape_of(linear->weight), " with r = ", r);
    torch::NoGradGuard no_grad;
    linear->lora_A->weight.copy_(ta);
    linear->lora_B->weight.copy_(tb);
    used.insert(a);
    used.insert(b);
    adapted_names.insert(path.substr(path.rfind('.') + 1));
  }
  for (const auto& name : adapter.names())
    LIRE_CHECK(used.count(name), file, ": tensor '", name, "' matches no Linear module of this model");
  LIRE_CHECK(!used.empty(), file, ": no LoRA tensors found");
  freeze_all(model);
  unfreeze_adapters(model);
  config::LoraOptions o;
  o.r = peft.r;
  o.alpha = peft.lora_alpha;
  o.dropout = peft.lora_dropout;
  o.rslora = peft.use_rslora;
  // The adapted module names (also when adapter_config.json gives a regex).
  o.targets.assign(adapted_names.begin(), adapted_names.end());
  return o;
}

std::vector<std::string> lora_target_paths(torch::nn::Module& model, const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (auto& [path, linear] : linears(model))
    if (matches(path, targets)) out.push_back(path);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> adapted_paths(torch::nn::Module& model) {
  std::vector<std::string> out;
  for (auto& [path, linear] : linears(model))
    if (linear->lora_A) out.push_back(path);
  std::sort(out.begin(), out.end());
  return out;
}

void set_lora_dropout(torch::nn::Module& model, double dropout) {
  LIRE_CHECK(dropout >= 0.0 && dropout < 1.0, "lora dropout must be in [0, 1), got ", dropout);
  for (auto& [path, linear] : linears(model))
    if (linear->lora_A) linear->lora_dropout = dropout;
}

void merge_lora(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& [path, linear] : linears(model)) {
    if (!linear->lora_A) continue;
    const auto compute = linear->weight.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    const auto delta = torch::matmul(linear->lora_B->weight.to(compute), linear->lora_A->weight.to(compute)) *
                       linear->lora_scaling;
    linear->weight.copy_((linear->weight.to(compute) + delta).to(linear->weight.scalar_type()));
    linear->unregister_module("lora_A");
    linear->unregister_module("lora_B");
    linear->lora_A.reset();
    linear->lora_B.reset();
  }
}

}  // namespace lire::models

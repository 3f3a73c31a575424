// LoRA adapters on lire's Linear modules (Hu et al. 2021, as PEFT implements
// them): y = x W^T + b + scaling * B(A(dropout(x))), A initialised
// Kaiming-uniform (a = sqrt(5)) and B zero, so a new adapter starts as the
// identity. Adapters are submodules `lora_A` / `lora_B` of the adapted Linear,
// so parameter names are PEFT's (`model.layers.0.self_attn.q_proj.lora_A.weight`).
// The base weights are frozen and may stay in bf16 while the adapters (and
// their optimizer state) are float32: the adapter path runs in the adapters'
// dtype and is cast back.
//
// Switching adapters off for one forward (AdaptersDisabled) gives the base
// model: the reference policy of LiPO/DPO losses without a second copy.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "lire/config/lora_options.h"

namespace lire::models {

// Attaches adapters to every Linear whose module path matches options.targets
// (path == target or ends with "." + target; "all-linear": every Linear but
// lm_head and score), freezes every other parameter, and returns the adapted
// paths (sorted). `adapter_dtype` is the adapters' dtype (float32 by default;
// float64 for exact tests). Throws if a target matches nothing.
std::vector<std::string> apply_lora(torch::nn::Module& model, const config::LoraOptions& options,
                                    torch::Dtype adapter_dtype = torch::kFloat32);

// The paths of the Linear modules `targets` selects, as apply_lora matches
// them (adapter submodules excluded), sorted.
std::vector<std::string> lora_target_paths(torch::nn::Module& model, const std::vector<std::string>& targets);
// The paths of the Linear modules that carry an adapter, sorted.
std::vector<std::string> adapted_paths(torch::nn::Module& model);
// Sets every adapter's dropout (applied to the adapter's input while training).
void set_lora_dropout(torch::nn::Module& model, double dropout);

// The adapters' parameters by name (trainable ones only).
std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(torch::nn::Module& model);

// Turns every adapter of `model` on or off.
void set_adapters_enabled(torch::nn::Module& model, bool enabled);

// Adapters off for the guard's lifetime.
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(torch::nn::Module& model);
  ~AdaptersDisabled();
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  torch::nn::Module& model_;
};

// Writes the adapters in PEFT's format: adapter_config.json (peft_type LORA,
// r, lora_alpha, lora_dropout, use_rslora, target_modules, bias "none",
// base_model_name_or_path, task_type) and adapter_model.safetensors
// (base_model.model.<path>.lora_A.weight / lora_B.weight), atomically.
void save_lora_adapter(torch::nn::Module& model, const std::string& folder, const config::LoraOptions& options,
                       const std::string& base_model_name_or_path, const std::string& task_type = "CAUSAL_LM");

// Reads a PEFT LoRA adapter folder and attaches it as trainable adapters
// (targets, r, alpha, rslora, dropout from adapter_config.json; every module the
// file adapts must exist and every lora tensor must be used). Returns the options read.
config::LoraOptions load_lora_adapter(torch::nn::Module& model, const std::string& folder,
                                      torch::Dtype adapter_dtype = torch::kFloat32);

// Folds every adapter into its base weight (W += scaling * B A, in float32 or
// float64) and removes the adapters, leaving a plain model to save as HF weights.
void merge_lora(torch::nn::Module& model);

}  // namespace lire::models

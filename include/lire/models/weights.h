// Loading Hugging Face checkpoints into lire's modules: every parameter the
// model expects must be in the checkpoint with the expected shape (errors name
// the tensor and file), tensors the model does not use are reported, weights
// are read in the file's dtype and converted to the compute dtype. PEFT LoRA
// adapters can be merged into the weights at load (W += scaling * B A).
#pragma once

#include <set>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "lire/io/safetensors.h"
#include "lire/models/llama.h"

namespace lire::models {

// model.dtype: "fp32", "bf16", "fp16", "fp64", or "auto" (fp32 on CPU, bf16 on CUDA).
torch::Dtype resolve_dtype(const std::string& dtype, const torch::Device& device);

struct LoadOptions {
  std::string dtype = "auto";   // model.dtype
  std::string device = "auto";  // runtime.device
  std::string adapter;          // PEFT adapter folder to merge at load ("" = none)
};

// Throws naming `file` and tensor `name` unless `source` is floating point
// (an integer or bool tensor where a weight belongs is a wrong or hostile file,
// not something to convert silently).
void check_floating(const torch::Tensor& source, const std::string& file, const std::string& name);

// Copies the checkpoint's tensors into `module`'s parameters by name,
// converting dtype and device. Throws naming the tensor and file for a missing
// tensor or a shape mismatch. Returns the checkpoint tensors the module does
// not use (minus `ignored`), which callers report.
std::vector<std::string> load_parameters(torch::nn::Module& module, const io::CheckpointReader& checkpoint,
                                         const std::set<std::string>& ignored = {});

// Merges a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)
// into `module`'s weights: W += scaling(path) * B @ A, computed in float32 (or
// float64). Every lora_A has its lora_B and a target Linear weight of matching
// shape; unsupported tensors or variants are errors. Returns the merged module paths.
std::vector<std::string> merge_lora_adapter(torch::nn::Module& module, const std::string& adapter_folder);

// A causal LM (LlamaForCausalLM or Mistral) from an HF folder.
LlamaForCausalLM load_causal_lm(const std::string& folder, const LoadOptions& options = {});
// A reward model (LlamaForSequenceClassification) from an HF folder.
LlamaForSequenceClassification load_sequence_classifier(const std::string& folder,
                                                        const LoadOptions& options = {});

}  // namespace lire::models

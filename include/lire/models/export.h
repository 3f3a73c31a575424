// Exporting a model as a complete Hugging Face folder: config.json (with
// torch_dtype set), weights as model.safetensors (or shards with
// model.safetensors.index.json past max_shard_bytes, as HF's save_pretrained),
// and the source folder's tokenizer and generation files copied, so that the
// result loads in HF transformers, vLLM and lire unchanged. Written into a
// temporary folder next to `output` and renamed when complete.
#pragma once

#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace lire::models {

struct ExportOptions {
  // Dtype of the saved weights: "auto" (the source config's torch_dtype), fp32, bf16, fp16.
  std::string dtype = "auto";
  // Largest shard; HF's default max_shard_size is 5GB.
  std::uint64_t max_shard_bytes = 5'000'000'000ull;
  // Replace an existing non-empty output folder.
  bool overwrite = false;
};

void save_hf_folder(torch::nn::Module& model, const std::string& source_folder, const std::string& output,
                    const ExportOptions& options = {});

// The `torch_dtype` name HF's config.json uses for `dtype` ("float32", "bfloat16", ...).
std::string hf_dtype_name(torch::Dtype dtype);

// lire-merge: base model (a Llama-family causal LM or a T5) + PEFT adapter -> merged HF folder.
void merge_adapter_to_folder(const std::string& model_folder, const std::string& adapter_folder,
                             const std::string& output, const ExportOptions& options = {});

}  // namespace lire::models

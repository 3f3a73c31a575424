// The `model` config section: which Hugging Face model folder, in which
// compute dtype, with which PEFT adapter. Commands that take a model flag
// (lire-score --policy) set model.path from it.
#pragma once

#include <string>

namespace lire::config {

class SectionReader;

struct ModelOptions {
  // HF model folder (config.json, *.safetensors, tokenizer.model); "" = none given.
  std::string path;
  // Compute dtype: auto (fp32 on CPU, bf16 on CUDA), fp32, bf16, fp16, fp64.
  // Weights are read in the file's dtype and converted.
  std::string dtype = "auto";
  // PEFT LoRA adapter folder merged into the weights at load; "" = none.
  std::string adapter;
  // Run each list's prompt once and share its keys/values with the list's
  // responses (training, reference log-probs, lire-score). false: every
  // response is scored as its own prompt + response sequence (the naive path,
  // kept for comparison; both give the same log-probs and gradients).
  bool shared_prompt = true;
};

ModelOptions read_model_options(SectionReader& reader);

}  // namespace lire::config

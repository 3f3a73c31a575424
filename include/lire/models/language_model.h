// A generative language model of either architecture lire trains, samples
// from and scores with: a Llama-family causal LM (the prompt and the response
// are one sequence) or a T5 encoder-decoder (the prompt is the encoder input,
// the response the decoder target). The architecture comes from the folder's
// config.json (io::model_family), so every command takes either kind of
// folder. The model is a LibTorch module under Hugging Face's parameter names
// either way: LoRA, checkpoints, PEFT adapters and HF export work on
// module() unchanged; what differs (log-probs, generation, the
// tokenization rule's special tokens) is dispatched here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "lire/models/llama.h"
#include "lire/models/sequence_logprobs.h"
#include "lire/models/t5.h"
#include "lire/models/weights.h"

namespace lire::models {

class LanguageModel {
 public:
  LanguageModel() = default;
  explicit LanguageModel(LlamaForCausalLM model);
  explicit LanguageModel(T5ForConditionalGeneration model);

  // "llama" or "t5" (io::model_family's names).
  const std::string& family() const { return family_; }
  bool is_t5() const { return t5_ != nullptr; }
  // Null unless the model is of that architecture.
  LlamaForCausalLMImpl* llama() const { return llama_.get(); }
  T5ForConditionalGenerationImpl* t5() const { return t5_.get(); }

  // The module (Hugging Face's parameter names). `*model` and `model->` reach
  // it, so module-level code (LoRA, checkpoints, train()/eval()) reads the same
  // for both architectures.
  torch::nn::Module& module() const { return *module_; }
  torch::nn::Module& operator*() const { return *module_; }
  torch::nn::Module* operator->() const { return module_.get(); }
  explicit operator bool() const { return module_ != nullptr; }

  std::int64_t vocab_size() const;
  // Token ids that end a response (config.json's eos_token_id, one or several).
  std::vector<std::int64_t> eos_ids() const;
  // The BOS the tokenization rule keeps on truncated prompts (-1: none; T5 has none).
  std::int64_t bos_id() const;
  // The dtype and device of the weights (the LM head's).
  torch::Dtype dtype() const;
  torch::Device device() const;
  // "4 layers, hidden 64, vocab 256" for logs (T5: encoder/decoder layers).
  std::string describe() const;
  // PEFT's task_type of an adapter on this model: CAUSAL_LM or SEQ_2_SEQ_LM.
  std::string peft_task_type() const;
  // The Linear modules LoRA adapts when lora.targets is not given (PEFT's
  // defaults: q_proj, v_proj for Llama; q, v for T5).
  std::vector<std::string> default_lora_targets() const;
  // Activation checkpointing of every decoder layer (and T5 encoder block)
  // whenever gradients are on (models/activation_checkpoint.h).
  void set_gradient_checkpointing(bool on) const;

 private:
  std::string family_;
  std::shared_ptr<LlamaForCausalLMImpl> llama_;
  std::shared_ptr<T5ForConditionalGenerationImpl> t5_;
  std::shared_ptr<torch::nn::Module> module_;
};

// Loads a causal LM or a T5 folder, by its config.json (a PEFT adapter in
// options.adapter is merged in). Sequence classifiers (reward models) are not
// language models: a clear ConfigError.
LanguageModel load_language_model(const std::string& folder, const LoadOptions& options = {});

// Sequence log-probs of responses (see sequence_logprobs.h and t5_logprobs.h):
// the same quantity for both architectures.
SequenceLogprobs list_logprobs(const LanguageModel& model, const std::vector<int64_t>& prompt_ids,
                               const std::vector<std::vector<int64_t>>& response_ids,
                               const LogprobOptions& options = {});
ListBatchLogprobs batch_logprobs(const LanguageModel& model, const std::vector<ListTokens>& lists,
                                 const LogprobOptions& options = {});

}  // namespace lire::models

// Either architecture behind one handle (see the header).
#include "lire/models/language_model.h"

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/io/hf_config.h"
#include "lire/models/t5_logprobs.h"

namespace lire::models {

LanguageModel::LanguageModel(LlamaForCausalLM model)
    : family_("llama"), llama_(model.ptr()), module_(model.ptr()) {}

LanguageModel::LanguageModel(T5ForConditionalGeneration model)
    : family_("t5"), t5_(model.ptr()), module_(model.ptr()) {}

std::int64_t LanguageModel::vocab_size() const {
  return t5_ ? t5_->config().vocab_size : llama_->config().vocab_size;
}

std::vector<std::int64_t> LanguageModel::eos_ids() const {
  if (t5_) return {t5_->config().eos_token_id};
  return llama_->config().eos_token_ids;
}

std::int64_t LanguageModel::bos_id() const { return t5_ ? -1 : llama_->config().bos_token_id.value_or(-1); }

torch::Dtype LanguageModel::dtype() const {
  return (t5_ ? t5_->head_weight() : llama_->head_weight()).scalar_type();
}

torch::Device LanguageModel::device() const { return (t5_ ? t5_->head_weight() : llama_->head_weight()).device(); }

std::string LanguageModel::describe() const {
  if (t5_) {
    const auto& c = t5_->config();
    return str("T5 (", c.is_gated_act ? "v1.1" : "original", "), ", c.num_layers, "+", c.num_decoder_layers,
               " layers, d_model ", c.d_model, ", vocab ", c.vocab_size);
  }
  const auto& c = llama_->config();
  return str(c.num_hidden_layers, " layers, hidden ", c.hidden_size, ", vocab ", c.vocab_size);
}

std::string LanguageModel::peft_task_type() const { return t5_ ? "SEQ_2_SEQ_LM" : "CAUSAL_LM"; }

std::vector<std::string> LanguageModel::default_lora_targets() const {
  if (t5_) return {"q", "v"};
  return {"q_proj", "v_proj"};
}

LanguageModel load_language_model(const std::string& folder, const LoadOptions& options) {
  if (io::model_family(folder) == "t5") return LanguageModel(load_t5(folder, options));
  return LanguageModel(load_causal_lm(folder, options));
}

void LanguageModel::set_gradient_checkpointing(bool on) const {
  if (t5_) {
    t5_->encoder->gradient_checkpointing = on;
    t5_->decoder->gradient_checkpointing = on;
  } else if (llama_) {
    llama_->model->gradient_checkpointing = on;
  }
}

SequenceLogprobs list_logprobs(const LanguageModel& model, const std::vector<int64_t>& prompt_ids,
                               const std::vector<std::vector<int64_t>>& response_ids, const LogprobOptions& options) {
  if (model.t5()) return list_logprobs(*model.t5(), prompt_ids, response_ids, options);
  return list_logprobs(*model.llama(), prompt_ids, response_ids, options);
}

ListBatchLogprobs batch_logprobs(const LanguageModel& model, const std::vector<ListTokens>& lists,
                                 const LogprobOptions& options) {
  if (model.t5()) return batch_logprobs(*model.t5(), lists, options);
  return batch_logprobs(*model.llama(), lists, options);
}

}  // namespace lire::models

// A Hugging Face model folder's config.json as typed options. A missing key
// takes HF's default for the architecture; an unsupported architecture, rope
// type or value is a ConfigError naming the file and key, never ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lire::io {

// rope_scaling of config.json.
struct RopeScaling {
  std::string type = "none";  // "none", "linear", "dynamic" (NTK-aware), "llama3"
  double factor = 1.0;        // scaling factor (linear, dynamic, llama3)
  // llama3 only (HF's _compute_llama3_parameters):
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // The context length the model was trained with: llama3 reads it from
  // rope_scaling; dynamic sets it to max_position_embeddings (NTK scaling
  // starts beyond it, as in HF's _compute_dynamic_ntk_parameters).
  std::int64_t original_max_position_embeddings = 8192;
};

// LlamaForCausalLM / LlamaForSequenceClassification / MistralForCausalLM
// (same decoder; Mistral's sliding window is rejected when smaller than the
// context used).
struct LlamaConfig {
  std::string architecture = "LlamaForCausalLM";  // architectures[0]
  std::string model_type = "llama";               // "llama" or "mistral"
  std::int64_t vocab_size = 32000;
  std::int64_t hidden_size = 4096;
  std::int64_t intermediate_size = 11008;
  std::int64_t num_hidden_layers = 32;
  std::int64_t num_attention_heads = 32;
  std::int64_t num_key_value_heads = 32;  // defaults to num_attention_heads
  std::int64_t head_dim = 128;            // defaults to hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  std::int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::string hidden_act = "silu";                  // only silu is supported
  std::optional<std::int64_t> sliding_window;       // mistral; null = none
  std::optional<std::int64_t> bos_token_id = 1;
  std::vector<std::int64_t> eos_token_ids = {2};    // eos_token_id may be an int or a list
  std::optional<std::int64_t> pad_token_id;
  std::string torch_dtype = "float32";              // as written ("float32", "bfloat16", "float16")
  std::int64_t num_labels = 1;                      // sequence classification heads
                                                    // (num_labels, else len(id2label), else HF's 2;
                                                    // 1 and unused for causal LMs)

  // True for *ForSequenceClassification (reward models: a `score` head).
  bool sequence_classification() const;
};

// Reads `<folder>/config.json` (or a config.json path). Errors:
// "<file>: <key>: <reason>".
LlamaConfig read_llama_config(const std::string& folder_or_file);
LlamaConfig parse_llama_config(const nlohmann::json& config, const std::string& file = "config.json");

// T5ForConditionalGeneration: original T5 (feed_forward_proj "relu", tied
// embeddings) and T5 v1.1 / Flan-T5 ("gated-gelu", untied lm_head). Defaults
// are transformers' T5Config (t5-small's sizes); dropout keys are ignored
// (lire trains without dropout in the base model).
struct T5Config {
  std::string architecture = "T5ForConditionalGeneration";  // architectures[0]
  std::int64_t vocab_size = 32128;
  std::int64_t d_model = 512;             // hidden size
  std::int64_t d_kv = 64;                 // size of one attention head (num_heads * d_kv need not be d_model)
  std::int64_t d_ff = 2048;               // feed-forward inner size
  std::int64_t num_layers = 6;            // encoder blocks
  std::int64_t num_decoder_layers = 6;    // decoder blocks (defaults to num_layers)
  std::int64_t num_heads = 8;
  std::int64_t relative_attention_num_buckets = 32;
  std::int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  // feed_forward_proj "[gated-]ACT" as HF splits it: the activation and
  // whether the FFN is gated (wi_0, wi_1) or not (wi). "gated-gelu" means
  // gelu_new (tanh approximation). config.json's own dense_act_fn /
  // is_gated_act win when present, as in HF.
  std::string feed_forward_proj = "relu";
  std::string dense_act_fn = "relu";      // "relu", "gelu" (erf), "gelu_new" (tanh), "silu"
  bool is_gated_act = false;
  bool tie_word_embeddings = true;        // tied: lm_head = shared, decoder output scaled by d_model^-0.5
  std::int64_t pad_token_id = 0;
  std::int64_t eos_token_id = 1;
  std::int64_t decoder_start_token_id = 0;  // first decoder input; defaults to pad_token_id (T5's convention)
  std::string torch_dtype = "float32";      // as written ("float32", "bfloat16", "float16")
};

// Reads `<folder>/config.json` (or a config.json path) of a T5 model. Errors:
// "<file>: <key>: <reason>".
T5Config read_t5_config(const std::string& folder_or_file);
T5Config parse_t5_config(const nlohmann::json& config, const std::string& file = "config.json");

// The architecture family named by config.json ("llama" for Llama/Mistral,
// "t5" for T5ForConditionalGeneration) from architectures[0], else model_type,
// without validating the rest; errors for an unknown architecture list the
// supported ones. Callers pick read_llama_config or read_t5_config with it.
std::string model_family(const std::string& folder_or_file);

// The sentencepiece model of a model folder: `<folder>/tokenizer.model`, else
// `<folder>/spiece.model`. A folder with only tokenizer.json (a fast-tokenizer
// model lire cannot read), or with no tokenizer at all, is a ConfigError.
std::string find_tokenizer_model(const std::string& folder);

}  // namespace lire::io

// The Llama decoder (Llama, Llama 2/3, Alpaca, Vicuna, Mistral-style GQA) as
// LibTorch modules registered under Hugging Face's parameter names
// (model.layers.3.self_attn.q_proj.weight), so loading a checkpoint is a name
// lookup. Numerics follow HF transformers' LlamaModel: RMSNorm in float32,
// rotary embeddings in HF's rotate-half layout with tables computed in
// float32 (float64 for a float64 model), softmax in float32, additive masks
// holding the dtype's lowest value (so fully padded rows stay finite).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "lire/io/hf_config.h"
#include "lire/models/kv_cache.h"

namespace lire::models {

// y = x W^T (+ b), plus a LoRA update when an adapter is attached
// (models/lora.h). Parameters are allocated uninitialised (checkpoints fill
// them; init_weights() draws fresh ones), in the dtype and device given.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  torch::Tensor bias;  // undefined without bias

  // LoRA adapter (registered as submodules "lora_A" and "lora_B" when attached).
  std::shared_ptr<LinearImpl> lora_A, lora_B;
  double lora_scaling = 0.0;
  double lora_dropout = 0.0;
  bool lora_enabled = true;
};
TORCH_MODULE(Linear);

// HF LlamaRMSNorm: weight * (x / sqrt(mean(x^2) + eps)), computed in float32.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t size, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// Rotary position embeddings with rope_scaling (none, linear, dynamic NTK, llama3).
class RotaryEmbedding {
 public:
  RotaryEmbedding(const io::LlamaConfig& config, torch::Dtype table_dtype);
  // cos and sin [B, T, head_dim] for position_ids [B, T], in `dtype`.
  std::pair<torch::Tensor, torch::Tensor> tables(const torch::Tensor& position_ids, torch::Dtype dtype) const;

 private:
  torch::Tensor inv_freq(int64_t seq_len, const torch::Device& device) const;
  io::LlamaConfig config_;
  torch::Dtype table_dtype_;
};

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const io::LlamaConfig& config, const torch::TensorOptions& options);
  // x [B,T,H]; cos/sin [B,T,D]; mask [B,1,T,T_past+T] additive; cache: this layer's slot or null
  // (extended by this call's keys/values); with shared_prefix, the slot holds [1, kv_heads, T_past, D]
  // read by every row and is left unchanged (KVCache::shared_prefix).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        bool shared_prefix = false);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  LlamaMLPImpl(const io::LlamaConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  LlamaDecoderLayerImpl(const io::LlamaConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        bool shared_prefix = false);
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// The decoder stack (HF's LlamaModel, registered as "model").
class LlamaModelImpl : public torch::nn::Module {
 public:
  LlamaModelImpl(const io::LlamaConfig& config, const torch::TensorOptions& options);
  // input_ids [B,T] int64; attention_mask [B, T_past+T] (1 = real token; undefined = all real);
  // position_ids [B,T] (undefined: cumsum(attention_mask) - 1 over the full mask, so left
  // padding gets the same positions as no padding); cache: extended in place when given, or,
  // when cache->shared_prefix, a one-row prefix every row attends to (left unchanged).
  // Returns the final-norm hidden states [B,T,hidden].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        const torch::Tensor& position_ids = {}, KVCache* cache = nullptr);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  const io::LlamaConfig& config() const { return config_; }
  // Activation checkpointing (HF's gradient_checkpointing): in training mode
  // with gradients on, each layer keeps only its input and recomputes its
  // activations during backward (models/checkpoint.h).
  bool gradient_checkpointing = false;

 private:
  io::LlamaConfig config_;
  RotaryEmbedding rotary_;
};
TORCH_MODULE(LlamaModel);

// LlamaForCausalLM: the decoder and the LM head (tied to embed_tokens when
// tie_word_embeddings, in which case no lm_head parameter exists).
class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  LlamaForCausalLMImpl(const io::LlamaConfig& config, const torch::TensorOptions& options);
  // Hidden states, as LlamaModel::forward.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        const torch::Tensor& position_ids = {}, KVCache* cache = nullptr);
  // Logits [..., vocab] of hidden states [..., hidden].
  torch::Tensor logits(const torch::Tensor& hidden);
  // The LM head's weight [vocab, hidden] (embed_tokens' when tied).
  torch::Tensor head_weight() const;
  const io::LlamaConfig& config() const { return model->config(); }
  // Draws fresh weights as HF's _init_weights: normal(0, std) for linear and
  // embedding weights, ones for norms (used for models trained from scratch).
  void init_weights(double std = 0.02);
  LlamaModel model{nullptr};
  Linear lm_head{nullptr};  // null when tied
};
TORCH_MODULE(LlamaForCausalLM);

// LlamaForSequenceClassification (reward models): the decoder and a bias-free
// `score` head read at each row's rightmost real token (attention mask 1).
class LlamaForSequenceClassificationImpl : public torch::nn::Module {
 public:
  LlamaForSequenceClassificationImpl(const io::LlamaConfig& config, const torch::TensorOptions& options);
  // Scores [B, num_labels].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
  const io::LlamaConfig& config() const { return model->config(); }
  LlamaModel model{nullptr};
  Linear score{nullptr};
};
TORCH_MODULE(LlamaForSequenceClassification);

// Index of each row's rightmost position whose mask is 1 ([B] int64; 0 for an all-zero row).
torch::Tensor last_real_positions(const torch::Tensor& attention_mask);

}  // namespace lire::models

// T5 encoder-decoder (Raffel et al. 2020) as LibTorch modules registered under
// Hugging Face's parameter names (shared.weight,
// encoder.block.0.layer.0.SelfAttention.q.weight, ..., lm_head.weight), so
// loading a checkpoint is a name lookup. Both variants HF's
// T5ForConditionalGeneration loads:
//  - original T5: ReLU feed-forward (DenseReluDense.wi / wo), LM head tied to
//    the shared embedding, decoder output scaled by d_model^-0.5 before it;
//  - T5 v1.1 / Flan-T5: gated-GELU (wi_0, wi_1, wo; gelu_new = tanh
//    approximation), untied lm_head, no scaling.
// Numerics follow HF's T5 (eager attention):
//  - layer norm = RMS norm without mean subtraction or bias, in float32
//    (float64 for a float64 model): models::RMSNorm;
//  - attention scores are q k^T with NO 1/sqrt(d_kv) scaling, plus a learned
//    relative position bias per head. The bias table lives in block 0 of each
//    stack (relative_attention_bias, [num_buckets, num_heads]) and is shared by
//    all its blocks; bucket indices are bidirectional in the encoder and causal
//    in the decoder (t5_relative_position_bucket). Cross-attention has no
//    position bias. Masks are additive, holding the dtype's lowest value;
//    softmax in float32;
//  - float16 hidden states are clamped below the float16 maximum after every
//    sub-layer, as HF does.
// Dropout is not applied (lire trains adapters or the full model without
// dropout in the base network).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "lire/io/hf_config.h"
#include "lire/models/kv_cache.h"
#include "lire/models/llama.h"
#include "lire/models/weights.h"

namespace lire::models {

// HF's T5Attention._relative_position_bucket: the bucket of each relative
// position (key position - query position, int64). Bidirectional (encoder):
// half the buckets for keys after the query; causal (decoder): keys after the
// query share bucket 0. Small offsets get a bucket each, larger ones
// logarithmically sized buckets up to max_distance (computed in float32 as HF
// does, so indices agree exactly), beyond which the last bucket.
torch::Tensor t5_relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                          int64_t num_buckets, int64_t max_distance);

// Keys and values of the decoder: self-attention grows by the positions
// decoded; cross-attention keys/values of the encoder states are computed on
// the first call and reused (the encoder mask must be passed on every call).
struct T5DecoderCache {
  KVCache self_attention;   // per decoder layer [B, heads, T_past, d_kv]
  KVCache cross_attention;  // per decoder layer [B, heads, S, d_kv]

  int64_t length() const { return self_attention.length(); }
  bool empty() const { return self_attention.empty(); }
  // Keeps rows `index` of the batch (also select the encoder mask's rows).
  void select_rows(const torch::Tensor& index) {
    self_attention.select_rows(index);
    cross_attention.select_rows(index);
  }
};

// T5Attention: q, k, v [heads*d_kv, d_model], o [d_model, heads*d_kv], no biases.
class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const io::T5Config& config, bool has_relative_attention_bias, bool is_decoder,
                  const torch::TensorOptions& options);
  // Position bias [1, heads, T, past+T] of queries at positions past..past+T-1
  // over keys 0..past+T-1 (block 0 only: it owns relative_attention_bias).
  torch::Tensor compute_bias(int64_t past, int64_t query_length) const;
  // x [B,T,d_model]. Self-attention when `key_value_states` is undefined,
  // else cross-attention over it [B,S,d_model]. `bias` is added to the scores
  // (position bias plus additive mask, broadcastable to [B,heads,T,keys]).
  // cache_k / cache_v: this layer's slot or null. Self-attention appends the
  // new keys/values; cross-attention fills the slot once and reuses it.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_value_states, const torch::Tensor& bias,
                        torch::Tensor* cache_k = nullptr, torch::Tensor* cache_v = nullptr);
  Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};  // null outside block 0

 private:
  int64_t heads_, d_kv_, num_buckets_, max_distance_;
  bool bidirectional_;
};
TORCH_MODULE(T5Attention);

// T5LayerSelfAttention: x + SelfAttention(layer_norm(x)).
class T5LayerSelfAttentionImpl : public torch::nn::Module {
 public:
  T5LayerSelfAttentionImpl(const io::T5Config& config, bool has_relative_attention_bias, bool is_decoder,
                           const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, torch::Tensor* cache_k,
                        torch::Tensor* cache_v);
  T5Attention SelfAttention{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerSelfAttention);

// T5LayerCrossAttention: x + EncDecAttention(layer_norm(x), encoder states).
class T5LayerCrossAttentionImpl : public torch::nn::Module {
 public:
  T5LayerCrossAttentionImpl(const io::T5Config& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& encoder_states, const torch::Tensor& mask,
                        torch::Tensor* cache_k, torch::Tensor* cache_v);
  T5Attention EncDecAttention{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerCrossAttention);

// T5DenseActDense (wo(act(wi(x)))) or T5DenseGatedActDense
// (wo(act(wi_0(x)) * wi_1(x))), by config.is_gated_act. HF names the module
// DenseReluDense whatever the activation.
class T5DenseImpl : public torch::nn::Module {
 public:
  T5DenseImpl(const io::T5Config& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};  // wi or wi_0/wi_1

 private:
  std::string activation_;
};
TORCH_MODULE(T5Dense);

// T5LayerFF: x + DenseReluDense(layer_norm(x)).
class T5LayerFFImpl : public torch::nn::Module {
 public:
  T5LayerFFImpl(const io::T5Config& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  T5Dense DenseReluDense{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerFF);

// T5Block: layer.0 self-attention, (decoder: layer.1 cross-attention), then the feed-forward layer.
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const io::T5Config& config, bool has_relative_attention_bias, bool is_decoder,
              const torch::TensorOptions& options);
  // self_bias: position bias + mask of the self-attention; encoder_states /
  // cross_mask: decoder only. Cache slots may be null.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& self_bias, const torch::Tensor& encoder_states,
                        const torch::Tensor& cross_mask, torch::Tensor* self_k, torch::Tensor* self_v,
                        torch::Tensor* cross_k, torch::Tensor* cross_v);
  torch::nn::ModuleList layer{nullptr};

 private:
  bool is_decoder_;
};
TORCH_MODULE(T5Block);

// T5Stack without its embedding (HF's encoder.embed_tokens / decoder.embed_tokens
// are the model's `shared` embedding; the stack takes embedded inputs).
class T5StackImpl : public torch::nn::Module {
 public:
  T5StackImpl(const io::T5Config& config, bool is_decoder, const torch::TensorOptions& options);
  // Encoder: embeds [B,S,d_model], attention_mask [B,S] (1 = real token; undefined = all real).
  // Returns final_layer_norm of the last block's output.
  torch::Tensor encode(const torch::Tensor& embeds, const torch::Tensor& attention_mask);
  // Decoder: embeds [B,T,d_model] of positions cache.length().. ; encoder_states
  // [B,S,d_model] with encoder_mask [B,S]; causal self-attention.
  torch::Tensor decode(const torch::Tensor& embeds, const torch::Tensor& encoder_states,
                       const torch::Tensor& encoder_mask, T5DecoderCache* cache);
  torch::nn::ModuleList block{nullptr};
  RMSNorm final_layer_norm{nullptr};
  // Activation checkpointing per block with gradients on (models/activation_checkpoint.h);
  // decoding with a cache (generation) is never checkpointed.
  bool gradient_checkpointing = false;

 private:
  bool is_decoder_;
};
TORCH_MODULE(T5Stack);

// T5ForConditionalGeneration.
class T5ForConditionalGenerationImpl : public torch::nn::Module {
 public:
  T5ForConditionalGenerationImpl(const io::T5Config& config, const torch::TensorOptions& options);
  // Encoder states [B,S,d_model] of input_ids [B,S] int64 with attention_mask
  // [B,S] (1 = real token; undefined = all real; padding may be on either side).
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
  // Decoder hidden states [B,T,d_model] (after the final norm, before the LM
  // head's scaling) of decoder_input_ids [B,T] at positions cache->length()..
  // (0.. without a cache), attending causally to themselves and to the
  // encoder states [B,S,d_model] where encoder_mask [B,S] is 1. Decoder
  // inputs are right-padded when ragged: causal attention keeps the padding
  // out of every real position.
  torch::Tensor decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_states,
                       const torch::Tensor& encoder_mask = {}, T5DecoderCache* cache = nullptr);
  // Logits [..., vocab] of decoder hidden states [..., d_model] (scaled by
  // d_model^-0.5 first when the head is tied to the embedding).
  torch::Tensor logits(const torch::Tensor& decoder_hidden);
  // encode + decode + logits: [B,T,vocab].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& decoder_input_ids);
  // The LM head's weight [vocab, d_model] (shared.weight when tied) and the
  // factor applied to the decoder output before it (d_model^-0.5 or 1).
  torch::Tensor head_weight() const;
  double head_scale() const;
  const io::T5Config& config() const { return config_; }

  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr}, decoder{nullptr};
  Linear lm_head{nullptr};  // null when tied

 private:
  io::T5Config config_;
};
TORCH_MODULE(T5ForConditionalGeneration);

// A T5ForConditionalGeneration from an HF folder (config.json,
// model.safetensors or a sharded index). Tensors HF also ignores are skipped
// silently: encoder/decoder.embed_tokens.weight (copies of shared.weight),
// lm_head.weight of a tied model, and the unused cross-attention
// relative_attention_bias of old checkpoints. options.adapter merges a PEFT
// adapter (module paths as in HF: encoder.block.0.layer.0.SelfAttention.q).
T5ForConditionalGeneration load_t5(const std::string& folder, const LoadOptions& options = {});

// Greedy decoding with the caches (encoder run once, cross-attention keys and
// values computed once, one decoder position per step), as HF's generate with
// do_sample=false: every row starts with decoder_start_token_id; a row that
// produced eos_token_id continues with pad_token_id; decoding stops after
// max_new_tokens or when every row has finished.
struct T5GreedyOutput {
  torch::Tensor tokens;       // [B, 1 + steps] int64: decoder_start_token_id, then the chosen tokens
  torch::Tensor step_logits;  // [B, steps, vocab]: the logits each step chose from
};
// use_cache = false re-runs the decoder over the whole prefix every step (for tests).
T5GreedyOutput t5_greedy_decode(T5ForConditionalGenerationImpl& model, const torch::Tensor& input_ids,
                                const torch::Tensor& attention_mask, int64_t max_new_tokens, bool use_cache = true);

}  // namespace lire::models

#include "lire/models/t5.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "lire/core/error.h"
#include "lire/models/attention.h"
#include "lire/core/torch_runtime.h"
#include "lire/models/activation_checkpoint.h"
#include "lire/io/safetensors.h"

namespace lire::models {
namespace {

// The value an additive mask holds where attention is not allowed (HF: torch.finfo(dtype).min).
double mask_value(torch::Dtype dtype) {
  if (dtype == torch::kFloat64) return std::numeric_limits<double>::lowest();
  if (dtype == torch::kFloat32) return std::numeric_limits<float>::lowest();
  if (dtype == torch::kHalf) return -65504.0;
  return -3.3895313892515355e38;  // bfloat16 lowest
}

// [B,S] 0/1 mask -> additive [B,1,1,S] in `dtype`.
torch::Tensor additive_mask(const torch::Tensor& attention_mask, torch::Dtype dtype) {
  const auto opts = torch::TensorOptions().dtype(dtype).device(attention_mask.device());
  return torch::where(attention_mask.to(torch::kBool), torch::zeros({}, opts), torch::full({}, mask_value(dtype), opts))
      .unsqueeze(1)
      .unsqueeze(1);
}

// HF T5 keeps float16 activations finite: clamp just below the float16 maximum
// (1000 lower when an inf has already appeared).
torch::Tensor clamp_fp16(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kHalf) return x;
  const double max = 65504.0;
  const double clamp = torch::isinf(x).any().item<bool>() ? max - 1000.0 : max;
  return torch::clamp(x, -clamp, clamp);
}

// HF's NewGELUActivation, term by term (so float32 results agree bit for bit).
torch::Tensor gelu_new(const torch::Tensor& x) {
  return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3.0))));
}

torch::Tensor activate(const std::string& activation, const torch::Tensor& x) {
  if (activation == "relu") return torch::relu(x);
  if (activation == "gelu_new") return gelu_new(x);
  if (activation == "gelu") return torch::gelu(x);
  if (activation == "silu") return torch::silu(x);
  throw ConfigError(str("T5: activation '", activation, "' is not supported"));
}

}  // namespace

// ------------------------------------------------ relative position buckets
torch::Tensor t5_relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                          int64_t num_buckets, int64_t max_distance) {
  auto position = relative_position.to(torch::kLong);
  auto buckets = torch::zeros_like(position);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + (position > 0).to(torch::kLong) * num_buckets;
    position = position.abs();
  } else {
    position = -torch::min(position, torch::zeros_like(position));
  }
  // position is now in [0, inf): exact buckets below max_exact, then log-spaced.
  const int64_t max_exact = num_buckets / 2;
  const auto is_small = position < max_exact;
  // As HF: float32 log, divided by a Python float, times an int, truncated.
  // Positions below max_exact (log(0) = -inf included) take the exact branch.
  const auto scaled = torch::log(position.to(torch::kFloat) / static_cast<double>(max_exact)) /
                      std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                      static_cast<double>(num_buckets - max_exact);
  auto large = max_exact + torch::where(is_small, torch::zeros_like(scaled), scaled).to(torch::kLong);
  large = torch::min(large, torch::full_like(large, num_buckets - 1));
  return buckets + torch::where(is_small, position, large);
}

// ---------------------------------------------------------------- Attention
T5AttentionImpl::T5AttentionImpl(const io::T5Config& c, bool has_relative_attention_bias, bool is_decoder,
                                 const torch::TensorOptions& options)
    : heads_(c.num_heads),
      d_kv_(c.d_kv),
      num_buckets_(c.relative_attention_num_buckets),
      max_distance_(c.relative_attention_max_distance),
      bidirectional_(!is_decoder) {
  const int64_t inner = c.num_heads * c.d_kv;
  q = register_module("q", Linear(c.d_model, inner, false, options));
  k = register_module("k", Linear(c.d_model, inner, false, options));
  v = register_module("v", Linear(c.d_model, inner, false, options));
  o = register_module("o", Linear(inner, c.d_model, false, options));
  if (has_relative_attention_bias) {
    relative_attention_bias = register_module(
        "relative_attention_bias",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(c.relative_attention_num_buckets, c.num_heads)));
    relative_attention_bias->weight.set_data(torch::empty({c.relative_attention_num_buckets, c.num_heads}, options));
  }
}

torch::Tensor T5AttentionImpl::compute_bias(int64_t past, int64_t query_length) const {
  LIRE_CHECK(!relative_attention_bias.is_empty(), "T5: compute_bias on an attention without relative_attention_bias");
  const auto& table = relative_attention_bias->weight;
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(table.device());
  const auto query = torch::arange(past, past + query_length, long_opts).unsqueeze(1);  // [T,1]
  const auto key = torch::arange(0, past + query_length, long_opts).unsqueeze(0);       // [1,K]
  const auto buckets = t5_relative_position_bucket(key - query, bidirectional_, num_buckets_, max_distance_);
  return torch::embedding(table, buckets).permute({2, 0, 1}).unsqueeze(0);  // [1,H,T,K]
}

torch::Tensor T5AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& key_value_states,
                                       const torch::Tensor& bias, torch::Tensor* cache_k, torch::Tensor* cache_v) {
  const int64_t B = x.size(0), T = x.size(1);
  auto split_heads = [&](const torch::Tensor& t) { return t.view({B, -1, heads_, d_kv_}).transpose(1, 2); };
  const auto query = split_heads(q(x));
  torch::Tensor key, value;
  if (!key_value_states.defined()) {  // self-attention: append to the cache
    key = split_heads(k(x));
    value = split_heads(v(x));
    if (cache_k) {
      if (cache_k->defined()) {
        key = torch::cat({*cache_k, key}, 2);
        value = torch::cat({*cache_v, value}, 2);
      }
      *cache_k = key;
      *cache_v = value;
    }
  } else if (cache_k && cache_k->defined()) {  // cross-attention, keys/values already computed
    key = *cache_k;
    value = *cache_v;
  } else {
    key = split_heads(k(key_value_states));
    value = split_heads(v(key_value_states));
    if (cache_k) {
      *cache_k = key;
      *cache_v = value;
    }
  }
  // No 1/sqrt(d_kv): T5 folds it into the initialisation of q.
  const auto out = attention(query, key, value, bias, /*scale=*/1.0);
  return o(out.transpose(1, 2).reshape({B, T, heads_ * d_kv_}));
}

// ------------------------------------------------------------- Sub-layers
T5LayerSelfAttentionImpl::T5LayerSelfAttentionImpl(const io::T5Config& c, bool has_relative_attention_bias,
                                                   bool is_decoder, const torch::TensorOptions& o) {
  SelfAttention = register_module("SelfAttention", T5Attention(c, has_relative_attention_bias, is_decoder, o));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon, o));
}

torch::Tensor T5LayerSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& bias,
                                                torch::Tensor* cache_k, torch::Tensor* cache_v) {
  return x + SelfAttention->forward(layer_norm(x), torch::Tensor(), bias, cache_k, cache_v);
}

T5LayerCrossAttentionImpl::T5LayerCrossAttentionImpl(const io::T5Config& c, const torch::TensorOptions& o) {
  EncDecAttention = register_module("EncDecAttention", T5Attention(c, false, true, o));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon, o));
}

torch::Tensor T5LayerCrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& encoder_states,
                                                 const torch::Tensor& mask, torch::Tensor* cache_k,
                                                 torch::Tensor* cache_v) {
  return x + EncDecAttention->forward(layer_norm(x), encoder_states, mask, cache_k, cache_v);
}

T5DenseImpl::T5DenseImpl(const io::T5Config& c, const torch::TensorOptions& o) : activation_(c.dense_act_fn) {
  if (c.is_gated_act) {
    wi_0 = register_module("wi_0", Linear(c.d_model, c.d_ff, false, o));
    wi_1 = register_module("wi_1", Linear(c.d_model, c.d_ff, false, o));
  } else {
    wi = register_module("wi", Linear(c.d_model, c.d_ff, false, o));
  }
  wo = register_module("wo", Linear(c.d_ff, c.d_model, false, o));
}

torch::Tensor T5DenseImpl::forward(const torch::Tensor& x) {
  const auto h = wi ? activate(activation_, wi(x)) : activate(activation_, wi_0(x)) * wi_1(x);
  return wo(h.to(wo->weight.scalar_type()));
}

T5LayerFFImpl::T5LayerFFImpl(const io::T5Config& c, const torch::TensorOptions& o) {
  DenseReluDense = register_module("DenseReluDense", T5Dense(c, o));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon, o));
}

torch::Tensor T5LayerFFImpl::forward(const torch::Tensor& x) { return x + DenseReluDense(layer_norm(x)); }

// ------------------------------------------------------------------ Block
T5BlockImpl::T5BlockImpl(const io::T5Config& c, bool has_relative_attention_bias, bool is_decoder,
                         const torch::TensorOptions& o)
    : is_decoder_(is_decoder) {
  layer = register_module("layer", torch::nn::ModuleList());
  layer->push_back(T5LayerSelfAttention(c, has_relative_attention_bias, is_decoder, o));
  if (is_decoder) layer->push_back(T5LayerCrossAttention(c, o));
  layer->push_back(T5LayerFF(c, o));
}

torch::Tensor T5BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& self_bias,
                                   const torch::Tensor& encoder_states, const torch::Tensor& cross_mask,
                                   torch::Tensor* self_k, torch::Tensor* self_v, torch::Tensor* cross_k,
                                   torch::Tensor* cross_v) {
  auto h = clamp_fp16(layer->ptr<T5LayerSelfAttentionImpl>(0)->forward(x, self_bias, self_k, self_v));
  if (is_decoder_) {
    h = clamp_fp16(layer->ptr<T5LayerCrossAttentionImpl>(1)->forward(h, encoder_states, cross_mask, cross_k, cross_v));
  }
  return clamp_fp16(layer->ptr<T5LayerFFImpl>(is_decoder_ ? 2 : 1)->forward(h));
}

// ------------------------------------------------------------------ Stack
T5StackImpl::T5StackImpl(const io::T5Config& c, bool is_decoder, const torch::TensorOptions& o)
    : is_decoder_(is_decoder) {
  block = register_module("block", torch::nn::ModuleList());
  const int64_t n = is_decoder ? c.num_decoder_layers : c.num_layers;
  for (int64_t i = 0; i < n; ++i) block->push_back(T5Block(c, /*has_relative_attention_bias=*/i == 0, is_decoder, o));
  final_layer_norm = register_module("final_layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon, o));
}

torch::Tensor T5StackImpl::encode(const torch::Tensor& embeds, const torch::Tensor& attention_mask) {
  LIRE_CHECK(!is_decoder_, "T5: encode() called on the decoder stack");
  const int64_t S = embeds.size(1);
  const auto& attention = block->ptr<T5BlockImpl>(0)->layer->ptr<T5LayerSelfAttentionImpl>(0)->SelfAttention;
  // Position bias [1,H,S,S] plus the padding mask [B,1,1,S], shared by every block.
  const auto bias = attention->compute_bias(0, S) + additive_mask(attention_mask, embeds.scalar_type());
  auto h = embeds;
  const bool checkpoint = gradient_checkpointing && torch::GradMode::is_enabled();
  for (std::size_t i = 0; i < block->size(); ++i) {
    auto* b = block->ptr<T5BlockImpl>(i).get();
    if (checkpoint) {
      h = checkpointed([b](const std::vector<torch::Tensor>& in) -> std::vector<torch::Tensor> {
            return {b->forward(in[0], in[1], {}, {}, nullptr, nullptr, nullptr, nullptr)};
          }, {h, bias})[0];
    } else {
      h = b->forward(h, bias, {}, {}, nullptr, nullptr, nullptr, nullptr);
    }
  }
  return final_layer_norm(h);
}

torch::Tensor T5StackImpl::decode(const torch::Tensor& embeds, const torch::Tensor& encoder_states,
                                  const torch::Tensor& encoder_mask, T5DecoderCache* cache) {
  LIRE_CHECK(is_decoder_, "T5: decode() called on the encoder stack");
  const int64_t T = embeds.size(1);
  const int64_t past = cache ? cache->length() : 0;
  const auto dtype = embeds.scalar_type();
  const auto& attention = block->ptr<T5BlockImpl>(0)->layer->ptr<T5LayerSelfAttentionImpl>(0)->SelfAttention;
  auto self_bias = attention->compute_bias(past, T);  // [1,H,T,past+T]
  if (T > 1) {                                        // causal mask (a single new position may see every cached one)
    const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(embeds.device());
    const auto q_pos = torch::arange(past, past + T, long_opts).unsqueeze(1);
    const auto k_pos = torch::arange(0, past + T, long_opts).unsqueeze(0);
    const auto opts = torch::TensorOptions().dtype(dtype).device(embeds.device());
    self_bias =
        self_bias + torch::where(k_pos <= q_pos, torch::zeros({}, opts), torch::full({}, mask_value(dtype), opts));
  }
  const auto cross_mask = additive_mask(encoder_mask, dtype);  // [B,1,1,S]
  const std::size_t n = block->size();
  if (cache && cache->self_attention.keys.size() != n) {
    cache->self_attention.keys.assign(n, torch::Tensor());
    cache->self_attention.values.assign(n, torch::Tensor());
    cache->cross_attention.keys.assign(n, torch::Tensor());
    cache->cross_attention.values.assign(n, torch::Tensor());
  }
  auto h = embeds;
  const bool checkpoint = gradient_checkpointing && !cache && torch::GradMode::is_enabled();
  for (std::size_t i = 0; i < n; ++i) {
    if (checkpoint) {
      auto* b = block->ptr<T5BlockImpl>(i).get();
      h = checkpointed([b](const std::vector<torch::Tensor>& in) -> std::vector<torch::Tensor> {
            return {b->forward(in[0], in[1], in[2], in[3], nullptr, nullptr, nullptr, nullptr)};
          }, {h, self_bias, encoder_states, cross_mask})[0];
      continue;
    }
    h = block->ptr<T5BlockImpl>(i)->forward(
        h, self_bias, encoder_states, cross_mask, cache ? &cache->self_attention.keys[i] : nullptr,
        cache ? &cache->self_attention.values[i] : nullptr, cache ? &cache->cross_attention.keys[i] : nullptr,
        cache ? &cache->cross_attention.values[i] : nullptr);
  }
  return final_layer_norm(h);
}

// ------------------------------------------------ ForConditionalGeneration
T5ForConditionalGenerationImpl::T5ForConditionalGenerationImpl(const io::T5Config& c, const torch::TensorOptions& o)
    : config_(c) {
  shared = register_module("shared", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.d_model)));
  shared->weight.set_data(torch::empty({c.vocab_size, c.d_model}, o));
  encoder = register_module("encoder", T5Stack(c, /*is_decoder=*/false, o));
  decoder = register_module("decoder", T5Stack(c, /*is_decoder=*/true, o));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Linear(c.d_model, c.vocab_size, false, o));
}

torch::Tensor T5ForConditionalGenerationImpl::encode(const torch::Tensor& input_ids,
                                                     const torch::Tensor& attention_mask_in) {
  LIRE_CHECK(input_ids.dim() == 2 && input_ids.size(1) > 0, "T5: input_ids must be [B,S] with S >= 1");
  const auto attention_mask =
      attention_mask_in.defined() ? attention_mask_in.to(input_ids.device()) : torch::ones_like(input_ids);
  LIRE_CHECK(attention_mask.sizes() == input_ids.sizes(), "T5: attention_mask must have input_ids' shape [",
             input_ids.size(0), ", ", input_ids.size(1), "]");
  return encoder->encode(shared(input_ids), attention_mask);
}

torch::Tensor T5ForConditionalGenerationImpl::decode(const torch::Tensor& decoder_input_ids,
                                                     const torch::Tensor& encoder_states,
                                                     const torch::Tensor& encoder_mask_in, T5DecoderCache* cache) {
  LIRE_CHECK(decoder_input_ids.dim() == 2, "T5: decoder_input_ids must be [B,T]");
  LIRE_CHECK(encoder_states.dim() == 3 && encoder_states.size(0) == decoder_input_ids.size(0),
             "T5: encoder_states must be [B,S,d_model] with the decoder's batch size ", decoder_input_ids.size(0));
  const auto encoder_mask =
      encoder_mask_in.defined()
          ? encoder_mask_in.to(encoder_states.device())
          : torch::ones({encoder_states.size(0), encoder_states.size(1)},
                        torch::TensorOptions().dtype(torch::kLong).device(encoder_states.device()));
  LIRE_CHECK(encoder_mask.dim() == 2 && encoder_mask.size(0) == encoder_states.size(0) &&
                 encoder_mask.size(1) == encoder_states.size(1),
             "T5: encoder_mask must be [B,S] = [", encoder_states.size(0), ", ", encoder_states.size(1), "]");
  return decoder->decode(shared(decoder_input_ids), encoder_states, encoder_mask, cache);
}

torch::Tensor T5ForConditionalGenerationImpl::head_weight() const { return lm_head ? lm_head->weight : shared->weight; }

double T5ForConditionalGenerationImpl::head_scale() const {
  return config_.tie_word_embeddings ? std::pow(static_cast<double>(config_.d_model), -0.5) : 1.0;
}

torch::Tensor T5ForConditionalGenerationImpl::logits(const torch::Tensor& decoder_hidden) {
  if (lm_head) return lm_head(decoder_hidden);  // LoRA on lm_head (when targeted) applies
  return torch::linear(decoder_hidden * head_scale(), shared->weight);
}

torch::Tensor T5ForConditionalGenerationImpl::forward(const torch::Tensor& input_ids,
                                                      const torch::Tensor& attention_mask,
                                                      const torch::Tensor& decoder_input_ids) {
  return logits(decode(decoder_input_ids, encode(input_ids, attention_mask), attention_mask));
}

// ------------------------------------------------------------------ Loading
T5ForConditionalGeneration load_t5(const std::string& folder, const LoadOptions& options) {
  const auto config = io::read_t5_config(folder);
  const auto device = resolve_device(options.device);
  T5ForConditionalGeneration model(config,
                                   torch::TensorOptions().dtype(resolve_dtype(options.dtype, device)).device(device));
  const io::CheckpointReader checkpoint(folder);
  // HF ties encoder/decoder.embed_tokens (and lm_head when tied) to `shared`,
  // and drops the cross-attention position bias old checkpoints stored.
  std::set<std::string> ignored = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"};
  if (config.tie_word_embeddings) ignored.insert("lm_head.weight");
  for (int64_t i = 0; i < config.num_decoder_layers; ++i)
    ignored.insert(str("decoder.block.", i, ".layer.1.EncDecAttention.relative_attention_bias.weight"));
  const auto unused = load_parameters(*model, checkpoint, ignored);
  if (!unused.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unused.size() && i < 8; ++i) list += (i ? ", " : "") + unused[i];
    if (unused.size() > 8) list += str(", ... (", unused.size(), " in all)");
    spdlog::warn("{}: tensors the model does not use: {}", folder, list);
  }
  if (!options.adapter.empty()) merge_lora_adapter(*model, options.adapter);
  model->eval();
  return model;
}

// ------------------------------------------------------------------ Greedy
T5GreedyOutput t5_greedy_decode(T5ForConditionalGenerationImpl& model, const torch::Tensor& input_ids,
                                const torch::Tensor& attention_mask_in, int64_t max_new_tokens, bool use_cache) {
  LIRE_CHECK(max_new_tokens >= 0, "t5_greedy_decode: max_new_tokens must be >= 0");
  torch::NoGradGuard no_grad;
  const auto& c = model.config();
  const auto attention_mask = attention_mask_in.defined() ? attention_mask_in : torch::ones_like(input_ids);
  const auto encoder_states = model.encode(input_ids, attention_mask);
  const int64_t B = input_ids.size(0);
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(input_ids.device());
  auto tokens = torch::full({B, 1}, c.decoder_start_token_id, long_opts);
  auto finished = torch::zeros({B}, long_opts.dtype(torch::kBool));
  T5DecoderCache cache;
  std::vector<torch::Tensor> step_logits;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const auto input = use_cache ? tokens.narrow(1, tokens.size(1) - 1, 1) : tokens;
    const auto hidden = model.decode(input, encoder_states, attention_mask, use_cache ? &cache : nullptr);
    const auto logits = model.logits(hidden.select(1, hidden.size(1) - 1));  // [B,V]
    step_logits.push_back(logits);
    auto next = logits.argmax(-1);
    next = torch::where(finished, torch::full_like(next, c.pad_token_id), next);
    tokens = torch::cat({tokens, next.unsqueeze(1)}, 1);
    finished = finished | (next == c.eos_token_id);
    if (finished.all().item<bool>()) break;
  }
  T5GreedyOutput out;
  out.tokens = tokens;
  out.step_logits = step_logits.empty() ? torch::zeros({B, 0, c.vocab_size}, model.head_weight().options())
                                        : torch::stack(step_logits, 1);
  return out;
}

}  // namespace lire::models

#include "lire/models/llama.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/torch_compat.h"
#include "lire/models/activation_checkpoint.h"
#include "lire/models/attention.h"
#include "lire/models/fused_ops.h"

namespace lire::models {
namespace F = torch::nn::functional;

// ------------------------------------------------------------------ KVCache
void KVCache::select_rows(const torch::Tensor& index) {
  for (auto& k : keys) k = k.index_select(0, index);
  for (auto& v : values) v = v.index_select(0, index);
}

// ------------------------------------------------------------------- Linear
LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias,
                       const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}, options));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out_features}, options));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::linear(x, weight, bias);
  if (lora_A && lora_enabled) {
    auto h = x.to(lora_A->weight.scalar_type());
    if (lora_dropout > 0 && is_training()) h = torch::dropout(h, lora_dropout, /*train=*/true);
    // The scaling multiplies the r-wide intermediate rather than the
    // out_features-wide product (PEFT's order): the same value up to rounding,
    // at a fraction of the passes, forward and backward.
    y = y + lora_B->forward(lora_A->forward(h) * lora_scaling).to(y.scalar_type());
  }
  return y;
}

// ------------------------------------------------------------------ RMSNorm
RMSNormImpl::RMSNormImpl(int64_t size, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({size}, options));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) { return rms_norm(x, weight, eps); }

// ---------------------------------------------------------- RotaryEmbedding
RotaryEmbedding::RotaryEmbedding(const io::LlamaConfig& config, torch::Dtype table_dtype)
    : config_(config), table_dtype_(table_dtype) {}

torch::Tensor RotaryEmbedding::inv_freq(int64_t seq_len, const torch::Device& device) const {
  const int64_t dim = config_.head_dim;
  const auto& scaling = config_.rope_scaling;
  double base = config_.rope_theta;
  // Dynamic NTK scaling (HF _compute_dynamic_ntk_parameters): a larger base
  // once the sequence outgrows the trained context.
  if (scaling.type == "dynamic" && seq_len > config_.max_position_embeddings) {
    base *= std::pow(scaling.factor * seq_len / config_.max_position_embeddings - (scaling.factor - 1.0),
                     static_cast<double>(dim) / (dim - 2));
  }
  // As HF: arange in int64, then float32 (float64 tables for a float64 model).
  auto exponents = torch::arange(0, dim, 2, torch::TensorOptions().dtype(torch::kLong)).to(table_dtype_) / dim;
  auto inv = 1.0 / torch::pow(torch::full({}, base, torch::TensorOptions().dtype(table_dtype_)), exponents);
  if (scaling.type == "linear") inv = inv / scaling.factor;
  if (scaling.type == "llama3") {  // HF _compute_llama3_parameters
    const double old_len = static_cast<double>(scaling.original_max_position_embeddings);
    const double low_wavelen = old_len / scaling.low_freq_factor;
    const double high_wavelen = old_len / scaling.high_freq_factor;
    const auto wavelen = 2.0 * M_PI / inv;
    auto scaled = torch::where(wavelen > low_wavelen, inv / scaling.factor, inv);
    const auto smooth = (old_len / wavelen - scaling.low_freq_factor) /
                        (scaling.high_freq_factor - scaling.low_freq_factor);
    const auto smoothed = (1.0 - smooth) * scaled / scaling.factor + smooth * scaled;
    const auto medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
    inv = torch::where(medium, smoothed, scaled);
  }
  return inv.to(device);
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbedding::tables(const torch::Tensor& position_ids,
                                                                 torch::Dtype dtype) const {
  const int64_t seq_len = position_ids.numel() ? position_ids.max().item<int64_t>() + 1 : 0;
  const auto inv = inv_freq(seq_len, position_ids.device());                  // [D/2]
  const auto freqs = position_ids.to(table_dtype_).unsqueeze(-1) * inv;       // [B,T,D/2]
  const auto emb = torch::cat({freqs, freqs}, -1);                            // [B,T,D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

namespace {

// [B,KV,T,D] -> [B,KV*n,T,D] (query head h reads KV head h / n).
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n) {
  if (n == 1) return x;
  const auto s = x.sizes();
  return x.unsqueeze(2).expand({s[0], s[1], n, s[2], s[3]}).reshape({s[0], s[1] * n, s[2], s[3]});
}

}  // namespace

// ------------------------------------------------------------- Attention
LlamaAttentionImpl::LlamaAttentionImpl(const io::LlamaConfig& c, const torch::TensorOptions& o)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  q_proj = register_module("q_proj", Linear(c.hidden_size, heads_ * head_dim_, c.attention_bias, o));
  k_proj = register_module("k_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.attention_bias, o));
  v_proj = register_module("v_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.attention_bias, o));
  o_proj = register_module("o_proj", Linear(heads_ * head_dim_, c.hidden_size, c.attention_bias, o));
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                          const torch::Tensor& sin, const torch::Tensor& mask,
                                          torch::Tensor* cache_k, torch::Tensor* cache_v, bool shared_prefix) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = q_proj(x).view({B, T, heads_, head_dim_}).transpose(1, 2);
  auto k = k_proj(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);
  auto v = v_proj(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);
  q = rotary(q, cos, sin);
  k = rotary(k, cos, sin);
  const int64_t groups = heads_ / kv_heads_;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  if (shared_prefix) {
    LIRE_CHECK(cache_k && cache_k->defined() && cache_v && cache_v->defined() && cache_k->size(0) == 1,
               "attention: a shared prefix needs one row of cached keys and values");
    const auto out = prefix_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), repeat_kv(*cache_k, groups),
                                      repeat_kv(*cache_v, groups), mask, scale);
    return o_proj(out.transpose(1, 2).reshape({B, T, heads_ * head_dim_}));
  }
  if (cache_k) {
    if (cache_k->defined()) {
      k = torch::cat({*cache_k, k}, 2);
      v = torch::cat({*cache_v, v}, 2);
    }
    *cache_k = k;
    *cache_v = v;
  }
  const auto out = causal_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), mask, scale);
  return o_proj(out.transpose(1, 2).reshape({B, T, heads_ * head_dim_}));
}

// ------------------------------------------------------------------- MLP
LlamaMLPImpl::LlamaMLPImpl(const io::LlamaConfig& c, const torch::TensorOptions& o) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias, o));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x) {
  return down_proj(swiglu(gate_proj(x), up_proj(x)));
}

// --------------------------------------------------------- Decoder layer
LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const io::LlamaConfig& c, const torch::TensorOptions& o) {
  self_attn = register_module("self_attn", LlamaAttention(c, o));
  mlp = register_module("mlp", LlamaMLP(c, o));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, o));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, o));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                             const torch::Tensor& sin, const torch::Tensor& mask,
                                             torch::Tensor* cache_k, torch::Tensor* cache_v, bool shared_prefix) {
  const auto h = x + self_attn(input_layernorm(x), cos, sin, mask, cache_k, cache_v, shared_prefix);
  return h + mlp(post_attention_layernorm(h));
}

// ------------------------------------------------------------ LlamaModel
namespace {

torch::Dtype table_dtype_for(const torch::TensorOptions& o) {
  return o.dtype() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// Additive mask [B,1,T,T_past+T]: 0 where query i may attend key j (causal, key
// j real, and within the sliding window when there is one: q - k < window, as
// HF's Mistral), the dtype's lowest value elsewhere.
torch::Tensor build_mask(const torch::Tensor& attention_mask, int64_t past, int64_t T, torch::Dtype dtype,
                         std::optional<int64_t> window) {
  const int64_t total = past + T;
  const auto device = attention_mask.device();
  const auto q_pos = torch::arange(past, total, torch::TensorOptions().dtype(torch::kLong).device(device));
  const auto k_pos = torch::arange(0, total, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto causal = k_pos.unsqueeze(0) <= q_pos.unsqueeze(1);                             // [T,total]
  if (window) causal = causal & (q_pos.unsqueeze(1) - k_pos.unsqueeze(0) < *window);
  const auto allowed = causal.unsqueeze(0) & attention_mask.to(torch::kBool).unsqueeze(1);  // [B,T,total]
  const double min_value = dtype == torch::kFloat64 ? std::numeric_limits<double>::lowest()
                           : dtype == torch::kFloat32 ? std::numeric_limits<float>::lowest()
                           : dtype == torch::kHalf    ? -65504.0
                                                      : -3.3895313892515355e38;  // bfloat16 lowest
  const auto zeros = torch::zeros({}, torch::TensorOptions().dtype(dtype).device(device));
  const auto fill = torch::full({}, min_value, torch::TensorOptions().dtype(dtype).device(device));
  return torch::where(allowed, zeros, fill).unsqueeze(1);
}

}  // namespace

LlamaModelImpl::LlamaModelImpl(const io::LlamaConfig& c, const torch::TensorOptions& o)
    : config_(c), rotary_(c, table_dtype_for(o)) {
  embed_tokens = register_module(
      "embed_tokens", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size)));
  embed_tokens->weight.set_data(torch::empty({c.vocab_size, c.hidden_size}, o));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(c, o));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps, o));
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask_in,
                                      const torch::Tensor& position_ids_in, KVCache* cache) {
  LIRE_CHECK(input_ids.dim() == 2, "input_ids must be [B,T]");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t past = cache ? cache->length() : 0;
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(input_ids.device());
  auto attention_mask = attention_mask_in.defined() ? attention_mask_in.to(input_ids.device())
                                                    : torch::ones({B, past + T}, long_opts);
  LIRE_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == past + T,
             "attention_mask must be [B, past + T] = [", B, ", ", past + T, "]");
  auto position_ids = position_ids_in;
  if (!position_ids.defined()) {
    const auto full = (attention_mask.to(torch::kLong).cumsum(-1) - 1).clamp_min(0);
    position_ids = full.narrow(1, past, T);
  }
  auto h = embed_tokens(input_ids);
  const auto dtype = h.scalar_type();
  const auto [cos, sin] = rotary_.tables(position_ids, dtype);
  const auto mask = build_mask(attention_mask, past, T, dtype, config_.sliding_window);
  if (cache && cache->keys.size() != layers->size()) {
    cache->keys.assign(layers->size(), torch::Tensor());
    cache->values.assign(layers->size(), torch::Tensor());
  }
  const bool checkpoint = gradient_checkpointing && torch::GradMode::is_enabled();
  const bool prefix = cache && cache->shared_prefix;
  LIRE_CHECK(!prefix || past > 0, "a shared-prefix cache needs cached keys and values");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    auto* layer = layers->ptr<LlamaDecoderLayerImpl>(i).get();
    if (!checkpoint) {
      h = layer->forward(h, cos, sin, mask, cache ? &cache->keys[i] : nullptr, cache ? &cache->values[i] : nullptr,
                         prefix);
    } else if (prefix) {  // the prefix goes in and stays as it is
      h = checkpointed([layer](const std::vector<torch::Tensor>& in) -> std::vector<torch::Tensor> {
            torch::Tensor k = in[4], v = in[5];
            return {layer->forward(in[0], in[1], in[2], in[3], &k, &v, /*shared_prefix=*/true)};
          }, {h, cos, sin, mask, cache->keys[i], cache->values[i]})[0];
    } else if (!cache) {
      h = checkpointed([layer](const std::vector<torch::Tensor>& in) -> std::vector<torch::Tensor> {
            return {layer->forward(in[0], in[1], in[2], in[3], nullptr, nullptr)};
          }, {h, cos, sin, mask})[0];
    } else {  // the cache goes in and comes out (extended by this step's keys/values)
      const auto out = checkpointed(
          [layer](const std::vector<torch::Tensor>& in) -> std::vector<torch::Tensor> {
            torch::Tensor k = in[4], v = in[5];
            auto y = layer->forward(in[0], in[1], in[2], in[3], &k, &v);
            return {y, k, v};
          },
          {h, cos, sin, mask, cache->keys[i], cache->values[i]});
      h = out[0];
      cache->keys[i] = out[1];
      cache->values[i] = out[2];
    }
  }
  return norm(h);
}

// -------------------------------------------------------- Causal LM head
LlamaForCausalLMImpl::LlamaForCausalLMImpl(const io::LlamaConfig& c, const torch::TensorOptions& o) {
  model = register_module("model", LlamaModel(c, o));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Linear(c.hidden_size, c.vocab_size, false, o));
}

torch::Tensor LlamaForCausalLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                            const torch::Tensor& position_ids, KVCache* cache) {
  return model(input_ids, attention_mask, position_ids, cache);
}

torch::Tensor LlamaForCausalLMImpl::head_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

torch::Tensor LlamaForCausalLMImpl::logits(const torch::Tensor& hidden) {
  return torch::linear(hidden, head_weight());
}

void LlamaForCausalLMImpl::init_weights(double std) {
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    const auto& name = p.key();
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0) {
      p.value().fill_(1.0);
    } else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      p.value().zero_();
    } else {
      p.value().normal_(0.0, std);
    }
  }
}

// --------------------------------------------- Sequence classification
LlamaForSequenceClassificationImpl::LlamaForSequenceClassificationImpl(const io::LlamaConfig& c,
                                                                       const torch::TensorOptions& o) {
  model = register_module("model", LlamaModel(c, o));
  score = register_module("score", Linear(c.hidden_size, c.num_labels, false, o));
}

torch::Tensor last_real_positions(const torch::Tensor& attention_mask) {
  const auto m = attention_mask.to(torch::kLong);
  const auto index = torch::arange(m.size(1), m.options());
  return (index * m).argmax(-1);
}

torch::Tensor LlamaForSequenceClassificationImpl::forward(const torch::Tensor& input_ids,
                                                          const torch::Tensor& attention_mask_in) {
  const auto attention_mask = attention_mask_in.defined() ? attention_mask_in : torch::ones_like(input_ids);
  const auto hidden = model(input_ids, attention_mask);
  const auto last = last_real_positions(attention_mask).to(hidden.device());
  const auto pooled = hidden.index({torch::arange(hidden.size(0), last.options()), last});  // [B,H]
  return score(pooled);
}

}  // namespace lire::models

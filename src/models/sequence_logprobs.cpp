#include "lire/models/sequence_logprobs.h"

#include <algorithm>

#include <torch/torch.h>

#include "lire/core/error.h"

namespace lire::models {

// ------------------------------------------------------------ token log-probs
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Dtype compute_dtype_of(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// Logits of rows [begin, begin+len) in the compute dtype.
torch::Tensor chunk_logits(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t begin, int64_t len,
                           torch::Dtype compute) {
  return torch::linear(hidden.narrow(0, begin, len), weight).to(compute);
}

// See token_logprobs in the header. Saves hidden, weight, targets, the
// per-row logsumexp and (hidden-only gradients) d log p / d hidden.
class TokenLogprobFunction : public torch::autograd::Function<TokenLogprobFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, int64_t chunk) {
    const auto compute = compute_dtype_of(hidden);
    const bool weight_grad = weight.requires_grad();
    const int64_t M = hidden.size(0);
    auto out = torch::empty({M}, hidden.options().dtype(compute));
    auto lse = torch::empty({M}, hidden.options().dtype(compute));
    torch::Tensor dhidden;  // d log p / d hidden, when only hidden needs a gradient
    if (!weight_grad) dhidden = torch::empty({M, hidden.size(1)}, hidden.options().dtype(compute));
    for (int64_t begin = 0; begin < M; begin += chunk) {
      const int64_t len = std::min(chunk, M - begin);
      // One [len, V] tensor, shifted by its row maxima and exponentiated in
      // place: log p = (logit - max) - log sum exp(logit - max).
      auto shifted = chunk_logits(hidden, weight, begin, len, compute);
      const auto target = targets.narrow(0, begin, len).unsqueeze(1);
      const auto max = std::get<0>(shifted.max(1, /*keepdim=*/true));
      shifted.sub_(max);
      const auto target_shifted = shifted.gather(1, target);
      const auto sum = shifted.exp_().sum(1, /*keepdim=*/true);  // shifted now holds exp(logit - max)
      const auto log_sum = sum.log();
      lse.narrow(0, begin, len).copy_((max + log_sum).squeeze(1));
      out.narrow(0, begin, len).copy_((target_shifted - log_sum).squeeze(1));
      if (!weight_grad) {
        // W[target] - softmax(logits) W, the exponentials' product with W divided by their sum.
        const auto expected = torch::matmul(shifted.to(weight.scalar_type()), weight).to(compute) / sum;
        dhidden.narrow(0, begin, len).copy_(weight.index_select(0, target.squeeze(1)).to(compute) - expected);
      }
    }
    ctx->save_for_backward({hidden, weight, targets, lse, dhidden});
    ctx->saved_data["chunk"] = chunk;
    return {out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &hidden = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3], &dhidden = saved[4];
    const auto grad = grad_outputs[0];  // [M] in the compute dtype
    torch::Tensor grad_hidden, grad_weight;
    if (dhidden.defined()) {
      grad_hidden = (dhidden * grad.unsqueeze(1)).to(hidden.scalar_type());
      return {grad_hidden, torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto compute = compute_dtype_of(hidden);
    const int64_t M = hidden.size(0);
    grad_hidden = torch::empty_like(hidden);
    grad_weight = torch::zeros_like(weight);
    for (int64_t begin = 0; begin < M; begin += chunk) {
      const int64_t len = std::min(chunk, M - begin);
      // d log p_m / d logits = onehot(target_m) - softmax(logits_m), times grad_m.
      auto g = chunk_logits(hidden, weight, begin, len, compute).sub_(lse.narrow(0, begin, len).unsqueeze(1)).exp_();
      const auto gm = grad.narrow(0, begin, len).unsqueeze(1);
      g.mul_(-gm);
      g.scatter_add_(1, targets.narrow(0, begin, len).unsqueeze(1), gm);
      const auto gw = g.to(weight.scalar_type());
      grad_hidden.narrow(0, begin, len).copy_(torch::matmul(gw, weight));
      grad_weight.add_(torch::matmul(gw.t(), hidden.narrow(0, begin, len)));
    }
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                             int64_t chunk) {
  LIRE_CHECK(chunk > 0, "chunk_positions must be positive");
  LIRE_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
             "token_logprobs: hidden [M,H] and weight [V,H] expected");
  const auto compute = compute_dtype_of(hidden);
  if (hidden.size(0) == 0) return torch::zeros({0}, hidden.options().dtype(compute));
  const bool grad = torch::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  if (grad) return TokenLogprobFunction::apply(hidden, weight, targets, chunk)[0];
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < hidden.size(0); begin += chunk) {
    const int64_t len = std::min(chunk, hidden.size(0) - begin);
    const auto logits = chunk_logits(hidden, weight, begin, len, compute);
    parts.push_back(logits.gather(1, targets.narrow(0, begin, len).unsqueeze(1)).squeeze(1) -
                    torch::logsumexp(logits, 1));
  }
  return torch::cat(parts);
}

namespace {

// Token log-probs of hidden states [M,H] under the model's LM head. A head
// with an active LoRA adapter is not a plain weight: its chunks go through the
// module (autograd keeps their logits).
torch::Tensor head_logprobs(LlamaForCausalLMImpl& model, const torch::Tensor& selected, const torch::Tensor& targets,
                            const LogprobOptions& options) {
  if (!model.lm_head || !model.lm_head->lora_A || !model.lm_head->lora_enabled)
    return token_logprobs(selected, model.head_weight(), targets, options.chunk_positions);
  const auto compute = compute_dtype_of(selected);
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < selected.size(0); begin += options.chunk_positions) {
    const int64_t len = std::min(options.chunk_positions, selected.size(0) - begin);
    const auto logits = model.lm_head(selected.narrow(0, begin, len)).to(compute);
    parts.push_back(logits.gather(1, targets.narrow(0, begin, len).unsqueeze(1)).squeeze(1) -
                    torch::logsumexp(logits, 1));
  }
  return parts.empty() ? torch::zeros({0}, selected.options().dtype(compute)) : torch::cat(parts);
}

// Per-row sums, counts and per-token values from token log-probs of
// (row, slot) pairs.
SequenceLogprobs collect(const torch::Tensor& token_lp, const std::vector<int64_t>& rows,
                         const std::vector<int64_t>& slots, const std::vector<int64_t>& lengths) {
  const auto device = token_lp.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  const auto N = static_cast<int64_t>(lengths.size());
  const int64_t max_len = lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
  const auto row_t = torch::tensor(rows, torch::kLong).to(device);
  const auto slot_t = torch::tensor(slots, torch::kLong).to(device);
  SequenceLogprobs out;
  out.per_token = torch::zeros({N, max_len}, token_lp.options()).index_put({row_t, slot_t}, token_lp);
  out.sums = torch::zeros({N}, token_lp.options()).index_add(0, row_t, token_lp);
  out.token_counts = torch::tensor(lengths, torch::kLong).to(long_opts);
  return out;
}

}  // namespace

// ------------------------------------------------------------- naive path

SequenceLogprobs response_logprobs(LlamaForCausalLMImpl& model, const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask, const std::vector<int64_t>& response_start,
                                   const std::vector<int64_t>& response_length, const LogprobOptions& options) {
  const int64_t N = input_ids.size(0), T = input_ids.size(1);
  LIRE_CHECK(static_cast<int64_t>(response_start.size()) == N && static_cast<int64_t>(response_length.size()) == N,
             "response_logprobs: one start and one length per row");
  LIRE_CHECK(options.chunk_positions > 0, "chunk_positions must be positive");
  // (row, position) of every position that predicts a response token.
  std::vector<int64_t> rows, positions, slots;
  for (int64_t n = 0; n < N; ++n) {
    LIRE_CHECK(response_start[n] >= 1, "row ", n, ": a response needs at least one token before it (BOS or prompt)");
    LIRE_CHECK(response_start[n] + response_length[n] <= T, "row ", n, ": response runs past the sequence");
    for (int64_t t = 0; t < response_length[n]; ++t) {
      rows.push_back(n);
      positions.push_back(response_start[n] - 1 + t);
      slots.push_back(t);
    }
  }
  const auto device = input_ids.device();
  const auto row_t = torch::tensor(rows, torch::kLong).to(device);
  const auto pos_t = torch::tensor(positions, torch::kLong).to(device);
  const auto hidden = model.forward(input_ids, attention_mask);  // [N,T,H]
  const auto token_lp =
      head_logprobs(model, hidden.index({row_t, pos_t}), input_ids.index({row_t, pos_t + 1}), options);
  return collect(token_lp, rows, slots, response_length);
}

namespace {

using Ids = std::vector<int64_t>;

// Right-pads prompt+response sequences into [N,T] ids and mask on `device`.
void pack(const std::vector<const Ids*>& prompts, const std::vector<const Ids*>& responses,
          const torch::Device& device, torch::Tensor& ids, torch::Tensor& mask, std::vector<int64_t>& start,
          std::vector<int64_t>& length) {
  const auto N = static_cast<int64_t>(prompts.size());
  int64_t T = 1;
  for (int64_t n = 0; n < N; ++n) T = std::max<int64_t>(T, prompts[n]->size() + responses[n]->size());
  ids = torch::zeros({N, T}, torch::kLong);
  mask = torch::zeros({N, T}, torch::kLong);
  auto I = ids.accessor<int64_t, 2>();
  auto Mk = mask.accessor<int64_t, 2>();
  start.assign(N, 0);
  length.assign(N, 0);
  for (int64_t n = 0; n < N; ++n) {
    int64_t t = 0;
    for (int64_t id : *prompts[n]) I[n][t] = id, Mk[n][t++] = 1;
    start[n] = t;
    for (int64_t id : *responses[n]) I[n][t] = id, Mk[n][t++] = 1;
    length[n] = t - start[n];
  }
  ids = ids.to(device);
  mask = mask.to(device);
}

// The naive path for responses[n] behind prompts[owner[n]], max_sequences rows a pass.
torch::Tensor naive_sums(LlamaForCausalLMImpl& model, const ListGroup& g, const LogprobOptions& options) {
  std::vector<torch::Tensor> sums;
  const auto n = g.responses.size();
  for (std::size_t begin = 0; begin < n; begin += options.max_sequences) {
    const std::size_t end = std::min(n, begin + static_cast<std::size_t>(options.max_sequences));
    std::vector<const Ids*> prompts, responses;
    for (std::size_t i = begin; i < end; ++i) {
      prompts.push_back(g.prompts[g.owner[i]]);
      responses.push_back(g.responses[i]);
    }
    torch::Tensor ids, mask;
    std::vector<int64_t> start, length;
    pack(prompts, responses, model.head_weight().device(), ids, mask, start, length);
    sums.push_back(response_logprobs(model, ids, mask, start, length, options).sums);
  }
  return torch::cat(sums);
}

// ------------------------------------------------------------- shared prompt
//
// A list's values depend on the list alone, to the last bit, not on the other
// lists of a batch: with padding (even right padding) a batch's shapes change
// how matmuls and reductions block their sums, and so the last bits. Each
// list therefore runs its own prompt pass and response passes. So the cached
// reference and the policy, one rank or several, one batch or accumulated
// micro-batches compute the same log-probs exactly; LiPO-lambda's rank-based
// weights, discontinuous at the exact ties of a policy equal to its
// reference (a fresh LoRA adapter), need that. (The naive path does not have
// this property: its sequences are padded to the longest of their pass.)

// One list's prompt, run once with a KV cache (no padding).
struct PromptPass {
  KVCache cache;      // per layer [1, kv_heads, P, head_dim]
  torch::Tensor last;  // [1,H] hidden state at the prompt's last token
};

PromptPass run_prompt(LlamaForCausalLMImpl& model, const Ids& prompt) {
  const auto device = model.head_weight().device();
  PromptPass pass;
  const auto ids = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(device);
  const auto hidden = model.forward(ids, {}, {}, &pass.cache);  // [1,P,H]
  pass.last = hidden.select(1, ids.size(1) - 1);
  return pass;
}

// Log-probs of `responses` behind the prompt of `pass`.
SequenceLogprobs shared_logprobs(LlamaForCausalLMImpl& model, const PromptPass& pass,
                                 const std::vector<const Ids*>& responses, const LogprobOptions& options) {
  const auto N = static_cast<int64_t>(responses.size());
  const auto device = pass.last.device();
  const int64_t P = pass.cache.length();
  int64_t L = 0;
  for (const Ids* r : responses) L = std::max<int64_t>(L, r->size());
  std::vector<int64_t> rows, slots, lengths, targets;
  auto ids = torch::zeros({N, std::max<int64_t>(L, 1)}, torch::kLong);
  auto mask = torch::zeros({N, std::max<int64_t>(L, 1)}, torch::kLong);
  auto I = ids.accessor<int64_t, 2>();
  auto Mk = mask.accessor<int64_t, 2>();
  for (int64_t n = 0; n < N; ++n) {
    const Ids& y = *responses[n];
    for (std::size_t t = 0; t < y.size(); ++t) {
      I[n][t] = y[t];
      Mk[n][t] = 1;
      rows.push_back(n);
      slots.push_back(static_cast<int64_t>(t));
      targets.push_back(y[t]);
    }
    lengths.push_back(static_cast<int64_t>(y.size()));
  }
  const auto first = pass.last.expand({N, pass.last.size(1)});  // predicts token 0
  torch::Tensor states;                                                         // [N, L, H]: predicts token t
  if (L <= 1) {
    states = first.unsqueeze(1);
  } else {
    KVCache cache = pass.cache;  // the list's prompt keys/values, read by every response
    cache.shared_prefix = true;
    // Only tokens 0..L-2 are inputs: the last token predicts nothing.
    const auto input_ids = ids.narrow(1, 0, L - 1).to(device);
    const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
    const auto full_mask = torch::cat({torch::ones({N, P}, long_opts), mask.narrow(1, 0, L - 1).to(device)}, 1);
    const auto hidden = model.forward(input_ids, full_mask, {}, &cache);  // [N, L-1, H]
    states = torch::cat({first.unsqueeze(1), hidden}, 1);
  }
  const auto row_t = torch::tensor(rows, torch::kLong).to(device);
  const auto slot_t = torch::tensor(slots, torch::kLong).to(device);
  const auto token_lp =
      head_logprobs(model, states.index({row_t, slot_t}), torch::tensor(targets, torch::kLong).to(device), options);
  return collect(token_lp, rows, slots, lengths);
}

// The shared path for a group, list by list: the list's prompt alone, then its
// responses, max_sequences rows a pass. Every tensor a list's numbers go
// through then has a shape fixed by the list itself, so the same list gives
// the same bits whatever else is in the batch.
torch::Tensor shared_sums(LlamaForCausalLMImpl& model, const ListGroup& g, const LogprobOptions& options) {
  std::vector<torch::Tensor> sums;
  const auto n = g.responses.size();
  for (std::size_t first = 0; first < n;) {
    std::size_t last = first;
    while (last < n && g.owner[last] == g.owner[first]) ++last;
    const auto pass = run_prompt(model, *g.prompts[g.owner[first]]);
    for (std::size_t begin = first; begin < last; begin += options.max_sequences) {
      const std::size_t end = std::min(last, begin + static_cast<std::size_t>(options.max_sequences));
      const std::vector<const Ids*> responses(g.responses.begin() + begin, g.responses.begin() + end);
      sums.push_back(shared_logprobs(model, pass, responses, options).sums);
    }
    first = last;
  }
  return torch::cat(sums);
}

}  // namespace

SequenceLogprobs list_logprobs(LlamaForCausalLMImpl& model, const std::vector<int64_t>& prompt_ids,
                               const std::vector<std::vector<int64_t>>& response_ids, const LogprobOptions& options) {
  LIRE_CHECK(!prompt_ids.empty(), "list_logprobs: the prompt is empty (it needs at least BOS)");
  LIRE_CHECK(options.chunk_positions > 0, "chunk_positions must be positive");
  std::vector<const Ids*> responses;
  for (const auto& r : response_ids) responses.push_back(&r);
  if (options.shared_prompt) return shared_logprobs(model, run_prompt(model, prompt_ids), responses, options);
  std::vector<const Ids*> prompts(response_ids.size(), &prompt_ids);
  torch::Tensor ids, mask;
  std::vector<int64_t> start, length;
  pack(prompts, responses, model.head_weight().device(), ids, mask, start, length);
  return response_logprobs(model, ids, mask, start, length, options);
}

ListBatchLogprobs score_list_groups(const std::vector<ListTokens>& lists, int64_t max_sequences,
                                    const torch::TensorOptions& options,
                                    const std::function<torch::Tensor(const ListGroup&)>& score) {
  LIRE_CHECK(max_sequences > 0, "max_sequences must be positive");
  const auto B = static_cast<int64_t>(lists.size());
  int64_t K = 0;
  for (const auto& l : lists) K = std::max<int64_t>(K, l.response_ids.size());
  std::vector<torch::Tensor> sums;
  std::vector<int64_t> counts, flat_index;
  for (int64_t first = 0; first < B;) {
    int64_t last = first, sequences = 0;
    while (last < B &&
           (last == first || sequences + static_cast<int64_t>(lists[last].response_ids.size()) <= max_sequences))
      sequences += static_cast<int64_t>(lists[last++].response_ids.size());
    ListGroup group;
    for (int64_t b = first; b < last; ++b) {
      group.prompts.push_back(&lists[b].prompt_ids);
      for (std::size_t k = 0; k < lists[b].response_ids.size(); ++k) {
        group.owner.push_back(b - first);
        group.responses.push_back(&lists[b].response_ids[k]);
        flat_index.push_back(b * K + static_cast<int64_t>(k));
        counts.push_back(static_cast<int64_t>(lists[b].response_ids[k].size()));
      }
    }
    if (!group.responses.empty()) sums.push_back(score(group).to(options.dtype()));
    first = last;
  }
  const auto device = options.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(device);
  const auto flat = sums.empty() ? torch::zeros({0}, options) : torch::cat(sums);
  const auto index = torch::tensor(flat_index, torch::kLong).to(device);
  ListBatchLogprobs out;
  out.logps = torch::zeros({B * K}, options).index_put({index}, flat).view({B, K});
  out.token_counts =
      torch::zeros({B * K}, long_opts).index_put({index}, torch::tensor(counts, torch::kLong).to(device)).view({B, K});
  out.mask = torch::zeros({B * K}, bool_opts)
                 .index_put({index}, torch::ones({static_cast<int64_t>(flat_index.size())}, bool_opts))
                 .view({B, K});
  return out;
}

ListBatchLogprobs batch_logprobs(LlamaForCausalLMImpl& model, const std::vector<ListTokens>& lists,
                                 const LogprobOptions& options) {
  LIRE_CHECK(options.chunk_positions > 0, "chunk_positions must be positive");
  for (std::size_t b = 0; b < lists.size(); ++b)
    LIRE_CHECK(!lists[b].prompt_ids.empty(), "list ", b, ": the prompt is empty (it needs at least BOS)");
  const auto weight = model.head_weight();
  const auto out_options = weight.options().dtype(compute_dtype_of(weight)).requires_grad(false);
  return score_list_groups(lists, options.max_sequences, out_options, [&](const ListGroup& g) {
    return options.shared_prompt ? shared_sums(model, g, options) : naive_sums(model, g, options);
  });
}

}  // namespace lire::models

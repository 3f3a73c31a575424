#include "lire/models/t5_logprobs.h"

#include <torch/torch.h>

#include <algorithm>
#include <utility>

#include "lire/core/error.h"

namespace lire::models {
namespace {

using Ids = std::vector<int64_t>;

torch::Dtype compute_dtype(T5ForConditionalGenerationImpl& model) {
  return model.head_weight().scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// Encodes the prompts once, right-padded: states [G,S,d_model] and mask [G,S].
std::pair<torch::Tensor, torch::Tensor> encode_prompts(T5ForConditionalGenerationImpl& model,
                                                       const std::vector<const Ids*>& prompts) {
  const auto G = static_cast<int64_t>(prompts.size());
  int64_t S = 1;
  for (const Ids* p : prompts) S = std::max<int64_t>(S, p->size());
  auto ids = torch::full({G, S}, model.config().pad_token_id, torch::kLong);
  auto mask = torch::zeros({G, S}, torch::kLong);
  auto I = ids.accessor<int64_t, 2>();
  auto M = mask.accessor<int64_t, 2>();
  for (int64_t g = 0; g < G; ++g)
    for (std::size_t t = 0; t < prompts[g]->size(); ++t) I[g][t] = (*prompts[g])[t], M[g][t] = 1;
  const auto device = model.head_weight().device();
  ids = ids.to(device);
  mask = mask.to(device);
  return {model.encode(ids, mask), mask};
}

// Token log-probs of decoder states [M,d_model] under the LM head (lean, see
// token_logprobs; a head with an active LoRA adapter goes through the module).
torch::Tensor head_logprobs(T5ForConditionalGenerationImpl& model, const torch::Tensor& selected,
                            const torch::Tensor& targets, const LogprobOptions& options) {
  if (!model.lm_head) return token_logprobs(selected * model.head_scale(), model.head_weight(), targets,
                                            options.chunk_positions);
  if (!model.lm_head->lora_A || !model.lm_head->lora_enabled)
    return token_logprobs(selected, model.lm_head->weight, targets, options.chunk_positions);
  const auto compute = compute_dtype(model);
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < selected.size(0); begin += options.chunk_positions) {
    const int64_t len = std::min(options.chunk_positions, selected.size(0) - begin);
    const auto logits = model.logits(selected.narrow(0, begin, len)).to(compute);  // [len,V]
    parts.push_back(logits.gather(1, targets.narrow(0, begin, len).unsqueeze(1)).squeeze(1) -
                    torch::logsumexp(logits, 1));
  }
  return parts.empty() ? torch::zeros({0}, selected.options().dtype(compute)) : torch::cat(parts);
}

// Log-probs of responses[n] decoded against row owner[n] of the encoder states.
SequenceLogprobs decode_responses(T5ForConditionalGenerationImpl& model, const torch::Tensor& states,
                                  const torch::Tensor& states_mask, const std::vector<int64_t>& owner,
                                  const std::vector<const Ids*>& responses, const LogprobOptions& options) {
  const auto N = static_cast<int64_t>(responses.size());
  const auto& config = model.config();
  int64_t T = 1;
  for (const Ids* r : responses) T = std::max<int64_t>(T, r->size());
  // Decoder inputs [decoder_start] + y[:-1], right-padded; (row, position, target) of every response token.
  auto decoder_ids = torch::full({N, T}, config.pad_token_id, torch::kLong);
  auto D = decoder_ids.accessor<int64_t, 2>();
  std::vector<int64_t> rows, positions, targets, lengths;
  int64_t max_len = 0;
  for (int64_t n = 0; n < N; ++n) {
    const Ids& y = *responses[n];
    D[n][0] = config.decoder_start_token_id;
    for (std::size_t t = 0; t < y.size(); ++t) {
      LIRE_CHECK(y[t] >= 0 && y[t] < config.vocab_size, "response ", n, ": token ", t, " (id ", y[t],
                 ") is outside the vocabulary [0, ", config.vocab_size, ")");
      if (t + 1 < y.size()) D[n][t + 1] = y[t];
      rows.push_back(n);
      positions.push_back(static_cast<int64_t>(t));
      targets.push_back(y[t]);
    }
    lengths.push_back(static_cast<int64_t>(y.size()));
    max_len = std::max<int64_t>(max_len, y.size());
  }
  const auto device = states.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  const auto row_t = torch::tensor(rows, long_opts).to(device);
  const auto pos_t = torch::tensor(positions, long_opts).to(device);
  const auto target_t = torch::tensor(targets, long_opts).to(device);
  const auto owner_t = torch::tensor(owner, long_opts).to(device);

  // The shared prompt: row n of the decoder batch attends to encoder row owner[n].
  const auto hidden = model.decode(decoder_ids.to(device), states.index_select(0, owner_t),
                                   states_mask.index_select(0, owner_t));  // [N,T,d_model]
  const auto selected = hidden.index({row_t, pos_t});  // [M,d_model]
  const auto token_lp = head_logprobs(model, selected, target_t, options);
  SequenceLogprobs out;
  // Slot of each token within its response = its decoder position.
  out.per_token = torch::zeros({N, max_len}, token_lp.options()).index_put({row_t, pos_t}, token_lp);
  out.sums = torch::zeros({N}, token_lp.options()).index_add(0, row_t, token_lp);
  out.token_counts = torch::tensor(lengths, long_opts).to(device);
  return out;
}

}  // namespace

SequenceLogprobs list_logprobs(T5ForConditionalGenerationImpl& model, const std::vector<int64_t>& prompt_ids,
                               const std::vector<std::vector<int64_t>>& response_ids, const LogprobOptions& options) {
  LIRE_CHECK(!prompt_ids.empty(), "list_logprobs: the prompt is empty (a T5 prompt needs at least EOS)");
  LIRE_CHECK(options.chunk_positions > 0, "chunk_positions must be positive");
  const auto [states, mask] = encode_prompts(model, {&prompt_ids});
  std::vector<const Ids*> responses;
  for (const auto& r : response_ids) responses.push_back(&r);
  return decode_responses(model, states, mask, std::vector<int64_t>(responses.size(), 0), responses, options);
}

ListBatchLogprobs batch_logprobs(T5ForConditionalGenerationImpl& model, const std::vector<ListTokens>& lists,
                                 const LogprobOptions& options) {
  LIRE_CHECK(options.chunk_positions > 0, "chunk_positions must be positive");
  for (std::size_t b = 0; b < lists.size(); ++b)
    LIRE_CHECK(!lists[b].prompt_ids.empty(), "list ", b, ": the prompt is empty (a T5 prompt needs at least EOS)");
  const auto out_options = torch::TensorOptions().dtype(compute_dtype(model)).device(model.head_weight().device());
  return score_list_groups(lists, options.max_sequences, out_options, [&](const ListGroup& g) {
    // Shared prompt: each list's prompt is encoded once and its states serve
    // all its responses; naive: one encoder pass per response.
    std::vector<const Ids*> prompts = g.prompts;
    std::vector<int64_t> owner = g.owner;
    if (!options.shared_prompt) {
      prompts.clear();
      for (std::size_t n = 0; n < g.responses.size(); ++n) {
        prompts.push_back(g.prompts[g.owner[n]]);
        owner[n] = static_cast<int64_t>(n);
      }
    }
    std::vector<torch::Tensor> sums;
    torch::Tensor states, mask;
    if (options.shared_prompt) std::tie(states, mask) = encode_prompts(model, prompts);
    for (std::size_t begin = 0; begin < g.responses.size(); begin += options.max_sequences) {
      const std::size_t end = std::min(g.responses.size(), begin + static_cast<std::size_t>(options.max_sequences));
      std::vector<int64_t> chunk_owner(owner.begin() + begin, owner.begin() + end);
      const std::vector<const Ids*> chunk(g.responses.begin() + begin, g.responses.begin() + end);
      if (!options.shared_prompt) {  // this chunk's own prompt copies
        std::tie(states, mask) = encode_prompts(model, {prompts.begin() + begin, prompts.begin() + end});
        for (auto& o : chunk_owner) o -= static_cast<int64_t>(begin);
      }
      sums.push_back(decode_responses(model, states, mask, chunk_owner, chunk, options).sums);
    }
    return torch::cat(sums);
  });
}

}  // namespace lire::models

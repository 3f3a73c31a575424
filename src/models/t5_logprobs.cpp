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
  const auto compute = compute_dtype(model);
  const auto selected = hidden.index({row_t, pos_t});  // [M,d_model]
  const int64_t M = selected.size(0);
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < M; begin += options.chunk_positions) {
    const int64_t len = std::min(options.chunk_positions, M - begin);
    const auto logits = model.logits(selected.narrow(0, begin, len)).to(compute);  // [len,V]
    const auto target = target_t.narrow(0, begin, len).unsqueeze(1);
    parts.push_back(logits.gather(1, target).squeeze(1) - torch::logsumexp(logits, 1));
  }
  const auto token_lp = M ? torch::cat(parts) : torch::zeros({0}, hidden.options().dtype(compute));
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
  LIRE_CHECK(options.max_sequences > 0, "max_sequences must be positive");
  LIRE_CHECK(options.chunk_positions > 0, "chunk_positions must be positive");
  const auto B = static_cast<int64_t>(lists.size());
  int64_t K = 0;
  for (int64_t b = 0; b < B; ++b) {
    LIRE_CHECK(!lists[b].prompt_ids.empty(), "list ", b, ": the prompt is empty (a T5 prompt needs at least EOS)");
    K = std::max<int64_t>(K, lists[b].response_ids.size());
  }
  const auto device = model.head_weight().device();
  std::vector<torch::Tensor> sums;
  std::vector<int64_t> counts, flat_index;
  // Groups of whole lists with at most max_sequences responses (or one larger list).
  for (int64_t first = 0; first < B;) {
    int64_t last = first, sequences = 0;
    while (last < B && (last == first ||
                        sequences + static_cast<int64_t>(lists[last].response_ids.size()) <= options.max_sequences))
      sequences += lists[last++].response_ids.size();
    std::vector<const Ids*> prompts;
    std::vector<int64_t> owner;
    std::vector<const Ids*> responses;
    for (int64_t b = first; b < last; ++b) {
      prompts.push_back(&lists[b].prompt_ids);
      for (std::size_t k = 0; k < lists[b].response_ids.size(); ++k) {
        owner.push_back(b - first);
        responses.push_back(&lists[b].response_ids[k]);
        flat_index.push_back(b * K + static_cast<int64_t>(k));
        counts.push_back(static_cast<int64_t>(lists[b].response_ids[k].size()));
      }
    }
    if (!responses.empty()) {
      const auto [states, mask] = encode_prompts(model, prompts);
      for (std::size_t begin = 0; begin < responses.size(); begin += options.max_sequences) {
        const std::size_t end = std::min(responses.size(), begin + static_cast<std::size_t>(options.max_sequences));
        const std::vector<int64_t> chunk_owner(owner.begin() + begin, owner.begin() + end);
        const std::vector<const Ids*> chunk(responses.begin() + begin, responses.begin() + end);
        sums.push_back(decode_responses(model, states, mask, chunk_owner, chunk, options).sums);
      }
    }
    first = last;
  }
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(device);
  const auto flat = sums.empty() ? torch::zeros({0}, torch::TensorOptions().dtype(compute_dtype(model)).device(device))
                                 : torch::cat(sums);
  const auto index = torch::tensor(flat_index, torch::kLong).to(device);
  ListBatchLogprobs out;
  out.logps = torch::zeros({B * K}, flat.options()).index_put({index}, flat).view({B, K});
  out.token_counts =
      torch::zeros({B * K}, long_opts).index_put({index}, torch::tensor(counts, torch::kLong).to(device)).view({B, K});
  out.mask = torch::zeros({B * K}, bool_opts)
                 .index_put({index}, torch::ones({static_cast<int64_t>(flat_index.size())}, bool_opts))
                 .view({B, K});
  return out;
}

}  // namespace lire::models

#include "lire/models/sequence_logprobs.h"

#include <algorithm>

#include <torch/torch.h>

#include "lire/core/error.h"

namespace lire::models {

SequenceLogprobs response_logprobs(LlamaForCausalLMImpl& model, const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask, const std::vector<int64_t>& response_start,
                                   const std::vector<int64_t>& response_length, const LogprobOptions& options) {
  const int64_t N = input_ids.size(0), T = input_ids.size(1);
  LIRE_CHECK(static_cast<int64_t>(response_start.size()) == N && static_cast<int64_t>(response_length.size()) == N,
             "response_logprobs: one start and one length per row");
  LIRE_CHECK(options.chunk_positions > 0, "chunk_positions must be positive");
  // (row, position) of every position that predicts a response token.
  std::vector<int64_t> rows, positions, slots;
  int64_t max_len = 0;
  for (int64_t n = 0; n < N; ++n) {
    LIRE_CHECK(response_start[n] >= 1, "row ", n, ": a response needs at least one token before it (BOS or prompt)");
    LIRE_CHECK(response_start[n] + response_length[n] <= T, "row ", n, ": response runs past the sequence");
    max_len = std::max(max_len, response_length[n]);
    for (int64_t t = 0; t < response_length[n]; ++t) {
      rows.push_back(n);
      positions.push_back(response_start[n] - 1 + t);
      slots.push_back(t);
    }
  }
  const auto device = input_ids.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  const auto row_t = torch::tensor(rows, long_opts).to(device);
  const auto pos_t = torch::tensor(positions, long_opts).to(device);
  const auto slot_t = torch::tensor(slots, long_opts).to(device);

  const auto hidden = model.forward(input_ids, attention_mask);  // [N,T,H]
  const auto weight = model.head_weight();
  const auto compute = hidden.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const auto selected = hidden.index({row_t, pos_t});             // [M,H]
  const auto targets = input_ids.index({row_t, pos_t + 1});       // [M]
  std::vector<torch::Tensor> parts;
  const int64_t M = selected.size(0);
  for (int64_t begin = 0; begin < M; begin += options.chunk_positions) {
    const int64_t len = std::min(options.chunk_positions, M - begin);
    const auto logits = torch::linear(selected.narrow(0, begin, len), weight).to(compute);  // [len,V]
    const auto target = targets.narrow(0, begin, len).unsqueeze(1);
    parts.push_back(logits.gather(1, target).squeeze(1) - torch::logsumexp(logits, 1));
  }
  const auto token_lp = M ? torch::cat(parts) : torch::zeros({0}, hidden.options().dtype(compute));

  SequenceLogprobs out;
  out.per_token = torch::zeros({N, max_len}, token_lp.options()).index_put({row_t, slot_t}, token_lp);
  out.sums = torch::zeros({N}, token_lp.options()).index_add(0, row_t, token_lp);
  out.token_counts = torch::tensor(response_length, long_opts).to(device);
  return out;
}

namespace {

// Right-pads prompt+response sequences into [N,T] ids and mask on `device`.
void pack(const std::vector<const std::vector<int64_t>*>& prompts,
          const std::vector<const std::vector<int64_t>*>& responses, const torch::Device& device,
          torch::Tensor& ids, torch::Tensor& mask, std::vector<int64_t>& start, std::vector<int64_t>& length) {
  const auto N = static_cast<int64_t>(prompts.size());
  int64_t T = 1;
  for (int64_t n = 0; n < N; ++n)
    T = std::max<int64_t>(T, prompts[n]->size() + responses[n]->size());
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

}  // namespace

SequenceLogprobs list_logprobs(LlamaForCausalLMImpl& model, const std::vector<int64_t>& prompt_ids,
                               const std::vector<std::vector<int64_t>>& response_ids, const LogprobOptions& options) {
  LIRE_CHECK(!prompt_ids.empty(), "list_logprobs: the prompt is empty (it needs at least BOS)");
  std::vector<const std::vector<int64_t>*> prompts(response_ids.size(), &prompt_ids), responses;
  for (const auto& r : response_ids) responses.push_back(&r);
  torch::Tensor ids, mask;
  std::vector<int64_t> start, length;
  pack(prompts, responses, model.head_weight().device(), ids, mask, start, length);
  return response_logprobs(model, ids, mask, start, length, options);
}

ListBatchLogprobs batch_logprobs(LlamaForCausalLMImpl& model, const std::vector<ListTokens>& lists,
                                 const LogprobOptions& options) {
  LIRE_CHECK(options.max_sequences > 0, "max_sequences must be positive");
  const auto B = static_cast<int64_t>(lists.size());
  int64_t K = 0;
  std::vector<std::pair<int64_t, int64_t>> where;  // (list, candidate) of each sequence
  for (int64_t b = 0; b < B; ++b) {
    LIRE_CHECK(!lists[b].prompt_ids.empty(), "list ", b, ": the prompt is empty (it needs at least BOS)");
    K = std::max<int64_t>(K, lists[b].response_ids.size());
    for (std::size_t k = 0; k < lists[b].response_ids.size(); ++k) where.emplace_back(b, k);
  }
  const auto device = model.head_weight().device();
  const auto compute = model.head_weight().scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  std::vector<torch::Tensor> sums;
  std::vector<int64_t> counts;
  for (std::size_t begin = 0; begin < where.size(); begin += options.max_sequences) {
    const std::size_t end = std::min(where.size(), begin + static_cast<std::size_t>(options.max_sequences));
    std::vector<const std::vector<int64_t>*> prompts, responses;
    for (std::size_t i = begin; i < end; ++i) {
      prompts.push_back(&lists[where[i].first].prompt_ids);
      responses.push_back(&lists[where[i].first].response_ids[where[i].second]);
    }
    torch::Tensor ids, mask;
    std::vector<int64_t> start, length;
    pack(prompts, responses, device, ids, mask, start, length);
    auto part = response_logprobs(model, ids, mask, start, length, options);
    sums.push_back(part.sums);
    counts.insert(counts.end(), length.begin(), length.end());
  }
  ListBatchLogprobs out;
  const auto flat = sums.empty() ? torch::zeros({0}, torch::TensorOptions().dtype(compute).device(device))
                                 : torch::cat(sums);
  std::vector<int64_t> flat_index;
  for (const auto& [b, k] : where) flat_index.push_back(b * K + k);
  const auto index = torch::tensor(flat_index, torch::kLong).to(device);
  out.logps = torch::zeros({B * K}, flat.options()).index_put({index}, flat).view({B, K});
  out.token_counts = torch::zeros({B * K}, torch::TensorOptions().dtype(torch::kLong).device(device))
                         .index_put({index}, torch::tensor(counts, torch::kLong).to(device))
                         .view({B, K});
  out.mask = torch::zeros({B * K}, torch::TensorOptions().dtype(torch::kBool).device(device))
                 .index_put({index}, torch::ones({static_cast<int64_t>(where.size())},
                                                 torch::TensorOptions().dtype(torch::kBool).device(device)))
                 .view({B, K});
  return out;
}

}  // namespace lire::models

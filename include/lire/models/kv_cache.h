// Keys and values of past positions, per decoder layer, for incremental
// decoding: the prompt is prefilled once, then each step appends one position.
#pragma once

#include <vector>

#include <torch/types.h>

namespace lire::models {

struct KVCache {
  std::vector<torch::Tensor> keys;    // per layer [B, kv_heads, T_past, head_dim]
  std::vector<torch::Tensor> values;  // per layer [B, kv_heads, T_past, head_dim]
  // A prefix shared by every row of the batch: keys/values hold one row
  // ([1, kv_heads, T_past, head_dim], e.g. one list's prompt) that all B rows
  // attend to, without being copied B times; forward reads it and leaves it
  // as it is (the rows' own keys are not appended).
  bool shared_prefix = false;

  // Number of cached positions (0 when empty).
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
  bool empty() const { return length() == 0; }
  // Keeps rows `index` of the batch (beam search reorders and prunes with this).
  void select_rows(const torch::Tensor& index);
};

}  // namespace lire::models

// Ranks induced by scores, and LiPO-lambda's pair weights (LiPO Eq. 12,
// RAX's dcg_lambdaweight):
//   w_ij = K * |g(r_i) - g(r_j)| * |G_i - G_j|,  g(r) = 1/log2(1 + r),  G = 2^psi - 1,
// r the 1-based rank of a candidate by the current scores s (valid candidates
// first, equal scores ordered by index) and K the list's number of valid
// candidates. The weights are constants for the gradient (computed detached).
#pragma once

#include <string>

#include <torch/types.h>

namespace lire::losses {

// Position of each candidate when the list is sorted by `keys` descending,
// valid candidates first and equal keys by index: 0-based, [B,K] int64.
torch::Tensor positions_by(const torch::Tensor& keys, const torch::Tensor& mask);

// 1-based ranks by score (positions_by(scores) + 1) as the scores' dtype.
torch::Tensor ranks_by_score(const torch::Tensor& scores, const torch::Tensor& mask);

// Rank discount g(r) = 1 / log2(1 + r).
torch::Tensor rank_discount(const torch::Tensor& ranks);

// Gain G = 2^psi - 1.
torch::Tensor gain(const torch::Tensor& labels);

// [B,K,K] weights w_ij for `kind` in {"dcg", "constant-gain", "constant-discount",
// "constant"}; entries of pairs involving a masked candidate are 0.
torch::Tensor lambda_weights(const std::string& kind, const torch::Tensor& scores,
                             const torch::Tensor& labels, const torch::Tensor& mask);

}  // namespace lire::losses

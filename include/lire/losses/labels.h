// Labels and reward transforms, per list over its valid candidates.
//
// LiPO scores candidates against labels psi in [0,1] (LiPO Sec. 3): from a
// pairwise preference matrix Psi, psi_k = (1/K) sum_i Psi_ki with Psi_kk = 0.5.
// With pointwise rewards the analogue takes Psi_ki = sigmoid(r_k - r_i)
// (bt-winrate) or the rank-only indicator (rank-winrate, LiPO Sec. 5.4).
// LIRE turns rewards into R' = softmax over the list (LIRE Sec. 3.1).
//
// All functions take [B,K] tensors and a [B,K] kBool mask; masked entries of
// the result are 0 and get no gradient. Inputs must already be finite on
// valid entries (see prepared_batch.h).
#pragma once

#include <string>

#include <torch/types.h>

namespace lire::losses {

// psi = transform(rewards): "bt-winrate", "rank-winrate", "minmax" (a list of
// equal rewards gives 0.5) or "none" (rewards are the labels, checked to be in [0,1]).
torch::Tensor transform_labels(const torch::Tensor& rewards, const torch::Tensor& mask,
                               const std::string& transform);

// LIRE's R': "softmax" (default), "raw", "minmax" (equal rewards: 0.5) or
// "zscore" (population std; equal rewards: 0).
torch::Tensor transform_rewards(const torch::Tensor& rewards, const torch::Tensor& mask,
                                const std::string& transform);

// Softmax over the valid entries of each list (a list without one is all 0).
torch::Tensor masked_softmax(const torch::Tensor& x, const torch::Tensor& mask);
// Log-softmax over the valid entries (masked entries are 0).
torch::Tensor masked_log_softmax(const torch::Tensor& x, const torch::Tensor& mask);

// Each list's labels divided by their sum over valid entries; a list whose
// labels sum to 0 becomes uniform over its valid entries (RAX's convention).
torch::Tensor normalize_over_valid(const torch::Tensor& labels, const torch::Tensor& mask);

}  // namespace lire::losses

// Scaled dot-product attention and the batched matrix products it is made of.
//
// On CUDA with LibTorch >= 2.1, attention() is the fused kernel
// (compat::fused_attention). Elsewhere it is the plain computation, with each
// batched product split over the heads: LibTorch 1.13's CPU bmm runs one BLAS
// call per head, each too small for BLAS to use more than one core (head_dim
// 64 contracts over 64 values), so with several intra-op threads the heads
// run side by side instead, one single-threaded GEMM each.
#pragma once

#include <torch/types.h>

namespace lire::models {

// a [..., M, K] @ b [..., K, N] -> [..., M, N], the leading dimensions equal
// (no broadcasting). Differentiable. The same values as torch::matmul: every
// output element is one GEMM's dot product, whichever thread runs its head.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b);

// softmax(q k^T * scale + mask) v with the softmax in float32 (float64 for
// float64 inputs), as HF's eager attention. q [B,H,T,D], k/v [B,H,S,D], mask
// additive, broadcastable to [B,H,T,S], or undefined.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, double scale);

}  // namespace lire::models

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

// scale * (a [..., M, K] @ b [..., K, N]) + addend -> [..., M, N], the leading
// dimensions of a and b equal (other shapes: torch::matmul's rules); addend
// (optional) broadcastable to the output, e.g. an attention mask or bias.
// Differentiable in a, b and addend. On CPU the scale and the addend go into
// each GEMM (alpha, beta) rather than through extra passes over the output.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, double scale = 1.0,
                             const torch::Tensor& addend = {});

// softmax(q k^T * scale + mask) v with the softmax in float32 (float64 for
// float64 inputs), as HF's eager attention. q [B,H,T,D], k/v [B,H,S,D], mask
// additive, broadcastable to [B,H,T,S], or undefined.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, double scale);

// Attention of B rows of queries q [B,H,T,D] over a prefix every row shares
// (kp/vp [1,H,P,D]: one list's prompt) followed by each row's own keys (k/v
// [B,H,T,D]; GQA heads already repeated); mask additive, broadcastable to
// [B,1,T,P+T], or undefined. Returns [B,H,T,D]: the values of attention over
// the prefix copied into each row, without the copies. On CPU (float32,
// float64) one custom autograd Function: the prefix's scores are one GEMM per
// head over all B*T queries, both parts of the scores share one buffer and
// one softmax, forward and backward. Elsewhere (CUDA's fused kernel, bf16)
// the rows get the prefix's keys concatenated in front of their own.
torch::Tensor prefix_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& kp, const torch::Tensor& vp, const torch::Tensor& mask,
                               double scale);

// attention() under a causal mask (or a stricter one: a sliding window), the
// queries being the last T of the S keys (S - T cached before them). For one
// row (B == 1: a list's prompt, a prefill) on CPU the queries go in blocks of
// 128, each over the keys up to its own end only (prefix_attention over the
// keys before it, the block's own keys after): the score blocks the causal
// mask hides entirely are never computed (1/4 of them at T = 256, 3/8 at
// 512). The values are attention()'s up to the order of the sums, except in
// a query row whose every key is masked (a padding position, whose output
// nothing uses). Elsewhere, and below 256 queries, attention().
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, double scale);

}  // namespace lire::models

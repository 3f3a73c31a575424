// Fused CPU kernels for the decoder's elementwise steps: RMSNorm, the rotary
// embedding and SwiGLU, each one pass forward and one pass backward (a custom
// autograd Function) instead of the five to ten passes and temporaries of
// the composed ATen ops. On a 134M Llama at 2 threads those passes cost about
// 9 % of a shared-prompt training step (docs/perf.md).
//
// The fused path serves float32 and float64 CPU tensors; any other dtype or
// device (bf16, CUDA) takes the composed formula, which is what the fused
// kernels are tested against (tests/models/shared_prompt_test.cpp, FusedOps).
#pragma once

#include <torch/types.h>

namespace lire::models {

// weight * (x * rsqrt(mean(x^2, -1) + eps)), the statistics in float32 (in
// float64 for float64 x), the product cast back to x's dtype before the
// weight multiplies it: HF's LlamaRMSNorm / T5LayerNorm. x [..., n], weight [n].
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// The composed ATen formula of rms_norm (the reference, and the path for
// other dtypes and devices).
torch::Tensor rms_norm_composed(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// x * cos + rotate_half(x) * sin for x [B,H,T,D] (any strides, e.g. a
// transposed projection), cos/sin [B,T,D] or broadcastable to it
// (rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2])): HF's
// apply_rotary_pos_emb. Returns a contiguous [B,H,T,D]. Differentiable in x
// (the tables are constants: they take the composed path if they require a
// gradient).
torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// The composed ATen formula of rotary.
torch::Tensor rotary_composed(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// silu(gate) * up (Llama's MLP), gate and up of one shape. One pass forward
// after ATen's vectorised sigmoid, one pass backward (three composed).
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);

// The composed ATen formula of swiglu.
torch::Tensor swiglu_composed(const torch::Tensor& gate, const torch::Tensor& up);

}  // namespace lire::models

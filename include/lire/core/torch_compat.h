// Every difference between the LibTorch versions lire builds against lives
// here: Debian's CPU LibTorch 1.13 and the CUDA LibTorch 2.x inside PyTorch.
// Code elsewhere calls these wrappers instead of testing versions itself.
#pragma once

#include <torch/version.h>

#define LIRE_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// at::scaled_dot_product_attention with an explicit scale exists from 2.1.
#define LIRE_HAS_SDPA LIRE_TORCH_AT_LEAST(2, 1)

#include <ATen/ATen.h>

namespace lire::compat {

// Stable sort along `dim` (ties keep their index order) in 1.13 and 2.x.
inline std::tuple<at::Tensor, at::Tensor> stable_sort(const at::Tensor& values, int64_t dim,
                                                      bool descending) {
  return at::sort(values, /*stable=*/true, dim, descending);
}

// softmax(q k^T * scale + mask) v with the softmax in float32 (float64 for
// float64 inputs), as HF's eager attention. q [B,H,T,D], k/v [B,H,S,D], mask additive [B or 1,1,T,S].
// LibTorch 2.x: at::scaled_dot_product_attention (fused kernels); 1.13: plain.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                            double scale) {
#if LIRE_TORCH_AT_LEAST(2, 1)
  if (q.scalar_type() != at::kDouble) {
    return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false, scale);
  }
#endif
  auto scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  if (mask.defined()) scores = scores + mask;
  const auto softmax_dtype = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto probs = at::softmax(scores, -1, softmax_dtype).to(q.scalar_type());
  return at::matmul(probs, v);
}

}  // namespace lire::compat

// Every difference between the LibTorch versions lire builds against lives
// here: Debian's CPU LibTorch 1.13 and the CUDA LibTorch 2.x inside PyTorch.
// Code elsewhere calls these wrappers instead of testing versions itself.
#pragma once

#include <torch/version.h>

#define LIRE_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// at::scaled_dot_product_attention (flash / memory-efficient kernels) exists from 2.0.
#define LIRE_HAS_SDPA LIRE_TORCH_AT_LEAST(2, 0)

#include <ATen/ATen.h>

namespace lire::compat {

// Stable sort along `dim` (ties keep their index order) in 1.13 and 2.x.
inline std::tuple<at::Tensor, at::Tensor> stable_sort(const at::Tensor& values, int64_t dim,
                                                      bool descending) {
  return at::sort(values, /*stable=*/true, dim, descending);
}

}  // namespace lire::compat

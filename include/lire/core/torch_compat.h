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

#include <type_traits>
#include <utility>

#include <ATen/ATen.h>

namespace lire::compat {

namespace detail {
template <typename T, typename = void>
struct has_use_libuv : std::false_type {};
template <typename T>
struct has_use_libuv<T, std::void_t<decltype(std::declval<T&>().useLibUV)>> : std::true_type {};
}  // namespace detail

// LibTorch 2.4+ asks for the TCP store's libuv server by default, and a
// LibTorch built without libuv (Debian's 2.6) refuses that at run time; the
// classic server serves there. Turns the option
// off in c10d::TCPStoreOptions `o` and returns true when it was on; false when
// there is nothing to turn off (then the error stands).
template <typename StoreOptions>
bool tcp_store_without_libuv(StoreOptions& o) {
  if constexpr (detail::has_use_libuv<StoreOptions>::value) {
    if (o.useLibUV) {
      o.useLibUV = false;
      return true;
    }
  }
  return false;
}

// Stable sort along `dim` (ties keep their index order) in 1.13 and 2.x.
inline std::tuple<at::Tensor, at::Tensor> stable_sort(const at::Tensor& values, int64_t dim,
                                                      bool descending) {
  return at::sort(values, /*stable=*/true, dim, descending);
}

// Whether at::scaled_dot_product_attention (fused kernels, with an explicit
// scale) serves q: LibTorch >= 2.1 and not float64 (kept on the plain path,
// as HF's eager attention, for the float64 reference computations).
inline bool has_fused_attention(const at::Tensor& q) {
#if LIRE_HAS_SDPA
  return q.scalar_type() != at::kDouble;
#else
  (void)q;
  return false;
#endif
}

// softmax(q k^T * scale + mask) v by the fused kernel; only where
// has_fused_attention(q). models::attention is the function to call.
inline at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& mask, double scale) {
#if LIRE_HAS_SDPA
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false, scale);
#else
  (void)k, (void)v, (void)mask, (void)scale;
  TORCH_CHECK(false, "fused attention needs LibTorch >= 2.1");
  return q;
#endif
}

}  // namespace lire::compat

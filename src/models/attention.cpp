// Built with OpenMP where the compiler has it (CMakeLists.txt), and without
// the precompiled <torch/torch.h>: only the ATen and autograd headers it needs.
#include "lire/models/attention.h"

#include <algorithm>
#include <exception>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lire/core/torch_compat.h"

namespace lire::models {
namespace {

// Whether the batched products of `a` run head by head side by side: a CPU
// tensor, several intra-op threads, and not inside a parallel region already.
bool split_over_heads(const at::Tensor& a) {
#ifdef _OPENMP
  return a.device().is_cpu() && at::get_num_threads() > 1 && !omp_in_parallel() && !at::in_parallel_region();
#else
  (void)a;
  return false;
#endif
}

// out[i] = a[i] @ b[i] for a [N,M,K], b [N,K,N']; no autograd. The N products
// are shared out among the intra-op threads, each one a single-threaded GEMM.
at::Tensor bmm_by_heads(const at::Tensor& a_in, const at::Tensor& b_in) {
  const int64_t n = a_in.size(0);
#ifdef _OPENMP
  if (n > 1 && split_over_heads(a_in)) {
    at::NoGradGuard no_grad;
    const auto a = a_in.detach(), b = b_in.detach();
    auto out = at::empty({n, a.size(1), b.size(2)}, a.options());
    const int threads = static_cast<int>(std::min<int64_t>(at::get_num_threads(), n));
    std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      try {
        at::NoGradGuard worker_no_grad;  // grad mode is per thread
        omp_set_num_threads(1);          // this task's BLAS calls stay on its own thread
        auto slice = out.select(0, i);
        at::mm_out(slice, a.select(0, i), b.select(0, i));
      } catch (...) {
#pragma omp critical(lire_bmm_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return out;
  }
#endif
  return at::bmm(a_in, b_in);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class BatchedMatmulFunction : public torch::autograd::Function<BatchedMatmulFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return bmm_by_heads(a, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto& g = grads[0];
    at::Tensor grad_a, grad_b;
    if (ctx->needs_input_grad(0)) grad_a = bmm_by_heads(g, b.transpose(1, 2));
    if (ctx->needs_input_grad(1)) grad_b = bmm_by_heads(a.transpose(1, 2), g);
    return {grad_a, grad_b};
  }
};

}  // namespace

at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b) {
  const auto d = a.dim();
  if (d < 3 || b.dim() != d || !a.sizes().slice(0, d - 2).equals(b.sizes().slice(0, d - 2)) || !split_over_heads(a))
    return at::matmul(a, b);
  const int64_t M = a.size(d - 2), K = a.size(d - 1), N = b.size(d - 1);
  TORCH_CHECK(b.size(d - 2) == K, "batched_matmul: [..., M, K] @ [..., K, N] expected, got ", a.sizes(), " and ",
              b.sizes());
  const auto a3 = a.reshape({-1, M, K}), b3 = b.reshape({-1, K, N});
  const bool grad = at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
  const auto out = grad ? BatchedMatmulFunction::apply(a3, b3) : bmm_by_heads(a3, b3);
  auto shape = a.sizes().vec();
  shape.back() = N;
  return out.view(shape);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     double scale) {
  if (compat::has_fused_attention(q)) return compat::fused_attention(q, k, v, mask, scale);
  auto scores = batched_matmul(q, k.transpose(-2, -1)) * scale;
  if (mask.defined()) scores = scores + mask;
  const auto softmax_dtype = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto probs = at::softmax(scores, -1, softmax_dtype).to(q.scalar_type());
  return batched_matmul(probs, v);
}

}  // namespace lire::models

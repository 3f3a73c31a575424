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

// out[i] = scale * a[i] @ b[i] (+ addend's slice i) for a [n,M,K], b [n,K,N];
// `addend`, when defined, is a view [lead..., M, N] (broadcast by expand)
// whose leading dimensions flatten to n. The scale and the addend ride on the
// GEMM itself (alpha, and beta = 1 over the copied addend): no extra passes
// over the output. No autograd. With several intra-op threads the n products
// are shared out among them, each one a single-threaded GEMM.
at::Tensor bmm_by_heads(const at::Tensor& a_in, const at::Tensor& b_in, double scale, const at::Tensor& addend_in) {
  at::NoGradGuard no_grad;
  const auto a = a_in.detach(), b = b_in.detach();
  const auto addend = addend_in.defined() ? addend_in.detach() : addend_in;
  const int64_t n = a.size(0);
  auto out = at::empty({n, a.size(1), b.size(2)}, a.options());
  const int64_t lead = addend.defined() ? addend.dim() - 2 : 0;
  const auto product = [&](int64_t i) {
    auto slice = out.select(0, i);
    if (addend.defined()) {
      auto source = addend;
      int64_t rest = i, stride = n;
      for (int64_t d = 0; d < lead; ++d) {
        stride /= addend.size(d);
        source = source.select(0, rest / stride);
        rest %= stride;
      }
      slice.copy_(source);
      at::addmm_out(slice, slice, a.select(0, i), b.select(0, i), /*beta=*/1, /*alpha=*/scale);
    } else {
      at::addmm_out(slice, slice, a.select(0, i), b.select(0, i), /*beta=*/0, /*alpha=*/scale);
    }
  };
#ifdef _OPENMP
  if (n > 1 && split_over_heads(a)) {
    const int threads = static_cast<int>(std::min<int64_t>(at::get_num_threads(), n));
    std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      try {
        at::NoGradGuard worker_no_grad;  // grad mode is per thread
        omp_set_num_threads(1);          // this task's BLAS calls stay on its own thread
        product(i);
      } catch (...) {
#pragma omp critical(lire_bmm_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return out;
  }
#endif
  for (int64_t i = 0; i < n; ++i) product(i);
  return out;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The gradients of scale * a @ b over 3-D a, b (saved first in ctx), for inputs a, b.
void product_grads(AutogradContext* ctx, const at::Tensor& g, variable_list& out) {
  const auto saved = ctx->get_saved_variables();
  const double scale = ctx->saved_data["scale"].toDouble();
  if (ctx->needs_input_grad(0)) out[0] = bmm_by_heads(g, saved[1].transpose(1, 2), scale, {});
  if (ctx->needs_input_grad(1)) out[1] = bmm_by_heads(saved[0].transpose(1, 2), g, scale, {});
}

// scale * a @ b over 3-D a, b.
class BatchedMatmulFunction : public torch::autograd::Function<BatchedMatmulFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b, double scale) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["scale"] = scale;
    return bmm_by_heads(a, b, scale, {});
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(3);
    product_grads(ctx, grads[0], out);
    return out;
  }
};

// scale * a @ b + addend; addend as in bmm_by_heads (its gradient reaches the
// unexpanded tensor through expand's backward).
class BatchedMatmulAddFunction : public torch::autograd::Function<BatchedMatmulAddFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b, const at::Tensor& addend,
                            double scale) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["addend_sizes"] = addend.sizes().vec();
    return bmm_by_heads(a, b, scale, addend);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(4);
    product_grads(ctx, grads[0], out);
    if (ctx->needs_input_grad(2)) out[2] = grads[0].reshape(ctx->saved_data["addend_sizes"].toIntVector());
    return out;
  }
};

}  // namespace

at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b, double scale, const at::Tensor& addend) {
  const auto d = a.dim();
  if (!a.device().is_cpu() || d < 3 || b.dim() != d || !a.sizes().slice(0, d - 2).equals(b.sizes().slice(0, d - 2))) {
    auto out = at::matmul(a, b);
    if (scale != 1.0) out = out * scale;
    return addend.defined() ? out + addend : out;
  }
  const int64_t M = a.size(d - 2), K = a.size(d - 1), N = b.size(d - 1);
  TORCH_CHECK(b.size(d - 2) == K, "batched_matmul: [..., M, K] @ [..., K, N] expected, got ", a.sizes(), " and ",
              b.sizes());
  auto shape = a.sizes().vec();
  shape.back() = N;
  const auto a3 = a.reshape({-1, M, K}), b3 = b.reshape({-1, K, N});
  const auto add = addend.defined() ? addend.expand(shape) : addend;  // throws when not broadcastable
  const bool grad = at::GradMode::is_enabled() &&
                    (a.requires_grad() || b.requires_grad() || (addend.defined() && addend.requires_grad()));
  const auto out = !grad             ? bmm_by_heads(a3, b3, scale, add)
                   : add.defined() ? BatchedMatmulAddFunction::apply(a3, b3, add, scale)
                                   : BatchedMatmulFunction::apply(a3, b3, scale);
  return out.view(shape);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     double scale) {
  if (compat::has_fused_attention(q)) return compat::fused_attention(q, k, v, mask, scale);
  const auto scores = batched_matmul(q, k.transpose(-2, -1), scale, mask);
  const auto softmax_dtype = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto probs = at::softmax(scores, -1, softmax_dtype).to(q.scalar_type());
  return batched_matmul(probs, v);
}

}  // namespace lire::models

// Built with OpenMP where the compiler has it (CMakeLists.txt), and without
// the precompiled <torch/torch.h>: only the ATen and autograd headers it needs.
#include "lire/models/attention.h"

#include <algorithm>
#include <exception>
#include <limits>
#include <type_traits>
#include <vector>

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

// The Fortran BLAS GEMMs of the BLAS library LibTorch itself links (OpenBLAS
// in Debian's build), resolved at run time. Weak: a LibTorch without them
// (a statically linked MKL) still links, and gemm_heads then goes through
// at::addmm_out, which costs a dispatch, three tensor views and checks per
// product; thousands of small per-head products make that visible.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

// How one row-major operand [rows x cols] at strides (s0, s1) goes to a
// column-major BLAS call that computes C^T = B^T A^T: rows contiguous ('N',
// ld = s0) or columns contiguous ('T', ld = s1). False when neither.
bool blas_operand(int64_t rows, int64_t cols, int64_t s0, int64_t s1, char& op, int& ld) {
  const int64_t big = std::numeric_limits<int>::max();
  if (rows > big || cols > big) return false;
  if (s1 == 1 && s0 >= std::max<int64_t>(1, cols) && s0 <= big) {
    op = 'N';
    ld = static_cast<int>(s0);
    return true;
  }
  if (s0 == 1 && s1 >= std::max<int64_t>(1, rows) && s1 <= big) {
    op = 'T';
    ld = static_cast<int>(s1);
    return true;
  }
  return false;
}

// out[i] = alpha * a[i] @ b[i] + beta * out[i] straight through BLAS for every
// i of one call of gemm_heads; `ok` is false when the dtype, the library or a
// stride does not allow it (then at::addmm_out).
struct DirectGemm {
  char op_a = 'N', op_b = 'N';
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  bool ok = false;

  DirectGemm(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
    const auto t = a.scalar_type();
    if (b.scalar_type() != t || out.scalar_type() != t) return;
    if (!(t == at::kFloat ? sgemm_ != nullptr : t == at::kDouble && dgemm_ != nullptr)) return;
    const int64_t M = a.size(1), K = a.size(2), N = b.size(2);
    if (M == 0 || N == 0 || K == 0) return;
    char op_c;
    int ld_c;
    if (!blas_operand(M, N, out.stride(1), out.stride(2), op_c, ld_c) || op_c != 'N') return;
    if (!blas_operand(M, K, a.stride(1), a.stride(2), op_a, lda)) return;
    if (!blas_operand(K, N, b.stride(1), b.stride(2), op_b, ldb)) return;
    m = static_cast<int>(N);  // C^T [N x M] = B^T [N x K] A^T [K x M], column-major
    n = static_cast<int>(M);
    k = static_cast<int>(K);
    ldc = ld_c;
    ok = true;
  }

  template <class T>
  void run(T* c, const T* a, const T* b, double alpha, double beta) const {
    const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
    if constexpr (std::is_same_v<T, float>)
      sgemm_(&op_b, &op_a, &m, &n, &k, &al, b, &ldb, a, &lda, &be, c, &ldc);
    else
      dgemm_(&op_b, &op_a, &m, &n, &k, &al, b, &ldb, a, &lda, &be, c, &ldc);
  }
};

// out[i] = alpha * a[i] @ b[i] + (addend's slice i | out[i] when `accumulate`
// | nothing) for a [n,M,K], b [n,K,N] and out [n,M,N], any of them strided
// views (rows of a wider matrix: BLAS takes the leading dimension). `addend`,
// when defined, is a view [lead..., M, N] (broadcast by expand) whose leading
// dimensions flatten to n. The scale and the addend ride on the GEMM itself
// (alpha, and beta = 1 over the copied addend): no extra passes over the
// output. No autograd. With several intra-op threads the n products are
// shared out among them, each one a single-threaded GEMM.
void gemm_heads(const at::Tensor& out_in, const at::Tensor& a_in, const at::Tensor& b_in, double alpha,
                bool accumulate, const at::Tensor& addend_in) {
  at::NoGradGuard no_grad;
  const auto a = a_in.detach(), b = b_in.detach(), out = out_in.detach();
  const auto addend = addend_in.defined() ? addend_in.detach() : addend_in;
  const int64_t n = a.size(0);
  const int64_t lead = addend.defined() ? addend.dim() - 2 : 0;
  const double beta = addend.defined() || accumulate ? 1.0 : 0.0;
  DirectGemm direct(out, a, b);
  if (addend.defined() && addend.scalar_type() != out.scalar_type()) direct.ok = false;
  // The addend's slice i: the offset of its first element.
  const auto addend_offset = [&](int64_t i) {
    int64_t rest = i, stride = n, offset = 0;
    for (int64_t d = 0; d < lead; ++d) {
      stride /= addend.size(d);
      offset += (rest / stride) * addend.stride(d);
      rest %= stride;
    }
    return offset;
  };
  const auto direct_product = [&](auto* base_c, int64_t i) {
    using T = std::remove_pointer_t<decltype(base_c)>;
    T* c = base_c + i * out.stride(0);
    if (addend.defined()) {
      const T* src = addend.data_ptr<T>() + addend_offset(i);
      const int64_t rows = out.size(1), cols = out.size(2), r0 = addend.stride(lead), r1 = addend.stride(lead + 1);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) c[r * out.stride(1) + j] = src[r * r0 + j * r1];
    }
    direct.run(c, a.data_ptr<T>() + i * a.stride(0), b.data_ptr<T>() + i * b.stride(0), alpha, beta);
  };
  const auto product = [&](int64_t i) {
    if (direct.ok) {
      if (out.scalar_type() == at::kFloat)
        direct_product(out.data_ptr<float>(), i);
      else
        direct_product(out.data_ptr<double>(), i);
      return;
    }
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
    }
    at::addmm_out(slice, slice, a.select(0, i), b.select(0, i), beta, alpha);
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
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) product(i);
}

// scale * a @ b (+ addend) into a new [n,M,N] tensor (gemm_heads).
at::Tensor bmm_by_heads(const at::Tensor& a, const at::Tensor& b, double scale, const at::Tensor& addend) {
  auto out = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  gemm_heads(out, a, b, scale, false, addend);
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

// Attention of B rows over a prefix they share and then each row's own keys,
// for float32/float64 on CPU. Inputs head-major: q, k, v [H,B,T,D]
// contiguous; kp, vp [H,P,D]; the masks additive, expanded: prefix [H,B*T,P],
// own [H,B,T,T] (or undefined; constants). Output [H,B,T,D].
//
// The scores live in one [H,B,T,P+T] buffer: the prefix part is one GEMM per
// head over all B*T queries (ld = P+T), the own part one per (head, row); one
// softmax over both; the output is the prefix product plus the own product
// accumulated into it (beta = 1). The backward writes both parts of dP into
// one buffer and takes one softmax backward. Composed ATen ops would instead
// concatenate the scores, copy each part of the probabilities back out, and
// in the backward zero-fill and add a full-size gradient per part.
class PrefixAttentionFunction : public torch::autograd::Function<PrefixAttentionFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& kp, const at::Tensor& vp, const at::Tensor& prefix_mask,
                            const at::Tensor& own_mask, double scale) {
    const int64_t H = q.size(0), B = q.size(1), T = q.size(2), D = q.size(3), P = kp.size(1);
    auto scores = at::empty({H, B, T, P + T}, q.options());
    gemm_heads(prefix_part(scores, P), q.view({H, B * T, D}), kp.transpose(1, 2), scale, false, prefix_mask);
    gemm_heads(own_part(scores, P), q.view({H * B, T, D}), k.view({H * B, T, D}).transpose(1, 2), scale, false,
               own_mask);
    const auto probs = at::_softmax(scores, 3, false);
    scores = at::Tensor();
    auto out = at::empty({H, B, T, D}, q.options());
    gemm_heads(out.view({H, B * T, D}), prefix_part(probs, P), vp, 1.0, false, {});
    gemm_heads(out.view({H * B, T, D}), own_part(probs, P), v.view({H * B, T, D}), 1.0, true, {});
    ctx->save_for_backward({q, k, v, kp, vp, probs});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &kp = saved[3], &vp = saved[4], &probs = saved[5];
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t H = q.size(0), B = q.size(1), T = q.size(2), D = q.size(3), P = kp.size(1);
    const auto dout = grads[0].contiguous();
    const auto dout_rows = dout.view({H, B * T, D}), dout_own = dout.view({H * B, T, D});
    const auto q_rows = q.view({H, B * T, D}), q_own = q.view({H * B, T, D});
    const auto k_own = k.view({H * B, T, D}), v_own = v.view({H * B, T, D});
    // dP = dO V^T in one buffer, then the softmax's backward over both parts.
    auto dprobs = at::empty(probs.sizes(), probs.options());
    gemm_heads(prefix_part(dprobs, P), dout_rows, vp.transpose(1, 2), 1.0, false, {});
    gemm_heads(own_part(dprobs, P), dout_own, v_own.transpose(1, 2), 1.0, false, {});
    const auto dscores = at::_softmax_backward_data(dprobs, probs, 3, probs.scalar_type());
    dprobs = at::Tensor();
    const auto ds_prefix = prefix_part(dscores, P), ds_own = own_part(dscores, P);
    variable_list out(8);
    if (ctx->needs_input_grad(0)) {  // dQ = scale dS K, both parts into one tensor
      auto dq = at::empty({H, B, T, D}, q.options());
      gemm_heads(dq.view({H, B * T, D}), ds_prefix, kp, scale, false, {});
      gemm_heads(dq.view({H * B, T, D}), ds_own, k_own, scale, true, {});
      out[0] = dq;
    }
    if (ctx->needs_input_grad(1)) out[1] = bmm_by_heads(ds_own.transpose(1, 2), q_own, scale, {}).view({H, B, T, D});
    if (ctx->needs_input_grad(2))
      out[2] = bmm_by_heads(own_part(probs, P).transpose(1, 2), dout_own, 1.0, {}).view({H, B, T, D});
    if (ctx->needs_input_grad(3)) out[3] = bmm_by_heads(ds_prefix.transpose(1, 2), q_rows, scale, {});
    if (ctx->needs_input_grad(4)) out[4] = bmm_by_heads(prefix_part(probs, P).transpose(1, 2), dout_rows, 1.0, {});
    return out;
  }

 private:
  // The prefix columns of a [H,B,T,P+T] buffer as [H, B*T, P] (rows P+T apart).
  static at::Tensor prefix_part(const at::Tensor& t, int64_t P) {
    return t.narrow(3, 0, P).view({t.size(0), t.size(1) * t.size(2), P});
  }
  // Its own columns as [H*B, T, T].
  static at::Tensor own_part(const at::Tensor& t, int64_t P) {
    const int64_t T = t.size(2);
    return t.narrow(3, P, T).view({t.size(0) * t.size(1), T, T});
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

at::Tensor prefix_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& kp,
                            const at::Tensor& vp, const at::Tensor& mask, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), P = kp.size(2);
  TORCH_CHECK(kp.dim() == 4 && kp.size(0) == 1 && kp.size(1) == H && vp.sizes() == kp.sizes() &&
                  k.sizes() == q.sizes() && v.sizes() == q.sizes(),
              "prefix_attention: q/k/v [B,H,T,D] and a prefix [1,H,P,D] expected, got ", q.sizes(), ", ", k.sizes(),
              ", ", v.sizes(), ", ", kp.sizes(), ", ", vp.sizes());
  const auto dtype = q.scalar_type();
  const bool same_dtype = k.scalar_type() == dtype && v.scalar_type() == dtype && kp.scalar_type() == dtype &&
                          vp.scalar_type() == dtype && (!mask.defined() || mask.scalar_type() == dtype);
  if (q.device().is_cpu() && (dtype == at::kFloat || dtype == at::kDouble) && same_dtype &&
      !(mask.defined() && mask.requires_grad())) {
    at::Tensor prefix_mask, own_mask;
    if (mask.defined()) {
      const auto m = mask.expand({B, 1, T, P + T});
      prefix_mask = m.narrow(3, 0, P).reshape({1, B * T, P}).expand({H, B * T, P});
      own_mask = m.narrow(3, P, T).transpose(0, 1).expand({H, B, T, T});
    }
    const auto out = PrefixAttentionFunction::apply(q.transpose(0, 1).contiguous(), k.transpose(0, 1).contiguous(),
                                                    v.transpose(0, 1).contiguous(), kp.squeeze(0), vp.squeeze(0),
                                                    prefix_mask, own_mask, scale);
    return out.transpose(0, 1);
  }
  // Elsewhere (the fused kernel on CUDA, bf16): each row gets the prefix's keys in front of its own.
  const auto keys = at::cat({kp.expand({B, H, P, D}), k}, 2);
  const auto values = at::cat({vp.expand({B, H, P, D}), v}, 2);
  return attention(q, keys, values, mask, scale);
}

at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                            double scale) {
  constexpr int64_t kBlock = 128;
  const int64_t B = q.size(0), T = q.size(2), S = k.size(2);
  const auto dtype = q.scalar_type();
  if (B != 1 || T < 2 * kBlock || S < T || !mask.defined() || !q.device().is_cpu() ||
      (dtype != at::kFloat && dtype != at::kDouble))
    return attention(q, k, v, mask, scale);
  const auto m = mask.expand({1, 1, T, S});
  const int64_t before = S - T;  // cached keys ahead of the queries' own
  std::vector<at::Tensor> blocks;
  for (int64_t start = 0; start < T; start += kBlock) {
    const int64_t len = std::min(kBlock, T - start), seen = before + start;
    const auto qb = q.narrow(2, start, len), kb = k.narrow(2, seen, len), vb = v.narrow(2, seen, len);
    const auto mb = m.narrow(2, start, len).narrow(3, 0, seen + len);
    blocks.push_back(seen == 0 ? attention(qb, kb, vb, mb, scale)
                               : prefix_attention(qb, kb, vb, k.narrow(2, 0, seen), v.narrow(2, 0, seen), mb, scale));
  }
  return at::cat(blocks, 2);
}

}  // namespace lire::models

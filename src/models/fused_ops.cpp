// Built with OpenMP where the compiler has it (its `omp simd` loops), and
// without the precompiled <torch/torch.h>: only the ATen and autograd headers.
#include "lire/models/fused_ops.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace lire::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool fusable(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// ------------------------------------------------------------------ RMSNorm

// Rows per partial sum of the weight's gradient: a split fixed by the shape,
// so that the sum (and a run's result) does not depend on the thread count.
constexpr int64_t kNormBlock = 32;

template <class T>
void rms_forward(const T* x, const T* w, T* y, T* r, int64_t rows, int64_t n, double eps) {
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* xi = x + i * n;
      T* yi = y + i * n;
      double squares = 0;
#pragma omp simd reduction(+ : squares)
      for (int64_t j = 0; j < n; ++j) squares += static_cast<double>(xi[j]) * static_cast<double>(xi[j]);
      const T ri = static_cast<T>(1.0 / std::sqrt(squares / static_cast<double>(n) + eps));
      r[i] = ri;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) yi[j] = w[j] * (xi[j] * ri);
    }
  });
}

// y_j = w_j x_j r with r = (mean(x^2) + eps)^(-1/2), dr/dx_j = -r^3 x_j / n:
// dx_j = r w_j dy_j - x_j r^3 mean_i(w_i dy_i x_i); dw_j = sum over rows of dy_j x_j r.
template <class T>
void rms_backward(const T* x, const T* w, const T* r, const T* dy, T* dx, double* dw_blocks, int64_t rows,
                  int64_t n) {
  const int64_t blocks = (rows + kNormBlock - 1) / kNormBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      double* part = dw_blocks ? dw_blocks + b * n : nullptr;
      if (part) std::fill(part, part + n, 0.0);
      for (int64_t i = b * kNormBlock; i < std::min(rows, (b + 1) * kNormBlock); ++i) {
        const T* xi = x + i * n;
        const T* dyi = dy + i * n;
        const T ri = r[i];
        if (dx) {
          T* dxi = dx + i * n;
          double dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(w[j] * dyi[j]) * static_cast<double>(xi[j]);
          const double rd = static_cast<double>(ri);
          const T coef = static_cast<T>(dot / static_cast<double>(n) * rd * rd * rd);
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) dxi[j] = ri * (w[j] * dyi[j]) - xi[j] * coef;
        }
        if (part) {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) part[j] += static_cast<double>(dyi[j] * (xi[j] * ri));
        }
      }
    }
  });
}

class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps) {
    const auto xc = x.contiguous(), wc = weight.contiguous();
    const int64_t n = x.size(-1), rows = n > 0 ? x.numel() / n : 0;
    auto y = at::empty(x.sizes(), xc.options());
    auto r = at::empty({rows}, xc.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm", [&] {
      rms_forward(xc.data_ptr<scalar_t>(), wc.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(),
                  rows, n, eps);
    });
    ctx->save_for_backward({xc, wc, r});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &r = saved[2];
    const auto dy = grads[0].contiguous();
    const int64_t n = x.size(-1), rows = r.numel();
    variable_list out(3);
    at::Tensor dx, blocks;
    if (ctx->needs_input_grad(0)) dx = at::empty(x.sizes(), x.options());
    if (ctx->needs_input_grad(1))
      blocks = at::empty({(rows + kNormBlock - 1) / kNormBlock, n}, x.options().dtype(at::kDouble));
    double* part = blocks.defined() ? blocks.data_ptr<double>() : nullptr;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm_backward", [&] {
      rms_backward(x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(), dy.data_ptr<scalar_t>(),
                   dx.defined() ? dx.data_ptr<scalar_t>() : nullptr, part, rows, n);
    });
    out[0] = dx;
    if (blocks.defined()) out[1] = blocks.sum(0).to(w.scalar_type());
    return out;
  }
};

// ------------------------------------------------------------------ rotary

// y = x * c + rotate_half(x) * s over rows of D; x's rows at strides (row
// index b, h, t -> offset), its elements `step` apart; c/s contiguous [B,T,D].
struct RotaryShape {
  int64_t B, H, T, D;
  int64_t sb, sh, st, step;  // x's strides
};

template <class T>
void rotary_forward(const T* x, const RotaryShape& s, const T* c, const T* sn, T* y) {
  const int64_t half = s.D / 2;
  at::parallel_for(0, s.B * s.H * s.T, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t t = row % s.T, h = (row / s.T) % s.H, b = row / (s.T * s.H);
      const T* xr = x + b * s.sb + h * s.sh + t * s.st;
      const T* cr = c + (b * s.T + t) * s.D;
      const T* sr = sn + (b * s.T + t) * s.D;
      T* yr = y + row * s.D;
      const int64_t step = s.step;
#pragma omp simd
      for (int64_t j = 0; j < half; ++j) yr[j] = xr[j * step] * cr[j] + (-xr[(j + half) * step]) * sr[j];
#pragma omp simd
      for (int64_t j = half; j < s.D; ++j) yr[j] = xr[j * step] * cr[j] + xr[(j - half) * step] * sr[j];
    }
  });
}

// dx_j = dy_j c_j + dy_{j+D/2} s_{j+D/2} (j < D/2); dx_j = dy_j c_j - dy_{j-D/2} s_{j-D/2} (j >= D/2).
template <class T>
void rotary_backward(const T* dy, const RotaryShape& s, const T* c, const T* sn, T* dx) {
  const int64_t half = s.D / 2;
  at::parallel_for(0, s.B * s.H * s.T, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t t = row % s.T, b = row / (s.T * s.H);
      const T* gr = dy + row * s.D;
      const T* cr = c + (b * s.T + t) * s.D;
      const T* sr = sn + (b * s.T + t) * s.D;
      T* xr = dx + row * s.D;
#pragma omp simd
      for (int64_t j = 0; j < half; ++j) xr[j] = gr[j] * cr[j] + gr[j + half] * sr[j + half];
#pragma omp simd
      for (int64_t j = half; j < s.D; ++j) xr[j] = gr[j] * cr[j] - gr[j - half] * sr[j - half];
    }
  });
}

class RotaryFunction : public torch::autograd::Function<RotaryFunction> {
 public:
  // cos/sin: contiguous [B,T,D], x's dtype.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const RotaryShape s{x.size(0), x.size(1), x.size(2), x.size(3), x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
    auto y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rotary", [&] {
      rotary_forward(x.data_ptr<scalar_t>(), s, cos.data_ptr<scalar_t>(), sin.data_ptr<scalar_t>(),
                     y.data_ptr<scalar_t>());
    });
    ctx->save_for_backward({cos, sin});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &cos = saved[0], &sin = saved[1];
    const auto dy = grads[0].contiguous();
    const RotaryShape s{dy.size(0), dy.size(1), dy.size(2), dy.size(3), 0, 0, 0, 1};
    auto dx = at::empty(dy.sizes(), dy.options());
    AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "rotary_backward", [&] {
      rotary_backward(dy.data_ptr<scalar_t>(), s, cos.data_ptr<scalar_t>(), sin.data_ptr<scalar_t>(),
                      dx.data_ptr<scalar_t>());
    });
    return {dx, at::Tensor(), at::Tensor()};
  }
};

// ------------------------------------------------------------------ SwiGLU

// y = silu(g) * u = g s u with s = sigmoid(g) (ATen's vectorised kernel);
// dg = dy u s (1 + g (1 - s)), du = dy g s: one pass each way.
template <class T>
void swiglu_forward(const T* g, const T* s, const T* u, T* y, int64_t n) {
  at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) y[i] = (g[i] * s[i]) * u[i];
  });
}

template <class T>
void swiglu_backward(const T* dy, const T* g, const T* s, const T* u, T* dg, T* du, int64_t n) {
  at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
    if (dg) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) dg[i] = dy[i] * u[i] * (s[i] * (T(1) + g[i] * (T(1) - s[i])));
    }
    if (du) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) du[i] = dy[i] * (g[i] * s[i]);
    }
  });
}

class SwigluFunction : public torch::autograd::Function<SwigluFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    const auto s = at::sigmoid(gate);
    auto y = at::empty(gate.sizes(), gate.options());
    AT_DISPATCH_FLOATING_TYPES(gate.scalar_type(), "swiglu", [&] {
      swiglu_forward(gate.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), up.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                     gate.numel());
    });
    ctx->save_for_backward({gate, up, s});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &g = saved[0], &u = saved[1], &s = saved[2];
    const auto dy = grads[0].contiguous();
    at::Tensor dg, du;
    if (ctx->needs_input_grad(0)) dg = at::empty(g.sizes(), g.options());
    if (ctx->needs_input_grad(1)) du = at::empty(u.sizes(), u.options());
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "swiglu_backward", [&] {
      swiglu_backward(dy.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(),
                      dg.defined() ? dg.data_ptr<scalar_t>() : nullptr,
                      du.defined() ? du.data_ptr<scalar_t>() : nullptr, g.numel());
    });
    return {dg, du};
  }
};

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

torch::Tensor rms_norm_composed(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const auto compute = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto h = x.to(compute);
  const auto normed = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!fusable(x) || !fusable(weight) || weight.scalar_type() != x.scalar_type() || x.dim() < 1 ||
      weight.dim() != 1 || weight.size(0) != x.size(-1))
    return rms_norm_composed(x, weight, eps);
  return RmsNormFunction::apply(x, weight, eps);
}

torch::Tensor rotary_composed(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto c = cos.unsqueeze(-3), s = sin.unsqueeze(-3);  // [B,1,T,D]: every head
  return x * c + rotate_half(x) * s;
}

torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  if (!fusable(x) || x.dim() != 4 || x.size(3) % 2 != 0 || !fusable(cos) || !fusable(sin) ||
      cos.scalar_type() != x.scalar_type() || sin.scalar_type() != x.scalar_type() || cos.requires_grad() ||
      sin.requires_grad() || cos.dim() > 3 || sin.dim() > 3)
    return rotary_composed(x, cos, sin);
  const std::vector<int64_t> table{x.size(0), x.size(2), x.size(3)};
  return RotaryFunction::apply(x, cos.expand(table).contiguous(), sin.expand(table).contiguous());
}

torch::Tensor swiglu_composed(const torch::Tensor& gate, const torch::Tensor& up) { return at::silu(gate) * up; }

torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up) {
  if (!fusable(gate) || up.scalar_type() != gate.scalar_type() || !up.device().is_cpu() ||
      gate.sizes() != up.sizes() || !gate.is_contiguous() || !up.is_contiguous())
    return swiglu_composed(gate, up);
  return SwigluFunction::apply(gate, up);
}

}  // namespace lire::models

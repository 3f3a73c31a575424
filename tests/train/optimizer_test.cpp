// LR schedules (HF transformers semantics), AdamW grouping and update,
// set_lr, and global gradient-norm clipping.
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/train/lr_schedule.h"
#include "lire/train/optimizer.h"
#include "support/error_message.h"

namespace lire::train {
namespace {

using lire::testing::error_message;
using ::testing::HasSubstr;

LrScheduleOptions schedule(const std::string &kind, int64_t warmup,
                           int64_t total, double lr = 1.0,
                           double min_lr_ratio = 0.0) {
  LrScheduleOptions o;
  o.kind = kind;
  o.lr = lr;
  o.warmup_steps = warmup;
  o.total_steps = total;
  o.min_lr_ratio = min_lr_ratio;
  return o;
}

// ---------------------------------------------------------------- schedules

TEST(LrSchedule, WarmupIsStepOverWarmupFromZero) {
  for (const std::string kind : {"constant", "linear", "cosine"}) {
    const auto o = schedule(kind, 10, 110);
    EXPECT_DOUBLE_EQ(lr_at(o, 0), 0.0) << kind;
    EXPECT_DOUBLE_EQ(lr_at(o, 1), 0.1) << kind;
    EXPECT_DOUBLE_EQ(lr_at(o, 5), 0.5) << kind;
    EXPECT_DOUBLE_EQ(lr_at(o, 9), 0.9) << kind;
    EXPECT_DOUBLE_EQ(lr_at(o, 10), 1.0)
        << kind; // boundary: peak at step == warmup
  }
}

TEST(LrSchedule, ConstantStaysAtPeak) {
  const auto o =
      schedule("constant", 4, 100, 3e-5, /*min_lr_ratio=*/0.5); // ratio ignored
  EXPECT_DOUBLE_EQ(lr_at(o, 1), 0.25 * 3e-5);
  EXPECT_DOUBLE_EQ(lr_at(o, 4), 3e-5);
  EXPECT_DOUBLE_EQ(lr_at(o, 99), 3e-5);
  EXPECT_DOUBLE_EQ(lr_at(o, 100), 3e-5);
}

TEST(LrSchedule, LinearDecaysToZeroAtTotalSteps) {
  const auto o = schedule("linear", 10, 110, 2.0);
  EXPECT_DOUBLE_EQ(lr_at(o, 60), 2.0 * 50.0 / 100.0);
  EXPECT_DOUBLE_EQ(lr_at(o, 85), 2.0 * 25.0 / 100.0);
  EXPECT_DOUBLE_EQ(lr_at(o, 109), 2.0 * 1.0 / 100.0);
  EXPECT_DOUBLE_EQ(lr_at(o, 110), 0.0);
  EXPECT_DOUBLE_EQ(lr_at(o, 500), 0.0);
}

TEST(LrSchedule, CosineFollowsHalfCycle) {
  const auto o = schedule("cosine", 10, 110);
  EXPECT_NEAR(lr_at(o, 35),
              0.5 * (1.0 + std::cos(0.25 * 3.14159265358979323846)),
              1e-15); // 0.853553...
  EXPECT_NEAR(lr_at(o, 35), 0.8535533905932737, 1e-15);
  EXPECT_NEAR(lr_at(o, 60), 0.5, 1e-15);
  EXPECT_NEAR(lr_at(o, 85), 0.14644660940672627, 1e-15);
  EXPECT_NEAR(lr_at(o, 110), 0.0, 1e-15);
  EXPECT_NEAR(lr_at(o, 200), 0.0, 1e-15); // past the end: held at the end value
}

TEST(LrSchedule, NoWarmupStartsAtPeak) {
  EXPECT_DOUBLE_EQ(lr_at(schedule("cosine", 0, 100, 1e-5), 0), 1e-5);
  EXPECT_DOUBLE_EQ(lr_at(schedule("linear", 0, 100, 1e-5), 0), 1e-5);
  EXPECT_DOUBLE_EQ(lr_at(schedule("linear", 0, 100), 75), 0.25);
  EXPECT_DOUBLE_EQ(lr_at(schedule("constant", 0, 100, 1e-5), 0), 1e-5);
}

TEST(LrSchedule, WarmupEqualToTotal) {
  const auto o = schedule("cosine", 8, 8);
  EXPECT_DOUBLE_EQ(lr_at(o, 4), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(o, 8), 1.0); // progress 0 / max(1, 0)
}

TEST(LrSchedule, MinLrRatioFloorsTheDecay) {
  const auto c = schedule("cosine", 10, 110, 1.0, 0.1);
  EXPECT_DOUBLE_EQ(lr_at(c, 5), 0.5); // warmup unaffected
  EXPECT_NEAR(lr_at(c, 10), 1.0, 1e-15);
  EXPECT_NEAR(lr_at(c, 60), 0.1 + 0.9 * 0.5, 1e-15);
  EXPECT_NEAR(lr_at(c, 110), 0.1, 1e-15);
  const auto l = schedule("linear", 10, 110, 1.0, 0.2);
  EXPECT_NEAR(lr_at(l, 60), 0.2 + 0.8 * 0.5, 1e-15);
  EXPECT_NEAR(lr_at(l, 110), 0.2, 1e-15);
  EXPECT_NEAR(lr_multiplier(l, 110), 0.2, 1e-15);
}

TEST(LrSchedule, ResolveWarmup) {
  EXPECT_EQ(resolve_warmup(7, 0.0, 100), 7);
  EXPECT_EQ(resolve_warmup(0, 0.0, 100), 0);
  EXPECT_EQ(resolve_warmup(0, 0.1, 95), 10); // ceil(9.5)
  EXPECT_EQ(resolve_warmup(0, 0.25, 10), 3); // ceil(2.5)
  EXPECT_EQ(resolve_warmup(0, 0.5, 10), 5);
  EXPECT_EQ(resolve_warmup(0, 1.0, 10), 10);
  EXPECT_THAT(
      error_message<ConfigError>([] { resolve_warmup(5, 0.1, 100); }),
      AllOf(HasSubstr("train.warmup_steps"), HasSubstr("train.warmup_ratio")));
  EXPECT_THAT(error_message<ConfigError>([] { resolve_warmup(0, 1.5, 100); }),
              HasSubstr("train.warmup_ratio"));
  EXPECT_THAT(error_message<ConfigError>([] { resolve_warmup(0, -0.1, 100); }),
              HasSubstr("train.warmup_ratio"));
  EXPECT_THAT(error_message<ConfigError>([] { resolve_warmup(-1, 0.0, 100); }),
              HasSubstr("train.warmup_steps"));
  EXPECT_THAT(error_message<ConfigError>([] { resolve_warmup(0, 0.1, 0); }),
              HasSubstr("train.total_steps"));
}

TEST(LrSchedule, ConfigErrorsNameTheKey) {
  EXPECT_THAT(
      error_message<ConfigError>([] { lr_at(schedule("cosin", 0, 10), 0); }),
      AllOf(HasSubstr("train.lr_schedule"), HasSubstr("'cosin'"),
            HasSubstr("did you mean cosine"),
            HasSubstr("constant, cosine, linear")));
  EXPECT_THAT(error_message<ConfigError>(
                  [] { lr_at(schedule("cosine", 0, 10, 0.0), 0); }),
              HasSubstr("train.lr"));
  EXPECT_THAT(error_message<ConfigError>(
                  [] { lr_at(schedule("cosine", 0, 10, -1e-5), 0); }),
              HasSubstr("train.lr"));
  EXPECT_THAT(error_message<ConfigError>(
                  [] { lr_at(schedule("cosine", 0, 10, NAN), 0); }),
              HasSubstr("train.lr"));
  EXPECT_THAT(
      error_message<ConfigError>([] { lr_at(schedule("linear", 0, 0), 0); }),
      HasSubstr("train.total_steps"));
  EXPECT_THAT(
      error_message<ConfigError>([] { lr_at(schedule("linear", 11, 10), 0); }),
      AllOf(HasSubstr("train.warmup_steps"), HasSubstr("11"), HasSubstr("10")));
  EXPECT_THAT(
      error_message<ConfigError>([] { lr_at(schedule("linear", -1, 10), 0); }),
      HasSubstr("train.warmup_steps"));
  EXPECT_THAT(error_message<ConfigError>(
                  [] { lr_at(schedule("linear", 0, 10, 1.0, 1.5), 0); }),
              HasSubstr("train.min_lr_ratio"));
  EXPECT_THROW(lr_at(schedule("linear", 0, 10), -1), Error);
}

// ---------------------------------------------------------------- AdamW

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

torch::Tensor param(std::vector<int64_t> shape, double start,
                    bool requires_grad = true) {
  const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1},
                                    std::multiplies<>());
  return (torch::arange(n, torch::kDouble) * 0.1 + start)
      .reshape(shape)
      .set_requires_grad(requires_grad);
}

bool contains(const std::vector<torch::Tensor> &tensors,
              const torch::Tensor &t) {
  for (const auto &x : tensors) {
    if (x.is_same(t))
      return true;
  }
  return false;
}

TEST(OptimizerGroups, DecayExcludesBiasesNormsAndVectors) {
  const Named named = {
      {"model.layers.0.self_attn.q_proj.weight", param({3, 4}, 0.1)},
      {"model.layers.0.self_attn.q_proj.bias", param({3}, 0.2)},
      {"model.layers.0.input_layernorm.weight", param({4}, 1.0)},
      {"model.layers.0.post_attention_layernorm.weight", param({4}, 1.0)},
      {"model.norm.weight", param({4}, 1.0)},
      {"encoder.LayerNorm.weight", param({4}, 1.0)},
      {"lm_head.weight", param({5, 4}, -0.3)},
      {"base_model.model.layers.0.q_proj.lora_A.default.weight",
       param({2, 4}, 0.05)},
      {"scale", param({1}, 1.0)},
      {"model.embed_tokens.weight",
       param({6, 4}, 0.0, /*requires_grad=*/false)},
  };
  auto adamw = make_adamw(named, {1e-3, 0.1});
  ASSERT_EQ(adamw->param_groups().size(), 2u);
  const auto &decay = adamw->param_groups()[0].params();
  const auto &no_decay = adamw->param_groups()[1].params();
  ASSERT_EQ(decay.size(), 3u);
  ASSERT_EQ(no_decay.size(), 6u);
  EXPECT_TRUE(contains(decay, named[0].second));
  EXPECT_TRUE(contains(decay, named[6].second));
  EXPECT_TRUE(contains(decay, named[7].second));
  for (int i : {1, 2, 3, 4, 5, 8})
    EXPECT_TRUE(contains(no_decay, named[i].second)) << named[i].first;
  EXPECT_FALSE(contains(decay, named[9].second));
  EXPECT_FALSE(contains(no_decay, named[9].second));

  const auto &o0 = static_cast<const torch::optim::AdamWOptions &>(
      adamw->param_groups()[0].options());
  const auto &o1 = static_cast<const torch::optim::AdamWOptions &>(
      adamw->param_groups()[1].options());
  EXPECT_DOUBLE_EQ(o0.weight_decay(), 0.1);
  EXPECT_DOUBLE_EQ(o1.weight_decay(), 0.0);
  EXPECT_DOUBLE_EQ(o0.lr(), 1e-3);
  EXPECT_DOUBLE_EQ(o1.lr(), 1e-3);
  EXPECT_EQ(all_params(*adamw).size(), 9u);
}

TEST(OptimizerGroups, DecaysPredicate) {
  const auto m = torch::zeros({2, 2});
  const auto v = torch::zeros({2});
  EXPECT_TRUE(decays("model.layers.1.mlp.down_proj.weight", m));
  EXPECT_FALSE(decays("model.layers.1.mlp.down_proj.bias", m));
  EXPECT_FALSE(decays("x.q_norm.weight", m)); // name rule even for a matrix
  EXPECT_FALSE(decays("model.layers.1.mlp.down_proj.weight", v));
}

TEST(OptimizerGroups, ErrorsNameTheKey) {
  const Named named = {{"w", param({2, 2}, 0.1)}};
  EXPECT_THAT(error_message<ConfigError>([&] {
                make_adamw(named, {1e-3, -0.1});
              }),
              HasSubstr("train.weight_decay"));
  OptimizerOptions bad_beta;
  bad_beta.beta2 = 1.0;
  EXPECT_THAT(error_message<ConfigError>([&] { make_adamw(named, bad_beta); }),
              HasSubstr("train.adam_beta2"));
  EXPECT_THAT(error_message<ConfigError>([&] { make_adamw(named, {-1.0}); }),
              HasSubstr("train.lr"));
  const Named frozen = {{"w", param({2, 2}, 0.1, false)}};
  EXPECT_THAT(error_message<Error>([&] { make_adamw(frozen, {}); }),
              HasSubstr("requires grad"));
}

// AdamW written out in float64 (torch.optim.AdamW, amsgrad off):
//   p <- p * (1 - lr*wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
//   p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
struct HandAdamW {
  double lr, wd, b1, b2, eps;
  std::vector<double> p, m, v;
  int t = 0;
  void step(const std::vector<double> &g) {
    ++t;
    const double bc1 = 1.0 - std::pow(b1, t), bc2 = 1.0 - std::pow(b2, t);
    for (std::size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1.0 - lr * wd;
      m[i] = b1 * m[i] + (1.0 - b1) * g[i];
      v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
  }
};

std::vector<double> values(const torch::Tensor &t) {
  const auto c = t.detach().to(torch::kDouble).contiguous().flatten();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

TEST(OptimizerAdamW, TwoStepsMatchHandWrittenUpdateInBothGroups) {
  const auto w = param({2, 3}, -0.25);
  const auto b = param({3}, 0.5);
  auto adamw = make_adamw({{"layer.weight", w}, {"layer.bias", b}},
                          {0.05, 0.1, 0.8, 0.95, 1e-6});
  HandAdamW hw{0.05,
               0.1,
               0.8,
               0.95,
               1e-6,
               values(w),
               std::vector<double>(6, 0.0),
               std::vector<double>(6, 0.0)};
  HandAdamW hb{0.05,
               0.0,
               0.8,
               0.95,
               1e-6,
               values(b),
               std::vector<double>(3, 0.0),
               std::vector<double>(3, 0.0)};

  const std::vector<std::vector<double>> gw = {
      {0.3, -1.2, 0.0, 2.5, -0.01, 0.7}, {-0.4, 0.9, 0.2, 2.0, 0.03, -0.6}};
  const std::vector<std::vector<double>> gb = {{1.0, -0.5, 0.25},
                                               {0.1, 0.5, -2.0}};
  for (int s = 0; s < 2; ++s) {
    w.mutable_grad() = torch::tensor(gw[s], torch::kDouble).reshape({2, 3});
    b.mutable_grad() = torch::tensor(gb[s], torch::kDouble);
    adamw->step();
    hw.step(gw[s]);
    hb.step(gb[s]);
    const auto pw = values(w), pb = values(b);
    for (std::size_t i = 0; i < pw.size(); ++i)
      EXPECT_NEAR(pw[i], hw.p[i], 1e-14) << "step " << s << " w" << i;
    for (std::size_t i = 0; i < pb.size(); ++i)
      EXPECT_NEAR(pb[i], hb.p[i], 1e-14) << "step " << s << " b" << i;
  }
  // The decay made a difference: the weight would differ without it.
  HandAdamW no_wd{0.05, 0.0, 0.8, 0.95, 1e-6, {-0.25}, {0.0}, {0.0}};
  no_wd.step({gw[0][0]});
  no_wd.step({gw[1][0]});
  EXPECT_GT(std::abs(no_wd.p[0] - hw.p[0]), 1e-4);
}

TEST(OptimizerAdamW, SetLrChangesEveryGroup) {
  const auto w = param({2, 2}, 0.1);
  const auto b = param({2}, 0.1);
  auto adamw = make_adamw({{"w", w}, {"b", b}}, {1e-3, 0.01});
  set_lr(*adamw, 2.5e-4);
  for (auto &group : adamw->param_groups()) {
    EXPECT_DOUBLE_EQ(
        static_cast<torch::optim::AdamWOptions &>(group.options()).lr(),
        2.5e-4);
  }
  EXPECT_DOUBLE_EQ(get_lr(*adamw, 0), 2.5e-4);
  EXPECT_DOUBLE_EQ(get_lr(*adamw, 1), 2.5e-4);
  EXPECT_THROW(get_lr(*adamw, 2), Error);
  EXPECT_THROW(set_lr(*adamw, NAN), Error);

  // The new rate is the one used: first Adam step moves each entry by ~lr.
  const auto before = b.detach().clone();
  b.mutable_grad() = torch::ones({2}, torch::kDouble);
  w.mutable_grad() = torch::ones({2, 2}, torch::kDouble);
  adamw->step();
  EXPECT_NEAR((before - b.detach()).max().item<double>(), 2.5e-4, 1e-9);
}

TEST(OptimizerAdamW, EmptyGroupIsKeptAndStepWorks) {
  const auto a = param({2, 2}, 0.1); // LoRA-only training: no biases or norms
  auto adamw = make_adamw({{"q_proj.lora_A.default.weight", a}}, {0.1, 0.01});
  ASSERT_EQ(adamw->param_groups().size(), 2u);
  EXPECT_TRUE(adamw->param_groups()[1].params().empty());
  a.mutable_grad() = torch::ones({2, 2}, torch::kDouble);
  adamw->step();
  EXPECT_TRUE(torch::isfinite(a).all().item<bool>());
  EXPECT_LT(a[0][0].item<double>(), 0.1);
}

TEST(OptimizerAdamW, ZeroGradsClearsGradients) {
  const auto w = param({2, 2}, 0.1);
  w.mutable_grad() = torch::ones({2, 2}, torch::kDouble);
  zero_grads({w, torch::Tensor()});
  EXPECT_FALSE(w.grad().defined());
}

// ---------------------------------------------------------------- clipping

TEST(ClipGradNorm, ScalesByMaxNormOverNorm) {
  auto a = torch::zeros({2}, torch::requires_grad());
  auto c = torch::zeros({1, 1}, torch::requires_grad());
  auto no_grad = torch::zeros({3}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 4.0f});
  c.mutable_grad() = torch::tensor({{12.0f}});
  const auto r =
      clip_grad_norm({a, c, no_grad}, 6.5); // norm sqrt(9 + 16 + 144) = 13
  EXPECT_TRUE(r.finite);
  EXPECT_DOUBLE_EQ(r.norm, 13.0);
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_NEAR(a.grad()[0].item<double>(), 3.0 * coef, 1e-6);
  EXPECT_NEAR(a.grad()[1].item<double>(), 4.0 * coef, 1e-6);
  EXPECT_NEAR(c.grad()[0][0].item<double>(), 12.0 * coef, 1e-6);
  EXPECT_NEAR(clip_grad_norm({a, c}, 0.0).norm, 6.5,
              1e-5); // clipped norm is max_norm
  EXPECT_FALSE(no_grad.grad().defined());
}

TEST(ClipGradNorm, LeavesSmallOrUnclippedGradientsAlone) {
  auto a = torch::zeros({2}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 4.0f});
  auto r = clip_grad_norm({a}, 10.0);
  EXPECT_DOUBLE_EQ(r.norm, 5.0);
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({3.0f, 4.0f})));
  r = clip_grad_norm({a}, 0.0); // no clipping, norm still reported
  EXPECT_DOUBLE_EQ(r.norm, 5.0);
  r = clip_grad_norm({a}, -1.0);
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({3.0f, 4.0f})));
  EXPECT_DOUBLE_EQ(clip_grad_norm({}, 1.0).norm, 0.0);
  EXPECT_TRUE(clip_grad_norm({}, 1.0).finite);
}

TEST(ClipGradNorm, AccumulatesInFloat64) {
  auto a = torch::zeros({2}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3e20f, 4e20f}); // squares overflow float32
  const auto r = clip_grad_norm({a}, 1.0);
  EXPECT_TRUE(r.finite);
  EXPECT_NEAR(r.norm / 5e20, 1.0, 1e-6);
  EXPECT_NEAR(a.grad()[1].item<double>(), 0.8, 1e-6);
}

TEST(ClipGradNorm, NonFiniteGradientIsReportedAndNotScaled) {
  for (const float bad : {std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN()}) {
    auto a = torch::zeros({2}, torch::requires_grad());
    auto c = torch::zeros({2}, torch::requires_grad());
    a.mutable_grad() = torch::tensor({30.0f, 40.0f});
    c.mutable_grad() = torch::tensor({1.0f, bad});
    const auto r = clip_grad_norm({a, c}, 1.0);
    EXPECT_FALSE(r.finite) << bad;
    EXPECT_FALSE(std::isfinite(r.norm)) << bad;
    EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({30.0f, 40.0f}))) << bad;
    EXPECT_EQ(c.grad()[0].item<float>(), 1.0f);
  }
}

} // namespace
} // namespace lire::train

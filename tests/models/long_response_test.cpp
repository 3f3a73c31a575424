// Numerical guard: sequence log-probs of very long responses (2000-4000
// tokens) from a float32 model against the same weights in float64.
//
// sequence_logprobs.cpp computes each token's log-prob in float32 (gather -
// logsumexp) and sums a response's tokens in float32 (index_add). Two error
// sources, each with its bound:
//  1. per token: the float32 forward pass and log-softmax of a 2-layer,
//     32-wide model; |lp| is of order log V = 4.6. The error grows with the
//     position: the RoPE angle t * theta_i is a float32 number whose ulp is
//     2.4e-4 at t = 4000 (HF computes it in float32 too). Measured: at most
//     3.4e-5 (2000 tokens) and 5.2e-5 (4000); the test allows 2e-4 absolute;
//  2. accumulation: n float32 additions of same-signed terms. The rigorous
//     bound (Higham, Accuracy and Stability of Numerical Algorithms, 4.2) is
//     |fl(sum) - sum| <= gamma_{n-1} * sum|x_t|, gamma_k = k u / (1 - k u),
//     u = 2^-24: 2.4e-4 relative at n = 4000. It is checked against the
//     exact (double) sum of the float32 tokens, so only the summation is
//     measured; exceeding it means a wrong sum (tokens dropped, doubled or
//     misplaced), not rounding.
// The float32 sum against the float64 reference must agree to 2e-5
// relative: rounding errors of a running float32 sum behave like a random
// walk, about sqrt(n) u ~ 4e-6 relative at n = 4000 even for a plain
// sequential sum, and the per-token errors, of either sign, add far less
// (measured: 1e-6 relative at 2000 tokens, 2e-7 at 4000, nearly all of it
// accumulation). The figures are printed.

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/io/hf_config.h"
#include "lire/models/llama.h"
#include "lire/models/sequence_logprobs.h"

namespace {

using namespace lire::models;

lire::io::LlamaConfig long_context_config() {
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 96},
                        {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
                        {"num_attention_heads", 2}, {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-5},
                        {"rope_theta", 10000.0}, {"max_position_embeddings", 4096},
                        {"tie_word_embeddings", false}, {"torch_dtype", "float32"}};
  return lire::io::parse_llama_config(cfg);
}

// The float32 model and an exact float64 copy of its weights.
struct TwinModels {
  LlamaForCausalLM f32{nullptr};
  LlamaForCausalLM f64{nullptr};
};

TwinModels make_twins() {
  const auto config = long_context_config();
  torch::manual_seed(11);
  TwinModels t;
  t.f32 = LlamaForCausalLM(config, torch::TensorOptions().dtype(torch::kFloat32));
  t.f32->init_weights(0.2);  // peaked, non-uniform next-token distributions
  t.f64 = LlamaForCausalLM(config, torch::TensorOptions().dtype(torch::kFloat64));
  torch::NoGradGuard no_grad;
  const auto src = t.f32->named_parameters();
  auto dst = t.f64->named_parameters();
  EXPECT_EQ(src.size(), dst.size());
  for (const auto& p : src) dst[p.key()].copy_(p.value().to(torch::kFloat64));
  return t;
}

std::vector<int64_t> random_ids(int64_t n, int64_t vocab) {
  const auto t = torch::randint(3, vocab, {n}, torch::TensorOptions().dtype(torch::kLong));
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
}

double gamma(int64_t k) {
  const double u = std::ldexp(1.0, -24);
  return k * u / (1.0 - k * u);
}

TEST(LongResponse, Float32SumsAgreeWithFloat64) {
  auto twins = make_twins();
  torch::manual_seed(5);
  const std::vector<int64_t> prompt = random_ids(12, 96);
  const std::vector<std::vector<int64_t>> responses = {random_ids(2000, 96), random_ids(4000, 96)};
  torch::NoGradGuard no_grad;
  // One response per call keeps the [T,T] attention scores of one sequence alive at a time.
  for (std::size_t k = 0; k < responses.size(); ++k) {
    const auto n = static_cast<int64_t>(responses[k].size());
    const auto a = list_logprobs(*twins.f32, prompt, {responses[k]});
    const auto b = list_logprobs(*twins.f64, prompt, {responses[k]});
    ASSERT_EQ(a.sums.scalar_type(), torch::kFloat32);
    ASSERT_EQ(b.sums.scalar_type(), torch::kFloat64);
    ASSERT_EQ(a.token_counts[0].item<int64_t>(), n);
    ASSERT_EQ(a.per_token.size(1), n);

    const auto tok32 = a.per_token[0].to(torch::kFloat64);
    const auto tok64 = b.per_token[0];
    // Per-token agreement with float64.
    const double max_token_diff = (tok32 - tok64).abs().max().item<double>();
    EXPECT_LT(max_token_diff, 2e-4) << n << " tokens";
    // The float64 reference: the sum of the float64 per-token values, written
    // here as a plain loop (independent of the code's index_add).
    auto acc = tok64.accessor<double, 1>();
    double sum64 = 0, abs_sum = 0;
    for (int64_t t = 0; t < n; ++t) sum64 += acc[t], abs_sum += std::abs(acc[t]);
    EXPECT_NEAR(b.sums[0].item<double>(), sum64, 1e-9 * abs_sum) << "float64 sum vs its own tokens";

    const double sum32 = a.sums[0].item<double>();
    // Exact sum of the float32 tokens (in double: exact enough for 4000 terms):
    // isolates the accumulation error from the per-token error.
    const double exact_of_f32_tokens = tok32.sum().item<double>();
    const double accumulation_error = std::abs(sum32 - exact_of_f32_tokens);
    EXPECT_LE(accumulation_error, gamma(n - 1) * abs_sum) << "past the rigorous float32 summation bound";
    const double rel = std::abs(sum32 - sum64) / std::abs(sum64);
    EXPECT_LT(rel, 2e-5) << n << " tokens: float32 sum " << sum32 << " vs float64 " << sum64;
    std::printf("[ figures  ] %lld tokens: sum64 %.6f, rel err %.2e (accumulation %.2e), max token diff %.2e\n",
                static_cast<long long>(n), sum64, rel, accumulation_error / std::abs(sum64), max_token_diff);
  }
}

}  // namespace

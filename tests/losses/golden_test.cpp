// Every case of tests/fixtures/losses_golden.json (float64 values and
// gradients with RAX semantics, from an independent implementation; copied
// from shared/fixtures/losses): loss and d loss / d logps to rtol 1e-6.
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/losses/registry.h"

namespace {

using nlohmann::json;

torch::Tensor matrix(const json& rows, torch::Dtype dtype = torch::kFloat64) {
  const auto b = static_cast<int64_t>(rows.size());
  const auto k = static_cast<int64_t>(rows.at(0).size());
  auto t = torch::zeros({b, k}, torch::kFloat64);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < k; ++j) t[i][j] = rows[i][j].is_boolean() ? double(rows[i][j].get<bool>()) : rows[i][j].get<double>();
  return t.to(dtype);
}

json load_cases() {
  std::ifstream in(LIRE_TEST_FIXTURES "/losses_golden.json");
  EXPECT_TRUE(in.good()) << "missing fixture losses_golden.json";
  return json::parse(in).at("cases");
}

// Every case on every device this build can use (CPU, and CUDA in a CUDA build
// with a GPU), float64 throughout.
class LossGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LossGolden, EveryCaseMatchesValueAndGradient) {
  const torch::Device device(GetParam());
  if (device.is_cuda() && !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const json cases = load_cases();
  ASSERT_GE(cases.size(), 30u);
  std::set<std::string> seen;
  for (const auto& [name, c] : cases.items()) {
    SCOPED_TRACE(name);
    seen.insert(c.at("loss").get<std::string>());
    lire::losses::LossInput in;
    in.logps = matrix(c.at("logps")).to(device).requires_grad_(true);
    in.ref_logps = matrix(c.at("ref_logps")).to(device);
    in.rewards = matrix(c.at("rewards")).to(device);
    in.mask = matrix(c.at("mask"), torch::kBool).to(device);
    auto loss = lire::losses::make(c.at("loss").get<std::string>(), c.at("options"));
    auto out = loss->forward(in);
    const double expected = c.at("expected_loss").get<double>();
    EXPECT_NEAR(out.loss.item<double>(), expected, 1e-6 * std::abs(expected) + 1e-12);
    out.loss.backward();
    const auto expected_grad = matrix(c.at("expected_grad_logps"));
    ASSERT_TRUE(in.logps.grad().defined());
    const auto grad = in.logps.grad().cpu();
    const double max_err = (grad - expected_grad).abs().max().item<double>();
    const double scale = expected_grad.abs().max().item<double>();
    EXPECT_LE(max_err, 1e-6 * scale + 1e-12) << "grad\n" << grad << "\nexpected\n" << expected_grad;
  }
  // The fixture covers every loss but sft.
  for (const auto& n : lire::losses::names())
    if (n != "sft") {
      EXPECT_TRUE(seen.count(n)) << "no golden case for " << n;
    }
}

INSTANTIATE_TEST_SUITE_P(Devices, LossGolden, ::testing::Values("cpu", "cuda"));

}  // namespace

#include "lire/losses/evaluate.h"

#include <algorithm>

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/torch_runtime.h"

namespace lire::losses {

LossInput make_loss_input(const std::vector<data::ScoredList>& lists, std::size_t begin, std::size_t end,
                          const std::string& device) {
  LIRE_CHECK(begin < end && end <= lists.size(), "make_loss_input: bad range [", begin, ", ", end, ")");
  const auto b = static_cast<int64_t>(end - begin);
  int64_t k = 0;
  for (std::size_t i = begin; i < end; ++i) k = std::max<int64_t>(k, lists[i].logps.size());
  const auto& first = lists[begin];
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto logps = torch::zeros({b, k}, f64), rewards = torch::zeros({b, k}, f64);
  auto ref = torch::zeros({b, k}, f64), counts = torch::ones({b, k}, f64);
  auto mask = torch::zeros({b, k}, torch::kBool);
  auto sft_index = torch::full({b}, -1, torch::kLong);
  auto L = logps.accessor<double, 2>(), R = rewards.accessor<double, 2>();
  auto F = ref.accessor<double, 2>(), C = counts.accessor<double, 2>();
  auto M = mask.accessor<bool, 2>();
  auto S = sft_index.accessor<int64_t, 1>();
  for (int64_t row = 0; row < b; ++row) {
    const auto& list = lists[begin + row];
    for (std::size_t j = 0; j < list.logps.size(); ++j) {
      M[row][j] = true;
      L[row][j] = list.logps[j];
      if (!list.rewards.empty()) R[row][j] = list.rewards[j];
      if (!list.ref_logps.empty()) F[row][j] = list.ref_logps[j];
      if (!list.token_counts.empty()) C[row][j] = list.token_counts[j];
    }
    if (list.sft_index) S[row] = *list.sft_index;
  }
  const auto dev = resolve_device(device);
  LossInput in;
  in.logps = logps.to(dev);
  in.mask = mask.to(dev);
  if (!first.rewards.empty()) in.rewards = rewards.to(dev);
  if (!first.ref_logps.empty()) in.ref_logps = ref.to(dev);
  if (!first.token_counts.empty()) in.token_counts = counts.to(dev);
  if (first.sft_index) in.sft_index = sft_index.to(dev);
  return in;
}

LossReport evaluate(const Loss& loss, const std::vector<data::ScoredList>& lists, int64_t batch_size,
                    const std::string& device) {
  LIRE_CHECK(batch_size > 0, "evaluate: batch_size must be positive");
  torch::NoGradGuard no_grad;
  std::vector<LossOutput> parts;
  std::map<std::string, std::pair<double, double>> metric_sums;
  for (std::size_t begin = 0; begin < lists.size(); begin += batch_size) {
    const std::size_t end = std::min(lists.size(), begin + static_cast<std::size_t>(batch_size));
    LossOutput out = loss.forward(make_loss_input(lists, begin, end, device));
    for (const auto& [name, m] : out.metrics) {
      metric_sums[name].first += m.sum.item<double>();
      metric_sums[name].second += m.count.item<double>();
    }
    parts.push_back(std::move(out));
  }
  LossReport report;
  report.loss_name = loss.options().name;
  report.lists = static_cast<int64_t>(lists.size());
  if (parts.empty()) return report;
  report.loss = combine(parts).item<double>();
  for (const auto& p : parts) {
    report.numerator += p.numerator.item<double>();
    report.denominator += p.denominator.item<double>();
  }
  for (const auto& [name, sc] : metric_sums) {
    report.metrics[name] = sc.second > 0 ? sc.first / sc.second : 0.0;
    report.counts[name] = sc.second;
  }
  return report;
}

}  // namespace lire::losses

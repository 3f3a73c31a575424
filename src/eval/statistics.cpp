// Evaluation statistics over per-prompt score tables. See statistics.h and
// docs/evaluation.md ("How each number is computed").
#include "lire/eval/statistics.h"

#include "lire/core/portable_random.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <utility>

#include "lire/core/error.h"

namespace lire::eval {

namespace {

// Throws DataError unless every value of `values` is finite; `what` names the table.
void check_finite(const std::vector<double>& values, const std::string& what) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]))
      throw DataError(str(what, ": value at index ", i, " is ", values[i], " (expected a finite number)"));
  }
}

// Two tables of the same prompts: equal lengths, >= 1 entry, all finite.
// `context` prefixes every message ("win rate: ").
void check_pair(const std::string& context, const std::vector<double>& a, const std::string& a_name,
                const std::vector<double>& b, const std::string& b_name) {
  if (a.size() != b.size())
    throw DataError(str(context, a_name, " has ", a.size(), " values but ", b_name, " has ", b.size(),
                        " (expected one per prompt in both)"));
  if (a.empty())
    throw DataError(str(context, a_name, " and ", b_name, " are empty (expected at least one prompt)"));
  check_finite(a, context + a_name);
  check_finite(b, context + b_name);
}

void check_options(const WinRateOptions& options) {
  LIRE_CHECK(std::isfinite(options.tie_tolerance) && options.tie_tolerance >= 0.0,
             "win rate: tie_tolerance must be finite and >= 0, got ", options.tie_tolerance);
}

// Outcome in half points: win 2, tie 1, loss 0 (so sums stay exact integers).
unsigned half_points(Outcome outcome) {
  switch (outcome) {
    case Outcome::kWin: return 2;
    case Outcome::kTie: return 1;
    case Outcome::kLoss: return 0;
  }
  return 0;
}

// Type-7 quantile of already sorted, non-empty values.
double quantile_sorted(const std::vector<double>& sorted, double p) {
  const double h = static_cast<double>(sorted.size() - 1) * p;
  const std::size_t lo = static_cast<std::size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted.back();
  const double frac = h - static_cast<double>(lo);
  return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

}  // namespace

Outcome compare_rewards(double policy, double baseline, const WinRateOptions& options) {
  check_options(options);
  if (!std::isfinite(policy) || !std::isfinite(baseline))
    throw DataError(str("compare_rewards: rewards must be finite, got policy ", policy,
                        " and baseline ", baseline));
  const double diff = policy - baseline;
  if (diff > options.tie_tolerance) return Outcome::kWin;
  if (diff < -options.tie_tolerance) return Outcome::kLoss;
  return Outcome::kTie;
}

WinRate win_rate(const std::vector<double>& policy, const std::vector<double>& baseline,
                 const WinRateOptions& options) {
  check_options(options);
  check_pair("win rate: ", policy, "policy rewards", baseline, "baseline rewards");
  WinRate result;
  for (std::size_t i = 0; i < policy.size(); ++i) {
    switch (compare_rewards(policy[i], baseline[i], options)) {
      case Outcome::kWin: ++result.wins; break;
      case Outcome::kTie: ++result.ties; break;
      case Outcome::kLoss: ++result.losses; break;
    }
  }
  result.prompts = policy.size();
  result.rate = (static_cast<double>(result.wins) + 0.5 * static_cast<double>(result.ties)) /
                static_cast<double>(result.prompts);
  return result;
}

WinRateInterval bootstrap_win_rate(const std::vector<double>& policy,
                                   const std::vector<double>& baseline,
                                   const BootstrapOptions& options,
                                   const WinRateOptions& win_options) {
  check_options(win_options);
  LIRE_CHECK(options.resamples >= 1, "bootstrap: resamples must be >= 1, got ", options.resamples);
  LIRE_CHECK(options.level > 0.0 && options.level < 1.0,
             "bootstrap: level must be in (0, 1), got ", options.level);
  check_pair("bootstrap: ", policy, "policy rewards", baseline, "baseline rewards");

  const std::size_t n = policy.size();
  std::vector<unsigned> points(n);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    points[i] = half_points(compare_rewards(policy[i], baseline[i], win_options));
    total += points[i];
  }
  const double denominator = 2.0 * static_cast<double>(n);

  std::mt19937_64 rng(options.seed);
  std::vector<double> rates(options.resamples);
  for (std::size_t b = 0; b < options.resamples; ++b) {
    std::uint64_t sum = 0;
    for (std::size_t k = 0; k < n; ++k) sum += points[uniform_below(rng, n)];
    rates[b] = static_cast<double>(sum) / denominator;
  }
  std::sort(rates.begin(), rates.end());

  WinRateInterval result;
  result.estimate = static_cast<double>(total) / denominator;
  result.lower = quantile_sorted(rates, (1.0 - options.level) / 2.0);
  result.upper = quantile_sorted(rates, (1.0 + options.level) / 2.0);
  result.level = options.level;
  result.resamples = options.resamples;
  return result;
}

double mean(const std::vector<double>& values, const std::string& what) {
  if (values.empty()) throw DataError(str(what, ": no values (expected at least one)"));
  check_finite(values, what);
  double sum = 0.0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

SourcesSummary summarize_sources(const std::vector<SourceScores>& sources,
                                 const WinRateOptions& options) {
  check_options(options);
  if (sources.empty()) throw DataError("reward sources: none given (expected at least one)");
  std::set<std::string> names;
  SourcesSummary result;
  double rate_sum = 0.0;
  for (const SourceScores& source : sources) {
    if (source.name.empty()) throw DataError("reward sources: a source has an empty name");
    if (!names.insert(source.name).second)
      throw DataError(str("reward sources: '", source.name, "' appears more than once"));
    if (source.policy.size() != sources.front().policy.size())
      throw DataError(str("reward source '", source.name, "' scores ", source.policy.size(),
                          " prompts but '", sources.front().name, "' scores ",
                          sources.front().policy.size(), " (expected the same prompts)"));
    const std::string prefix = str("reward source '", source.name, "': ");
    check_pair(prefix, source.policy, "policy rewards", source.baseline, "baseline rewards");
    SourceSummary summary;
    summary.name = source.name;
    summary.mean_policy_reward = mean(source.policy, prefix + "policy rewards");
    summary.mean_baseline_reward = mean(source.baseline, prefix + "baseline rewards");
    summary.win_rate = win_rate(source.policy, source.baseline, options);
    rate_sum += summary.win_rate.rate;
    result.sources.push_back(std::move(summary));
  }
  result.average_win_rate = rate_sum / static_cast<double>(result.sources.size());
  return result;
}

NegativeFlips negative_flip_rate(const std::vector<double>& policy,
                                 const std::vector<double>& baseline_model) {
  check_pair("negative flips: ", policy, "policy rewards", baseline_model, "baseline-model rewards");
  NegativeFlips result;
  for (std::size_t i = 0; i < policy.size(); ++i)
    if (policy[i] < baseline_model[i]) ++result.flips;
  result.prompts = policy.size();
  result.rate = static_cast<double>(result.flips) / static_cast<double>(result.prompts);
  return result;
}

KlEstimate sequence_kl(const std::vector<double>& policy_logps,
                       const std::vector<double>& reference_logps) {
  check_pair("KL: ", policy_logps, "policy log-probs", reference_logps, "reference log-probs");
  const std::size_t n = policy_logps.size();
  std::vector<double> diffs(n);
  for (std::size_t i = 0; i < n; ++i) diffs[i] = policy_logps[i] - reference_logps[i];
  KlEstimate result;
  result.samples = n;
  result.mean = mean(diffs, "KL: log-prob differences");
  if (n >= 2) {
    double squares = 0.0;
    for (double d : diffs) squares += (d - result.mean) * (d - result.mean);
    const double variance = squares / static_cast<double>(n - 1);
    result.standard_error = std::sqrt(variance / static_cast<double>(n));
  }
  return result;
}

LengthStats length_statistics(const std::vector<std::int64_t>& lengths) {
  if (lengths.empty()) throw DataError("length statistics: no responses (expected at least one length)");
  std::vector<double> sorted(lengths.size());
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] < 0)
      throw DataError(str("length statistics: length at index ", i, " is ", lengths[i],
                          " (expected a count >= 0)"));
    sorted[i] = static_cast<double>(lengths[i]);
  }
  std::sort(sorted.begin(), sorted.end());
  LengthStats result;
  result.count = lengths.size();
  result.mean = mean(sorted, "length statistics");
  result.median = quantile_sorted(sorted, 0.5);
  result.p10 = quantile_sorted(sorted, 0.1);
  result.p90 = quantile_sorted(sorted, 0.9);
  result.min = *std::min_element(lengths.begin(), lengths.end());
  result.max = *std::max_element(lengths.begin(), lengths.end());
  return result;
}

double quantile(std::vector<double> values, double p) {
  LIRE_CHECK(p >= 0.0 && p <= 1.0, "quantile: p must be in [0, 1], got ", p);
  if (values.empty()) throw DataError("quantile: no values (expected at least one)");
  check_finite(values, "quantile");
  std::sort(values.begin(), values.end());
  return quantile_sorted(values, p);
}

}  // namespace lire::eval

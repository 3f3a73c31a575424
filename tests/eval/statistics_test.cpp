// Evaluation statistics on hand-made score tables: win rate (ties 0.5, tie
// tolerance), the bootstrap interval (contains the estimate, narrows with more
// prompts, seeded), several reward sources, negative flips (LIRE A.8), the KL
// estimate and its standard error, length statistics, and the error cases.
// Every expected number is worked out by hand in the comment beside it.
#include <cmath>
#include <limits>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "lire/eval/statistics.h"
#include "support/error_message.h"

namespace {

using ::testing::HasSubstr;
using lire::testing::error_message;
using namespace lire::eval;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A table of n prompts cycling through win, win, loss, tie (policy vs baseline
// rewards): win rate (2 + 0.5) / 4 = 0.625 whenever n is a multiple of 4.
void cycle_table(std::size_t n, std::vector<double>& policy, std::vector<double>& baseline) {
  policy.clear();
  baseline.clear();
  const double kPolicy[] = {2.0, 1.5, 0.0, 1.0};
  for (std::size_t i = 0; i < n; ++i) {
    policy.push_back(kPolicy[i % 4]);
    baseline.push_back(1.0);
  }
}

// ------------------------------------------------------------------ win rate

TEST(WinRate, CountsWinsTiesLossesAndTiesCountHalf) {
  // prompt:   0    1    2    3    4
  // policy:   3    1    2    5    0.5
  // baseline: 1    1    4    2    0.5
  // outcome:  win  tie  loss win  tie  -> 2 wins, 2 ties, 1 loss
  // rate = (2 + 0.5 * 2) / 5 = 3 / 5 = 0.6
  const WinRate r = win_rate({3, 1, 2, 5, 0.5}, {1, 1, 4, 2, 0.5});
  EXPECT_EQ(r.wins, 2u);
  EXPECT_EQ(r.ties, 2u);
  EXPECT_EQ(r.losses, 1u);
  EXPECT_EQ(r.prompts, 5u);
  EXPECT_DOUBLE_EQ(r.rate, 0.6);
}

TEST(WinRate, ExtremesAndAllTies) {
  EXPECT_DOUBLE_EQ(win_rate({2, 3}, {1, 1}).rate, 1.0);   // (2 + 0) / 2
  EXPECT_DOUBLE_EQ(win_rate({0, 0}, {1, 1}).rate, 0.0);   // (0 + 0) / 2
  EXPECT_DOUBLE_EQ(win_rate({1, 1}, {1, 1}).rate, 0.5);   // (0 + 0.5 * 2) / 2
}

TEST(WinRate, TieToleranceTurnsCloseRewardsIntoTies) {
  // diffs policy - baseline: 0, 0.05, -0.5, 1.0
  // tolerance 0 (exact): tie, win, loss, win -> (2 + 0.5) / 4 = 0.625
  // tolerance 0.1:       tie, tie, loss, win -> (1 + 0.5 * 2) / 4 = 0.5
  const std::vector<double> policy = {1.0, 1.05, 0.5, 2.0};
  const std::vector<double> baseline = {1.0, 1.0, 1.0, 1.0};
  const WinRate exact = win_rate(policy, baseline);
  EXPECT_EQ(exact.ties, 1u);
  EXPECT_DOUBLE_EQ(exact.rate, 0.625);
  const WinRate tolerant = win_rate(policy, baseline, WinRateOptions{0.1});
  EXPECT_EQ(tolerant.wins, 1u);
  EXPECT_EQ(tolerant.ties, 2u);
  EXPECT_EQ(tolerant.losses, 1u);
  EXPECT_DOUBLE_EQ(tolerant.rate, 0.5);
}

TEST(WinRate, DifferenceEqualToTheToleranceIsATie) {
  // 1.5 - 1.0 = 0.5 exactly (binary fractions): |diff| <= 0.5 -> tie.
  EXPECT_EQ(compare_rewards(1.5, 1.0, WinRateOptions{0.5}), Outcome::kTie);
  EXPECT_EQ(compare_rewards(1.0, 1.5, WinRateOptions{0.5}), Outcome::kTie);
  EXPECT_EQ(compare_rewards(1.5, 1.0), Outcome::kWin);
  EXPECT_EQ(compare_rewards(1.0, 1.5), Outcome::kLoss);
  EXPECT_EQ(compare_rewards(-0.0, 0.0), Outcome::kTie);
}

TEST(WinRate, RejectsNonFiniteMismatchedOrEmptyTables) {
  EXPECT_THAT(error_message<lire::DataError>([] { win_rate({1, kNaN}, {1, 2}); }),
              HasSubstr("win rate: policy rewards: value at index 1 is nan"));
  EXPECT_THAT(error_message<lire::DataError>([] { win_rate({1, 2}, {kInf, 2}); }),
              HasSubstr("win rate: baseline rewards: value at index 0 is inf"));
  EXPECT_THAT(error_message<lire::DataError>([] { win_rate({1, 2, 3}, {1, 2}); }),
              HasSubstr("policy rewards has 3 values but baseline rewards has 2"));
  EXPECT_THAT(error_message<lire::DataError>([] { win_rate({}, {}); }),
              HasSubstr("expected at least one prompt"));
  EXPECT_THAT(error_message<lire::Error>([] { win_rate({1}, {1}, WinRateOptions{-0.1}); }),
              HasSubstr("tie_tolerance must be finite and >= 0"));
  EXPECT_THAT(error_message<lire::DataError>([] { compare_rewards(kNaN, 1.0); }),
              HasSubstr("rewards must be finite"));
}

// ------------------------------------------------------- bootstrap interval

TEST(Bootstrap, AllWinsGivesOneOne) {
  // Every resample of an all-win table is all wins: every bootstrap rate is 1.
  const WinRateInterval ci = bootstrap_win_rate({5, 6, 7, 8, 9}, {1, 1, 1, 1, 1});
  EXPECT_DOUBLE_EQ(ci.estimate, 1.0);
  EXPECT_DOUBLE_EQ(ci.lower, 1.0);
  EXPECT_DOUBLE_EQ(ci.upper, 1.0);
  EXPECT_DOUBLE_EQ(ci.level, 0.95);
  EXPECT_EQ(ci.resamples, 1000u);
}

TEST(Bootstrap, AllLossesAndASingleTieAreDegenerate) {
  const WinRateInterval losses = bootstrap_win_rate({0, 0, 0}, {1, 1, 1});
  EXPECT_DOUBLE_EQ(losses.lower, 0.0);
  EXPECT_DOUBLE_EQ(losses.upper, 0.0);
  // One tied prompt: every resample is that prompt, rate 0.5.
  const WinRateInterval tie = bootstrap_win_rate({1}, {1});
  EXPECT_DOUBLE_EQ(tie.estimate, 0.5);
  EXPECT_DOUBLE_EQ(tie.lower, 0.5);
  EXPECT_DOUBLE_EQ(tie.upper, 0.5);
}

TEST(Bootstrap, OneWinOneLossSpansZeroToOne) {
  // Prompts {win, loss}: a resample of 2 is {L,L} (rate 0) with probability
  // 1/4, mixed (0.5) with 1/2, {W,W} (1) with 1/4. Of 1000 sorted rates about
  // 250 are 0 and 250 are 1, so the 2.5% quantile (position 999 * 0.025 =
  // 24.975) falls among the zeros and the 97.5% one (974.025) among the ones.
  const WinRateInterval ci = bootstrap_win_rate({2, 0}, {1, 1});
  EXPECT_DOUBLE_EQ(ci.estimate, 0.5);
  EXPECT_DOUBLE_EQ(ci.lower, 0.0);
  EXPECT_DOUBLE_EQ(ci.upper, 1.0);
}

TEST(Bootstrap, ContainsTheEstimateAndNarrowsWithMorePrompts) {
  std::vector<double> policy, baseline;
  cycle_table(40, policy, baseline);
  const WinRateInterval small = bootstrap_win_rate(policy, baseline);
  cycle_table(4000, policy, baseline);
  const WinRateInterval large = bootstrap_win_rate(policy, baseline);
  for (const WinRateInterval& ci : {small, large}) {
    EXPECT_DOUBLE_EQ(ci.estimate, 0.625);  // (2 + 0.5) / 4 per cycle of 4
    EXPECT_LE(ci.lower, ci.estimate);
    EXPECT_GE(ci.upper, ci.estimate);
  }
  // The width shrinks like 1/sqrt(n): 100x the prompts, about 1/10 the width.
  const double small_width = small.upper - small.lower;
  const double large_width = large.upper - large.lower;
  EXPECT_LT(large_width, small_width / 5);
  // Normal approximation for n = 4000: per-prompt outcome x is 1, 0, 0.5 with
  // probabilities 1/2, 1/4, 1/4; E[x] = 0.625, E[x^2] = 0.5 + 0.0625 = 0.5625,
  // var = 0.5625 - 0.625^2 = 0.171875, se = sqrt(0.171875 / 4000) = 0.006555,
  // width = 2 * 1.96 * se = 0.0257.
  EXPECT_NEAR(large_width, 0.0257, 0.004);
}

TEST(Bootstrap, SameSeedSameIntervalOtherSeedDifferent) {
  // 997 prompts (prime, so the rates have fine granularity 1 / 1994).
  std::vector<double> policy, baseline;
  cycle_table(997, policy, baseline);
  BootstrapOptions options;
  options.seed = 7;
  const WinRateInterval a = bootstrap_win_rate(policy, baseline, options);
  const WinRateInterval b = bootstrap_win_rate(policy, baseline, options);
  EXPECT_EQ(a.lower, b.lower);
  EXPECT_EQ(a.upper, b.upper);
  options.seed = 8;
  const WinRateInterval c = bootstrap_win_rate(policy, baseline, options);
  EXPECT_TRUE(a.lower != c.lower || a.upper != c.upper)
      << "seeds 7 and 8 gave [" << a.lower << ", " << a.upper << "]";
  EXPECT_DOUBLE_EQ(a.estimate, c.estimate);
}

TEST(Bootstrap, HigherLevelIsWiderAndResamplesAreConfigurable) {
  std::vector<double> policy, baseline;
  cycle_table(400, policy, baseline);
  BootstrapOptions narrow;
  narrow.level = 0.5;
  BootstrapOptions wide;
  wide.level = 0.99;
  const WinRateInterval n = bootstrap_win_rate(policy, baseline, narrow);
  const WinRateInterval w = bootstrap_win_rate(policy, baseline, wide);
  EXPECT_LT(n.upper - n.lower, w.upper - w.lower);
  EXPECT_DOUBLE_EQ(w.level, 0.99);
  // One resample: both quantiles are that resample's rate.
  BootstrapOptions one;
  one.resamples = 1;
  const WinRateInterval single = bootstrap_win_rate(policy, baseline, one);
  EXPECT_EQ(single.resamples, 1u);
  EXPECT_EQ(single.lower, single.upper);
}

TEST(Bootstrap, TieToleranceAppliesToResamples) {
  // Differences 0.05 and -0.05: with tolerance 0.1 both tie, so every
  // resample's rate is 0.5.
  const WinRateInterval ci =
      bootstrap_win_rate({1.05, 0.95}, {1.0, 1.0}, BootstrapOptions{}, WinRateOptions{0.1});
  EXPECT_DOUBLE_EQ(ci.lower, 0.5);
  EXPECT_DOUBLE_EQ(ci.upper, 0.5);
}

TEST(Bootstrap, RejectsBadOptionsAndTables) {
  BootstrapOptions zero;
  zero.resamples = 0;
  EXPECT_THAT(error_message<lire::Error>([&] { bootstrap_win_rate({1}, {0}, zero); }),
              HasSubstr("resamples must be >= 1"));
  for (double level : {0.0, 1.0, -0.5, 95.0, kNaN}) {
    BootstrapOptions bad;
    bad.level = level;
    EXPECT_THAT(error_message<lire::Error>([&] { bootstrap_win_rate({1}, {0}, bad); }),
                HasSubstr("level must be in (0, 1)"));
  }
  EXPECT_THAT(error_message<lire::DataError>([] { bootstrap_win_rate({1, 2}, {0}); }),
              HasSubstr("bootstrap: policy rewards has 2 values but baseline rewards has 1"));
  EXPECT_THAT(error_message<lire::DataError>([] { bootstrap_win_rate({1, 2}, {0, kNaN}); }),
              HasSubstr("bootstrap: baseline rewards: value at index 1 is nan"));
  EXPECT_THAT(error_message<lire::DataError>([] { bootstrap_win_rate({}, {}); }),
              HasSubstr("expected at least one prompt"));
}

// ------------------------------------------------- several reward sources

TEST(EvalSources, MeanRewardsWinRatesAndTheirAverage) {
  // rm:      policy {1, 2, 3, 4}, baseline {0, 2, 5, 1}
  //          win, tie, loss, win -> (2 + 0.5) / 4 = 0.625
  //          mean policy 10 / 4 = 2.5, mean baseline 8 / 4 = 2
  // rm-star: policy {-1, -2, 0.5, 0}, baseline {0, 0, 0, 0}
  //          loss, loss, win, tie -> (1 + 0.5) / 4 = 0.375
  //          mean policy -2.5 / 4 = -0.625, mean baseline 0
  // average win rate (0.625 + 0.375) / 2 = 0.5
  const SourcesSummary s = summarize_sources({{"rm", {1, 2, 3, 4}, {0, 2, 5, 1}},
                                              {"rm-star", {-1, -2, 0.5, 0}, {0, 0, 0, 0}}});
  ASSERT_EQ(s.sources.size(), 2u);
  EXPECT_EQ(s.sources[0].name, "rm");
  EXPECT_DOUBLE_EQ(s.sources[0].mean_policy_reward, 2.5);
  EXPECT_DOUBLE_EQ(s.sources[0].mean_baseline_reward, 2.0);
  EXPECT_DOUBLE_EQ(s.sources[0].win_rate.rate, 0.625);
  EXPECT_EQ(s.sources[1].name, "rm-star");
  EXPECT_DOUBLE_EQ(s.sources[1].mean_policy_reward, -0.625);
  EXPECT_DOUBLE_EQ(s.sources[1].mean_baseline_reward, 0.0);
  EXPECT_EQ(s.sources[1].win_rate.losses, 2u);
  EXPECT_DOUBLE_EQ(s.sources[1].win_rate.rate, 0.375);
  EXPECT_DOUBLE_EQ(s.average_win_rate, 0.5);
}

TEST(EvalSources, ErrorsNameTheSource) {
  EXPECT_THAT(error_message<lire::DataError>([] { summarize_sources({}); }),
              HasSubstr("none given"));
  EXPECT_THAT(error_message<lire::DataError>([] {
                summarize_sources({{"rm", {1}, {0}}, {"rm", {1}, {0}}});
              }),
              HasSubstr("'rm' appears more than once"));
  EXPECT_THAT(error_message<lire::DataError>([] { summarize_sources({{"", {1}, {0}}}); }),
              HasSubstr("empty name"));
  EXPECT_THAT(error_message<lire::DataError>([] {
                summarize_sources({{"rm", {1, 2}, {0, 0}}, {"rm-star", {1}, {0}}});
              }),
              HasSubstr("reward source 'rm-star' scores 1 prompts but 'rm' scores 2"));
  EXPECT_THAT(error_message<lire::DataError>([] {
                summarize_sources({{"rm", {1, 2}, {0, 0}}, {"rm-star", {1, kNaN}, {0, 0}}});
              }),
              HasSubstr("reward source 'rm-star': policy rewards: value at index 1 is nan"));
  EXPECT_THAT(error_message<lire::DataError>([] { mean({}, "rewards"); }),
              HasSubstr("rewards: no values"));
}

// ------------------------------------------------------------ negative flips

TEST(EvalNegativeFlips, FractionOfPromptsWhoseRewardDropped) {
  // prompt:          0     1     2     3     4
  // policy:          1     0.5   2     -1    3
  // baseline model:  0.5   0.5   2.5   -0.5  1
  // change:          up    same  down  down  up  -> 2 drops (equal is not a drop)
  // rate = 2 / 5 = 0.4
  const std::vector<double> policy = {1, 0.5, 2, -1, 3};
  const std::vector<double> base = {0.5, 0.5, 2.5, -0.5, 1};
  const NegativeFlips f = negative_flip_rate(policy, base);
  EXPECT_EQ(f.flips, 2u);
  EXPECT_EQ(f.prompts, 5u);
  EXPECT_DOUBLE_EQ(f.rate, 0.4);
  // Against the same baseline with exact ties, the flips are the win rate's losses.
  EXPECT_EQ(win_rate(policy, base).losses, f.flips);
  EXPECT_DOUBLE_EQ(negative_flip_rate({1, 2}, {1, 2}).rate, 0.0);
  EXPECT_DOUBLE_EQ(negative_flip_rate({0, 1}, {1, 2}).rate, 1.0);
}

TEST(EvalNegativeFlips, RejectsBadTables) {
  EXPECT_THAT(error_message<lire::DataError>([] { negative_flip_rate({1}, {1, 2}); }),
              HasSubstr("negative flips: policy rewards has 1 values but baseline-model rewards has 2"));
  EXPECT_THAT(error_message<lire::DataError>([] { negative_flip_rate({1, -kInf}, {1, 2}); }),
              HasSubstr("negative flips: policy rewards: value at index 1 is -inf"));
  EXPECT_THAT(error_message<lire::DataError>([] { negative_flip_rate({}, {}); }),
              HasSubstr("expected at least one prompt"));
}

// ------------------------------------------------------------------------- KL

TEST(EvalKl, MeanLogRatioAndStandardError) {
  // log pi:     -10    -12    -9    -15
  // log pi_ref: -11    -12.5  -10   -14
  // diff:        1      0.5    1     -1     -> mean 1.5 / 4 = 0.375
  // deviations:  0.625  0.125  0.625 -1.375
  // squares:     0.390625 + 0.015625 + 0.390625 + 1.890625 = 2.6875
  // sample variance 2.6875 / 3, se = sqrt(2.6875 / 3) / sqrt(4) = 0.473242...
  const KlEstimate kl = sequence_kl({-10, -12, -9, -15}, {-11, -12.5, -10, -14});
  EXPECT_EQ(kl.samples, 4u);
  EXPECT_DOUBLE_EQ(kl.mean, 0.375);
  ASSERT_TRUE(kl.standard_error.has_value());
  EXPECT_NEAR(*kl.standard_error, std::sqrt(2.6875 / 3.0) / 2.0, 1e-12);
  EXPECT_NEAR(*kl.standard_error, 0.4732424, 1e-6);
}

TEST(EvalKl, IdenticalPoliciesAndASingleSample) {
  const KlEstimate same = sequence_kl({-3, -4, -5}, {-3, -4, -5});
  EXPECT_DOUBLE_EQ(same.mean, 0.0);
  EXPECT_DOUBLE_EQ(*same.standard_error, 0.0);
  // One sample: mean = -2 - (-3) = 1, no standard error.
  const KlEstimate one = sequence_kl({-2}, {-3});
  EXPECT_DOUBLE_EQ(one.mean, 1.0);
  EXPECT_FALSE(one.standard_error.has_value());
}

TEST(EvalKl, RejectsBadLogProbs) {
  EXPECT_THAT(error_message<lire::DataError>([] { sequence_kl({-1, -2}, {-1, -kInf}); }),
              HasSubstr("KL: reference log-probs: value at index 1 is -inf"));
  EXPECT_THAT(error_message<lire::DataError>([] { sequence_kl({-1, -2}, {-1}); }),
              HasSubstr("KL: policy log-probs has 2 values but reference log-probs has 1"));
  EXPECT_THAT(error_message<lire::DataError>([] { sequence_kl({}, {}); }),
              HasSubstr("expected at least one prompt"));
}

// ------------------------------------------------------------------- lengths

TEST(EvalLengths, OddCount) {
  // sorted {1, 3, 5, 7, 9}: mean 25 / 5 = 5, median = v[2] = 5,
  // p10: h = 4 * 0.1 = 0.4 -> 1 + 0.4 * (3 - 1) = 1.8,
  // p90: h = 4 * 0.9 = 3.6 -> 7 + 0.6 * (9 - 7) = 8.2
  const LengthStats s = length_statistics({5, 1, 9, 3, 7});
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.median, 5.0);
  EXPECT_NEAR(s.p10, 1.8, 1e-12);
  EXPECT_NEAR(s.p90, 8.2, 1e-12);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 9);
}

TEST(EvalLengths, EvenCountAndSingleResponse) {
  // sorted {1, 2, 3, 4}: mean 10 / 4 = 2.5, median h = 1.5 -> 2 + 0.5 = 2.5,
  // p10 h = 0.3 -> 1.3, p90 h = 2.7 -> 3.7
  const LengthStats s = length_statistics({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_NEAR(s.p10, 1.3, 1e-12);
  EXPECT_NEAR(s.p90, 3.7, 1e-12);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 4);
  const LengthStats one = length_statistics({0});
  EXPECT_EQ(one.count, 1u);
  EXPECT_DOUBLE_EQ(one.median, 0.0);
  EXPECT_DOUBLE_EQ(one.p90, 0.0);
}

TEST(EvalLengths, RejectsEmptyAndNegative) {
  EXPECT_THAT(error_message<lire::DataError>([] { length_statistics({}); }),
              HasSubstr("no responses"));
  EXPECT_THAT(error_message<lire::DataError>([] { length_statistics({3, -1}); }),
              HasSubstr("length at index 1 is -1"));
}

TEST(EvalQuantile, LinearInterpolation) {
  // {4, 1, 3, 2} sorted {1, 2, 3, 4}: p 0 -> 1, p 1 -> 4, p 0.25: h = 0.75 -> 1.75
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.25), 1.75);
  EXPECT_THAT(error_message<lire::Error>([] { quantile({1}, 1.5); }), HasSubstr("p must be in [0, 1]"));
  EXPECT_THAT(error_message<lire::DataError>([] { quantile({}, 0.5); }), HasSubstr("no values"));
  EXPECT_THAT(error_message<lire::DataError>([] { quantile({1, kNaN}, 0.5); }),
              HasSubstr("value at index 1 is nan"));
}

}  // namespace

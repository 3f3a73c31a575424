// The numbers lire-eval reports, computed from per-prompt score tables: win rate
// against a baseline (ties count 0.5) with a percentile-bootstrap confidence
// interval, the average win rate and mean reward over several reward sources,
// the negative-flip rate of LIRE appendix A.8, a sequence-level KL(pi || pi_ref)
// estimate, and response length statistics.
//
// No LibTorch: everything here is plain arithmetic over std::vector<double>, so
// it lives in lire_core and is tested on hand-made tables. Index i of every
// vector is prompt i (one policy response and one baseline response per
// prompt). Non-finite values, length mismatches and empty tables throw
// lire::DataError naming the table and index; bad options throw lire::Error.
// docs/evaluation.md ("How each number is computed") describes each formula.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lire::eval {

// ------------------------------------------------------------------ win rate

struct WinRateOptions {
  // A prompt is a tie when |policy - baseline| <= tie_tolerance. Default 0:
  // only exactly equal rewards tie. Must be finite and >= 0.
  double tie_tolerance = 0.0;
};

// The result of comparing the policy's response of one prompt with the baseline's.
enum class Outcome { kLoss, kTie, kWin };

// Outcome of one prompt: kWin when policy > baseline + tolerance, kLoss when
// policy < baseline - tolerance, else kTie. Both rewards must be finite.
Outcome compare_rewards(double policy, double baseline, const WinRateOptions& options = {});

struct WinRate {
  std::size_t wins = 0;    // prompts where the policy's reward is higher
  std::size_t ties = 0;    // prompts within the tie tolerance
  std::size_t losses = 0;  // prompts where the baseline's reward is higher
  std::size_t prompts = 0; // wins + ties + losses
  double rate = 0.0;       // (wins + 0.5 * ties) / prompts, in [0, 1]
};

// Win rate of `policy` against `baseline` rewards (equal lengths, >= 1 prompt,
// all finite).
WinRate win_rate(const std::vector<double>& policy, const std::vector<double>& baseline,
                 const WinRateOptions& options = {});

// ------------------------------------------------------- bootstrap interval

struct BootstrapOptions {
  std::size_t resamples = 1000;  // B: bootstrap resamples of the prompts (>= 1)
  double level = 0.95;           // confidence level, in (0, 1)
  std::uint64_t seed = 0;        // seeds std::mt19937_64; same seed, same interval
};

struct WinRateInterval {
  double estimate = 0.0;       // win rate of the full table (the point estimate)
  double lower = 0.0;          // (1 - level) / 2 quantile of the bootstrap win rates
  double upper = 0.0;          // (1 + level) / 2 quantile of the bootstrap win rates
  double level = 0.95;         // the confidence level used
  std::size_t resamples = 0;   // B used
};

// Percentile bootstrap over prompts: B times, draw n prompts with replacement
// (n = table size, uniform draws by rejection from std::mt19937_64, identical on
// every platform), compute the win rate of the resample; the interval is the
// pair of quantiles (linear interpolation, numpy's default) of those B rates.
// Deterministic for a seed. Same input checks as win_rate.
WinRateInterval bootstrap_win_rate(const std::vector<double>& policy,
                                   const std::vector<double>& baseline,
                                   const BootstrapOptions& options = {},
                                   const WinRateOptions& win_options = {});

// ------------------------------------------------- several reward sources

// One reward source's scores of the same prompts (e.g. "rm" and "rm-star").
struct SourceScores {
  std::string name;              // the source's name, as configured
  std::vector<double> policy;    // reward of the policy's response, per prompt
  std::vector<double> baseline;  // reward of the baseline's response, per prompt
};

struct SourceSummary {
  std::string name;                   // SourceScores::name
  double mean_policy_reward = 0.0;    // mean of policy rewards over prompts
  double mean_baseline_reward = 0.0;  // mean of baseline rewards over prompts
  WinRate win_rate;                   // policy against baseline under this source
};

struct SourcesSummary {
  std::vector<SourceSummary> sources;  // in the order given
  double average_win_rate = 0.0;       // unweighted mean of sources[s].win_rate.rate
};

// Per-source mean rewards and win rates, and their average. At least one
// source; names unique and non-empty; every source scores the same number of
// prompts. Errors name the source.
SourcesSummary summarize_sources(const std::vector<SourceScores>& sources,
                                 const WinRateOptions& options = {});

// Arithmetic mean of finite values (>= 1); `what` names the table in errors.
double mean(const std::vector<double>& values, const std::string& what);

// ------------------------------------------------------------ negative flips

struct NegativeFlips {
  std::size_t flips = 0;    // prompts where policy reward < baseline-model reward
  std::size_t prompts = 0;  // all prompts compared
  double rate = 0.0;        // flips / prompts
};

// Negative-flip rate, LIRE appendix A.8 ("Regression problem of the alignment
// algorithms", Figure 8; after Xie et al., 2021): the ratio of test prompts whose
// response reward *drops* after policy tuning compared with the baseline
// (pre-tuning) model's response to the same prompt. A drop is strict: equal
// rewards are not a flip, and there is no tolerance. `baseline_model` are the
// rewards of the baseline model's responses (not the human references).
NegativeFlips negative_flip_rate(const std::vector<double>& policy,
                                 const std::vector<double>& baseline_model);

// ------------------------------------------------------------------------- KL

struct KlEstimate {
  double mean = 0.0;                          // mean of log pi - log pi_ref over samples
  std::optional<double> standard_error;       // sample std (n - 1) / sqrt(n); unset when n < 2
  std::size_t samples = 0;                    // n
};

// Monte-Carlo estimate of the sequence-level KL(pi || pi_ref) from n responses
// y_i ~ pi(.|x_i): mean_i (log pi(y_i|x_i) - log pi_ref(y_i|x_i)), with the
// standard error of that mean. Both vectors hold sequence log-probs (sums over
// response tokens) of the same samples; equal lengths, >= 1, all finite. A
// single estimate can be negative; the expectation cannot.
KlEstimate sequence_kl(const std::vector<double>& policy_logps,
                       const std::vector<double>& reference_logps);

// ------------------------------------------------------------------- lengths

struct LengthStats {
  std::size_t count = 0;   // responses
  double mean = 0.0;       // arithmetic mean
  double median = 0.0;     // quantile 0.5 (mean of the middle two for even counts)
  double p10 = 0.0;        // quantile 0.1
  double p90 = 0.0;        // quantile 0.9
  std::int64_t min = 0;    // shortest
  std::int64_t max = 0;    // longest
};

// Length statistics of responses from their token (or character) counts:
// >= 1 count, none negative. Quantiles interpolate linearly (see quantile).
LengthStats length_statistics(const std::vector<std::int64_t>& lengths);

// The p-quantile (p in [0, 1]) of finite values (>= 1) with linear
// interpolation between order statistics (numpy's default, Hyndman-Fan type 7):
// sorted v, h = (n - 1) p, result v[floor h] + (h - floor h)(v[floor h + 1] - v[floor h]).
double quantile(std::vector<double> values, double p);

}  // namespace lire::eval

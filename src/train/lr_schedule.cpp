// Warmup + constant/linear/cosine learning-rate schedules (see lr_schedule.h).
#include "lire/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "lire/core/error.h"
#include "lire/core/suggest.h"

namespace lire::train {

namespace {
constexpr double kPi = 3.14159265358979323846;
} // namespace

const std::vector<std::string> &lr_schedule_kinds() {
  static const std::vector<std::string> kinds = {"constant", "cosine",
                                                 "linear"};
  return kinds;
}

void validate(const LrScheduleOptions &o) {
  const auto &kinds = lr_schedule_kinds();
  if (std::find(kinds.begin(), kinds.end(), o.kind) == kinds.end()) {
    throw ConfigError(str("train.lr_schedule: unknown schedule '", o.kind, "'",
                          did_you_mean(o.kind, kinds),
                          " (valid: ", join_sorted(kinds), ")"));
  }
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) {
    throw ConfigError(str("train.lr: must be a finite number > 0, got ", o.lr));
  }
  if (o.total_steps <= 0) {
    throw ConfigError(str("train.total_steps: the run must have at least one "
                          "optimizer step, got ",
                          o.total_steps));
  }
  if (o.warmup_steps < 0) {
    throw ConfigError(
        str("train.warmup_steps: must be >= 0, got ", o.warmup_steps));
  }
  if (o.warmup_steps > o.total_steps) {
    throw ConfigError(str("train.warmup_steps: ", o.warmup_steps,
                          " exceeds the run's ", o.total_steps,
                          " optimizer steps (train.total_steps)"));
  }
  if (!(o.min_lr_ratio >= 0.0 && o.min_lr_ratio <= 1.0)) {
    throw ConfigError(
        str("train.min_lr_ratio: must be in [0, 1], got ", o.min_lr_ratio));
  }
}

double lr_multiplier(const LrScheduleOptions &o, int64_t step) {
  validate(o);
  LIRE_CHECK(step >= 0, "lr_multiplier: step must be >= 0, got ", step);
  step = std::min(step, o.total_steps);
  if (step < o.warmup_steps) {
    return static_cast<double>(step) /
           static_cast<double>(std::max<int64_t>(1, o.warmup_steps));
  }
  if (o.kind == "constant")
    return 1.0;
  const double decay_steps =
      static_cast<double>(std::max<int64_t>(1, o.total_steps - o.warmup_steps));
  double factor = 0.0;
  if (o.kind == "linear") {
    factor =
        std::max(0.0, static_cast<double>(o.total_steps - step) / decay_steps);
  } else { // cosine, num_cycles = 0.5
    const double progress =
        static_cast<double>(step - o.warmup_steps) / decay_steps;
    factor = std::max(0.0, 0.5 * (1.0 + std::cos(kPi * progress)));
  }
  return o.min_lr_ratio + (1.0 - o.min_lr_ratio) * factor;
}

double lr_at(const LrScheduleOptions &o, int64_t step) {
  return o.lr * lr_multiplier(o, step);
}

int64_t resolve_warmup(int64_t warmup_steps, double warmup_ratio,
                       int64_t total_steps) {
  if (warmup_steps < 0)
    throw ConfigError(
        str("train.warmup_steps: must be >= 0, got ", warmup_steps));
  if (!(warmup_ratio >= 0.0 && warmup_ratio <= 1.0)) {
    throw ConfigError(
        str("train.warmup_ratio: must be in [0, 1], got ", warmup_ratio));
  }
  if (warmup_steps > 0 && warmup_ratio > 0.0) {
    throw ConfigError(str("train.warmup_steps (", warmup_steps,
                          ") and train.warmup_ratio (", warmup_ratio,
                          ") are both set; set only one"));
  }
  if (total_steps <= 0) {
    throw ConfigError(str("train.total_steps: the run must have at least one "
                          "optimizer step, got ",
                          total_steps));
  }
  if (warmup_steps > 0)
    return warmup_steps;
  return static_cast<int64_t>(
      std::ceil(warmup_ratio * static_cast<double>(total_steps)));
}

} // namespace lire::train

// Learning-rate schedules with linear warmup, exactly as Hugging Face
// transformers' get_{constant,linear,cosine}_schedule_with_warmup (cosine with
// num_cycles 0.5, and the min_lr_rate of
// get_cosine_with_min_lr_schedule_with_warmup).
//
// The learning rate used for optimizer step `step` (counted from 0, as HF's
// LambdaLR where the first optimizer.step() uses lr_lambda(0)) is
// lr * multiplier(step):
//   step < warmup:   step / max(1, warmup)                       (0 at step 0)
//   then constant:   1
//        linear:     r + (1 - r) * max(0, (total - step) / max(1, total -
//        warmup)) cosine:     r + (1 - r) * max(0, 0.5 * (1 + cos(pi *
//        progress)))
//                    progress = (step - warmup) / max(1, total - warmup)
// with r = min_lr_ratio (0 gives HF's plain schedules). Steps past total_steps
// are treated as total_steps (HF's cosine would rise again there).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lire::train {

struct LrScheduleOptions {
  // Schedule after warmup: "constant", "linear" or "cosine"
  // (train.lr_schedule).
  std::string kind = "cosine";
  // Peak learning rate, reached at the end of warmup (train.lr); must be > 0.
  double lr = 1e-5;
  // Optimizer steps of linear warmup from 0 to lr (train.warmup_steps); 0 =
  // none.
  int64_t warmup_steps = 0;
  // Total optimizer steps of the run (train.total_steps); must be > 0.
  int64_t total_steps = 1;
  // Floor of the decay as a fraction of lr (train.min_lr_ratio), in [0, 1];
  // used by linear and cosine, ignored by constant.
  double min_lr_ratio = 0.0;
};

// The schedule kinds lr_at accepts.
const std::vector<std::string> &lr_schedule_kinds();

// Throws lire::ConfigError naming the train.* key when an option is invalid.
void validate(const LrScheduleOptions &options);

// The multiplier of options.lr for optimizer step `step` (>= 0); validates.
double lr_multiplier(const LrScheduleOptions &options, int64_t step);

// The learning rate for optimizer step `step` (>= 0): lr * lr_multiplier.
double lr_at(const LrScheduleOptions &options, int64_t step);

// Warmup steps from train.warmup_steps or train.warmup_ratio (HF
// get_warmup_steps: ceil(ratio * total_steps)). Setting both (> 0) is a
// ConfigError, as are negative values and a ratio above 1.
int64_t resolve_warmup(int64_t warmup_steps, double warmup_ratio,
                       int64_t total_steps);

} // namespace lire::train

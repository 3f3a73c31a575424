// lire-train's job: fine-tune a causal LM (LoRA or full) with any registered
// loss on candidate lists, with evaluation, checkpoints and exact resume.
//
// One optimizer step consumes batch_size * grad_accum lists in grad_accum
// micro-batches. Its loss is the loss of the whole effective batch with RAX
// semantics: the micro-batches' numerators are summed and divided by the
// denominator of the whole step (known before any forward: it depends only on
// masks and labels), so grad_accum 2 x batch b gives the gradient of
// grad_accum 1 x batch 2b, not a mean of means. Then: global-norm clipping,
// the schedule's learning rate, AdamW. A non-finite log-prob, loss or gradient
// skips the step (counted); train.max_nonfinite_steps in a row stop the run.
//
// The run directory layout, metrics keys, reference modes and resume rules are
// in docs/training.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "lire/config/config.h"

namespace lire::train {

struct TrainJob {
  config::Config config;
  std::string output;           // run directory
  bool resume = false;          // continue from the newest checkpoint in `output`, or start fresh
  std::string resume_from;      // continue from this checkpoint folder ("" = see `resume`)
  // A fresh run whose trainable parameters start from this checkpoint folder's
  // adapter/ (LoRA) or model/ (full) instead of a fresh LoRA or the base model;
  // optimizer, schedule and counters start anew. Evolve steps after the first
  // start from the previous step's last checkpoint. Ignored when resuming.
  std::string init_from;
  std::string command_line;     // recorded in run.json
  bool progress = true;         // progress bar on a terminal
};

struct TrainResult {
  std::int64_t steps = 0;             // optimizer steps of the run (total)
  std::int64_t nonfinite_steps = 0;   // of which skipped
  std::map<std::string, double> eval; // the last evaluation's metrics (eval/...)
  std::string final_dir;              // <output>/final
  double lists_per_s = 0.0;           // training throughput over the whole run
  double tokens_per_s = 0.0;
};

// Throws lire::Error / ConfigError / DataError with a message naming the file,
// line, key or tensor at fault; nothing already saved is left half-written.
// With evolve.steps > 0 the job is LIRE's Algorithm 1 (train/evolve.h).
TrainResult train(const TrainJob& job);

// One training run on data.train, whatever the evolve section says.
TrainResult train_once(const TrainJob& job);

}  // namespace lire::train

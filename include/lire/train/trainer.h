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
#include <stdexcept>
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

// Stopping on request (docs/training.md, "Stopping, crashes and requeueing").
// request_stop(signal) asks every train() of this process to stop at the next
// step boundary: the run saves the checkpoint of the step it reached (the
// normal atomic save; with several ranks, they all stop at the same step,
// rank 0 saves, and every rank waits for that save) and throws Stopped. It
// only stores `signal` in a volatile std::sig_atomic_t, so a signal handler
// may call it (lire-train's SIGTERM/SIGINT handler does); later requests are
// ignored while one is pending. clear_stop_request() forgets it.
void request_stop(int signal) noexcept;
void clear_stop_request() noexcept;
int stop_requested() noexcept;  // the pending request's signal, 0 = none

class Stopped : public std::runtime_error {
 public:
  Stopped(int signal, std::int64_t step, const std::string& checkpoint);
  int signal() const { return signal_; }
  std::int64_t step() const { return step_; }
  const std::string& checkpoint() const { return checkpoint_; }

 private:
  int signal_;
  std::int64_t step_;
  std::string checkpoint_;
};

// lire-train's exit status after a Stopped: 128 + signal (143 for SIGTERM,
// 130 for SIGINT), the status a job killed by that signal reports, so that a
// scheduler or wrapper that requeues killed jobs requeues this one the same
// way; the same command with --resume continues the run.
inline int stopped_exit_status(int signal) { return 128 + signal; }

// Throws lire::Error / ConfigError / DataError with a message naming the file,
// line, key or tensor at fault; nothing already saved is left half-written.
// Throws Stopped after a request_stop() (above).
// With evolve.steps > 0 the job is LIRE's Algorithm 1 (train/evolve.h).
TrainResult train(const TrainJob& job);

// One training run on data.train, whatever the evolve section says.
TrainResult train_once(const TrainJob& job);

}  // namespace lire::train

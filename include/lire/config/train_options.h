// The `train`, `eval` and `output` config sections of lire-train
// (docs/config.md lists every key; docs/training.md explains them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lire::config {

class SectionReader;

struct TrainOptions {
  // Candidate lists in one micro-batch (one forward/backward).
  std::int64_t batch_size = 8;
  // Micro-batches per optimizer step; the effective batch is batch_size * grad_accum lists.
  std::int64_t grad_accum = 1;
  // Passes over the training lists (ignored when max_steps > 0).
  std::int64_t epochs = 1;
  // Optimizer steps of the run; 0 = as many as `epochs` take.
  std::int64_t max_steps = 0;

  // Peak learning rate.
  double lr = 1e-5;
  // Schedule after warmup: constant | linear | cosine (HF's *_schedule_with_warmup).
  std::string lr_schedule = "cosine";
  // Linear warmup in optimizer steps, or as a share of the run (not both).
  std::int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;
  // Floor of linear/cosine decay as a share of lr.
  double min_lr_ratio = 0.0;
  // AdamW (decoupled decay; biases, norms and vectors get none).
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  // Global gradient-norm clipping; 0 = none.
  double max_grad_norm = 1.0;

  // Reference log-probs: auto | adapter-off | frozen-copy | precomputed | none.
  std::string reference = "auto";
  // Sequences (prompt + one response) per forward pass; bounds activation memory.
  std::int64_t max_sequences = 16;
  // Activation (gradient) checkpointing: each decoder layer keeps only its
  // input and recomputes its activations in the backward pass.
  bool checkpointing = false;
  // Non-finite steps in a row that stop the run.
  std::int64_t max_nonfinite_steps = 5;
  // A console/metrics line every this many optimizer steps.
  std::int64_t log_every = 1;
};

struct EvalOptions {
  // Evaluate every this many optimizer steps; 0 = only at the start and the end.
  std::int64_t every = 0;
  // Evaluate before the first update (step 0).
  bool at_start = true;
  // Lists per evaluation batch.
  std::int64_t batch_size = 8;
  // Evaluate on at most this many lists (the first ones); 0 = all.
  std::int64_t max_lists = 0;

  // lire-eval (docs/evaluation.md):
  // Bootstrap resamples of the prompts for the win-rate confidence intervals.
  std::int64_t bootstrap = 1000;
  // Confidence level of those intervals, in (0, 1).
  double confidence = 0.95;
  // Rewards within this distance of each other are a tie (counts 0.5).
  double tie_tolerance = 0.0;
  // Reward sources (names in the rewards section) to score with; empty = all of them.
  std::vector<std::string> rewards;
};

struct OutputOptions {
  // Save a checkpoint every this many optimizer steps; 0 = only at the end.
  std::int64_t save_every = 0;
  // Keep the newest this many checkpoints (and the best one); 0 = keep all.
  std::int64_t keep_last = 2;
  // Also keep the checkpoint with the best value of this eval metric (e.g.
  // eval/pair_accuracy); "" = none.
  std::string keep_best;
  // max | min | auto (min for eval/loss, max for every other metric).
  std::string keep_best_mode = "auto";
  // Also write final/merged/: the base model with the adapter folded in (LoRA runs).
  bool merge = false;
  // Dtype of exported weights (final/model, final/merged): auto (the source's) | fp32 | bf16 | fp16.
  std::string dtype = "auto";
};

TrainOptions read_train_options(SectionReader& reader);
EvalOptions read_eval_options(SectionReader& reader);
OutputOptions read_output_options(SectionReader& reader);

}  // namespace lire::config

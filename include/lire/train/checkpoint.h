// The state of a training run that a checkpoint must carry besides weights and
// optimizer (Marian's TrainingState): step and epoch counters, the data
// position, throughput totals, the non-finite step counters and the best
// evaluation so far; plus the run directory's checkpoint bookkeeping.
//
// Layout of a run directory (docs/training.md):
//   checkpoints/step-N/   one complete checkpoint: adapter/ (PEFT) or model/
//                         (HF folder), optimizer.pt, rng.safetensors,
//                         trainer_state.json, config.yaml
//   checkpoints/step-N.tmp.<pid>  a checkpoint being written (renamed when
//                         complete, removed when found stale), or one being
//                         deleted (renamed there first)
// A folder is a checkpoint only when its trainer_state.json exists: it is
// written last inside the temporary folder, every file is fsynced, and the
// folder is renamed into place, so an interrupted save (SIGKILL, a full disk)
// never leaves a half checkpoint behind; a failed save throws and leaves the
// older checkpoints as they were. docs/robustness.md#crash-safety.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace torch::optim {
class Optimizer;
}

namespace lire::train {

struct TrainerState {
  std::int64_t step = 0;            // optimizer steps done (skipped non-finite ones included)
  std::int64_t epoch = 0;           // current epoch (0-based)
  std::int64_t position = 0;        // lists of the current epoch already consumed
  std::int64_t lists_seen = 0;      // lists trained on since the start of the run
  std::int64_t tokens_seen = 0;     // tokens (prompt + response per sequence) trained on
  std::int64_t nonfinite_steps = 0;        // steps skipped for a non-finite loss or gradient
  std::int64_t nonfinite_in_a_row = 0;     // the current run of such steps
  double train_seconds = 0.0;       // time spent in training steps (not eval or saving)
  std::string best_metric;          // output.keep_best ("" = none)
  double best_value = 0.0;          // its best value so far (valid when best_step >= 0)
  std::int64_t best_step = -1;      // the step of that checkpoint; -1 = none yet
  std::int64_t last_eval_step = -1; // the last step evaluated at (-1 = never)

  nlohmann::json to_json() const;
  // Throws lire::Error naming `where` for a missing or mistyped field.
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

// The current time as UTC ISO 8601 ("2026-11-22T12:00:00Z"), for run.json.
std::string utc_timestamp();

// "<run>/checkpoints/step-<step>".
std::string checkpoint_path(const std::string& run_dir, std::int64_t step);

// Complete checkpoints of a run directory as (step, path), by increasing step.
std::vector<std::pair<std::int64_t, std::string>> list_checkpoints(const std::string& run_dir);

// The newest complete checkpoint, "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);

// Writes a checkpoint: `fill` writes everything into a fresh temporary folder
// under <run>/checkpoints, then the folder is renamed to step-<step> (replacing
// an older folder of that step) and the checkpoints folder is fsynced. Stale
// temporary folders are removed first. A failure throws lire::Error naming the
// file and removes the temporary folder.
//
// Test hook: the environment variable LIRE_TEST_CHECKPOINT_PAUSE_MS=N sleeps N
// ms before `fill`, before the rename and, when pruning, between the rename of
// an old checkpoint and its removal, so that tests/apps/crash_test.sh can kill
// a run inside those windows. Not meant for real runs.
void write_checkpoint(const std::string& run_dir, std::int64_t step,
                      const std::function<void(const std::string& folder)>& fill);

// Deletes all but the newest `keep_last` checkpoints (0 = keep all), never the
// one of step `keep_step` (the best; -1 = none). Each is first renamed to a
// temporary name, so that an interrupted deletion leaves no partial checkpoint.
void prune_checkpoints(const std::string& run_dir, std::int64_t keep_last, std::int64_t keep_step);

// Checks that the existing folder `dir` takes new files: creates, writes,
// fsyncs and removes a probe file there. Throws lire::Error
// "<what> <dir> is not writable: ..." with the system's reason (read-only file
// system, permission denied, no space left on device).
void check_writable(const std::string& dir, const std::string& what);

// torch::save(optimizer, path) with checked writes: the file is written
// through a file descriptor, every short write or failed fsync/close throws
// lire::Error naming `path` and the system's reason (ENOSPC, EFBIG, EIO), and
// the file is fsynced. (LibTorch's own file writer goes through a std::ofstream
// whose late failures can go unnoticed.)
void save_optimizer(torch::optim::Optimizer& optimizer, const std::string& path);

// The state of LibTorch's default generators (CPU, and every CUDA device that
// has been initialised), saved to / restored from a safetensors file, so that
// dropout continues exactly after a resume.
// `extra` adds other ranks' states ("rank<r>.cpu", "rank<r>.cuda"), gathered
// by the trainer: each rank's dropout draws its own stream.
void save_rng_state(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& extra = {});
// Rank r > 0 restores its own "rank<r>.*" states when the file has them (a
// checkpoint of a run with fewer ranks has not: rank 0's are used, as before).
void load_rng_state(const std::string& path, int rank = 0, const torch::Device& device = torch::kCPU);
// The state of the default generator of `device` (CPU or one CUDA device).
torch::Tensor generator_state(const torch::Device& device);

}  // namespace lire::train

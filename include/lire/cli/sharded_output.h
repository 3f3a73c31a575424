// The output of a streaming command (lire-sample, lire-score) in a
// multi-process job launched by torchrun or srun (core/dist_env.h): rank r of
// W takes the input records i with i % W == r and writes them, in order, to
// its shard "<output>.rank<r>-of<W>" (through PartialJsonl, so each shard is
// resumable on its own); at the end every rank commits its shard and rank 0
// interleaves the shards back into input order as <output>, written
// atomically, and removes them. One process (no launcher variables) writes
// <output> directly, as before.
//
// Each rank uses GPU LOCAL_RANK when the device is CUDA (rank_device).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lire/cli/jsonl_output.h"
#include "lire/core/dist_env.h"

namespace lire::train {
class ProcessGroup;
}

namespace lire::cli {

class ShardedOutput {
 public:
  // Joins the job (runtime.dist_timeout_s bounds every wait) when the
  // environment describes one, and opens this rank's output.
  ShardedOutput(const std::string& output, bool resume, double dist_timeout_s);
  ~ShardedOutput();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const DistEnv& env() const { return env_; }
  // Whether input record `index` (0-based) is this rank's.
  bool mine(std::int64_t index) const { return index % env_.world_size == env_.rank; }
  // Whether record `index` (this rank's) was written by an interrupted run being resumed.
  bool done(std::int64_t index) const { return index / env_.world_size < out_->done(); }
  PartialJsonl& out() { return *out_; }

  // Commits this rank's records; in a job, waits for every rank and rank 0
  // merges the shards into the output. `records` is the number of input records.
  void commit(std::int64_t records);
  // Sums of per-rank counts (for the summary line rank 0 prints).
  std::vector<double> sum(const std::vector<double>& values);

 private:
  std::string output_;
  DistEnv env_;
  std::unique_ptr<train::ProcessGroup> group_;
  std::unique_ptr<PartialJsonl> out_;
};

// The shard file of rank r of W.
std::string shard_path(const std::string& output, int rank, int world_size);

// `device` (runtime.device) for this rank: CUDA devices become cuda:LOCAL_RANK
// in a multi-process job; anything else is returned as is.
std::string rank_device(const std::string& device, const DistEnv& env);

}  // namespace lire::cli

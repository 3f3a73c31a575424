// The processes of a data-parallel job as torch's c10d sees them: a TCPStore
// rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 serves it) and a process
// group over it, ProcessGroupGloo for CPU tensors (ProcessGroupNCCL for CUDA
// tensors where the LibTorch build has it). No transport of lire's own.
//
// Every collective waits at most `timeout_s` (runtime.dist_timeout_s): a rank
// that died or hangs makes the others fail with a DistributedError naming the
// operation and the timeout, instead of blocking forever.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "lire/core/dist_env.h"
#include "lire/core/error.h"

namespace lire::train {

class DistributedError : public Error {
 public:
  using Error::Error;
};

class ProcessGroup {
 public:
  // Joins the job described by `env` (world_size > 1). `device` picks the
  // backend: Gloo for CPU, NCCL for CUDA. Throws DistributedError when the
  // rendezvous does not complete within timeout_s.
  static std::unique_ptr<ProcessGroup> connect(const DistEnv& env, double timeout_s, const torch::Device& device);
  ~ProcessGroup();

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& backend() const { return backend_; }

  // Sums `tensors` over the ranks in place. Tensors are packed into flat
  // buckets of at most bucket_bytes (one dtype and device each) so that many
  // small gradients cost few collectives; each bucket is reduced and copied back.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, std::int64_t bucket_bytes = 25 << 20);
  // Sums (or takes the minimum of) float64 values over the ranks. Collectives
  // pair up by order: every rank must make the same calls with the same
  // number of values (an empty list is no collective at all).
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  double all_reduce_min(double value);
  // Waits until every rank got here.
  void barrier();

  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

 private:
  struct State;
  ProcessGroup(std::unique_ptr<State> state, int rank, int size, std::string backend, double timeout_s);
  void reduce(std::vector<torch::Tensor>& flat, const char* what, bool minimum = false);

  std::unique_ptr<State> state_;
  int rank_, size_;
  std::string backend_;
  double timeout_s_;
};

}  // namespace lire::train

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
#include <functional>
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
  std::vector<double> all_reduce_min(const std::vector<double>& values);
  // Starts summing one tensor over the ranks in place and returns at once;
  // calling the returned function waits for the sum (and throws the
  // DistributedError of the blocking calls). Collectives started this way pair
  // up across ranks by the order in which they were started.
  std::function<void()> start_sum(torch::Tensor tensor, const char* what);
  // Waits until every rank got here.
  void barrier();

  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

 private:
  struct State;
  ProcessGroup(std::unique_ptr<State> state, int rank, int size, std::string backend, double timeout_s);
  // Starts an all-reduce of `flat` in place; the returned function waits for it.
  std::function<void()> start(std::vector<torch::Tensor> flat, const char* what, bool minimum);
  void reduce(std::vector<torch::Tensor>& flat, const char* what, bool minimum = false);
  [[noreturn]] void fail(const char* what, const std::exception& e) const;

  std::unique_ptr<State> state_;
  int rank_, size_;
  std::string backend_;
  double timeout_s_;
};

// Sums the gradients of `params` over the ranks while backward still runs, as
// torch's DistributedDataParallel does. The parameters, in reverse order (the
// order backward tends to produce them), are packed into flat buckets of at
// most bucket_bytes of one dtype and device. A hook on each parameter copies
// its gradient (plus what earlier micro-steps accumulated in .grad) into its
// bucket during an armed backward; a bucket whose gradients are all in starts
// its all-reduce at once, but only after every bucket before it, so that every
// rank starts the same collectives in the same order whatever order its own
// backward ran in.
//
// Every rank calls finish() once per step, armed or not: it starts the buckets
// not yet started (a parameter without a gradient this backward contributes
// .grad, or zeros) and waits for all. It returns false when some parameter's
// hook fired more than once (a reentrant activation checkpoint runs one
// backward per segment, so a gradient can arrive in parts after its bucket
// left): the sums are then incomplete, and the caller must agree with the
// other ranks (the result of finish() all-reduced by minimum) and reduce the
// untouched .grad tensors after backward instead. commit() writes the sums
// into .grad.
class GradientReducer {
 public:
  GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> params, std::int64_t bucket_bytes = 25 << 20);
  ~GradientReducer();
  // The next backward produces the step's final gradients.
  void arm();
  bool finish();
  void commit();
  std::size_t buckets() const;
  // How many buckets the last armed backward started before finish() (for tests and logs).
  std::size_t started_in_backward() const;

  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lire::train

// c10d process groups (see the header).
#include "lire/train/process_group.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>

#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace lire::train {

struct ProcessGroup::State {
  torch::Device device{torch::kCPU};  // where reduced values live (the backend's device)
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
};

namespace {

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

// The first line of a c10d message (they can carry a C++ stack trace).
std::string first_line(const std::string& message) { return message.substr(0, message.find('\n')); }

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0; }

// The Gloo transport device: the interface GLOO_SOCKET_IFNAME names (as torch
// does), loopback for a job on this machine, else this host's address.
std::shared_ptr<::gloo::transport::Device> gloo_device(const DistEnv& env) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (is_loopback(env.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

ProcessGroup::ProcessGroup(std::unique_ptr<State> state, int rank, int size, std::string backend, double timeout_s)
    : state_(std::move(state)), rank_(rank), size_(size), backend_(std::move(backend)), timeout_s_(timeout_s) {}

ProcessGroup::~ProcessGroup() = default;

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const DistEnv& env, double timeout_s, const torch::Device& device) {
  LIRE_CHECK(timeout_s > 0, "runtime.dist_timeout_s must be > 0");
  auto state = std::make_unique<State>();
  state->device = device;
  std::string backend;
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = to_ms(timeout_s);
    state->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = to_ms(timeout_s);
      state->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(state->store, env.rank, env.world_size, options);
      backend = "nccl";
#else
      throw DistributedError("this LibTorch build has no NCCL process group (USE_C10D_NCCL); CUDA tensors cannot "
                             "be reduced across processes");
#endif
    } else {
      auto options = c10d::ProcessGroupGloo::Options::create(to_ms(timeout_s));
      options->devices.push_back(gloo_device(env));
      options->threads = 2;
      state->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(state->store, env.rank, env.world_size, options);
      backend = "gloo";
    }
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError(str("rank ", env.rank, " of ", env.world_size, ": the rendezvous at ", env.master_addr, ":",
                               env.master_port, " failed within runtime.dist_timeout_s = ", timeout_s, " s: ",
                               first_line(e.what())));
  }
  spdlog::info("rank {} of {} (local rank {}, {} via {}:{})", env.rank, env.world_size, env.local_rank, backend,
               env.master_addr, env.master_port);
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(state), env.rank, env.world_size, backend, timeout_s));
}

void ProcessGroup::reduce(std::vector<torch::Tensor>& flat, const char* what, bool minimum) {
  c10d::AllreduceOptions options;
  options.reduceOp = minimum ? c10d::ReduceOp::MIN : c10d::ReduceOp::SUM;
  options.timeout = to_ms(timeout_s_);
  try {
    c10::intrusive_ptr<c10d::Work> work;
#ifdef USE_C10D_NCCL
    if (state_->nccl) work = state_->nccl->allreduce(flat, options);
#endif
    if (state_->gloo) work = state_->gloo->allreduce(flat, options);
    work->wait(to_ms(timeout_s_));
  } catch (const std::exception& e) {
    throw DistributedError(str("rank ", rank_, " of ", size_, ": ", what, " failed; another rank died or did not "
                               "join within runtime.dist_timeout_s = ", timeout_s_, " s (", first_line(e.what()), ")"));
  }
}

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors, std::int64_t bucket_bytes) {
  LIRE_CHECK(bucket_bytes > 0, "all_reduce_sum: bucket_bytes must be > 0");
  // Buckets of consecutive tensors of one dtype and device.
  std::size_t i = 0;
  while (i < tensors.size()) {
    LIRE_CHECK(tensors[i].defined(), "all_reduce_sum: tensor ", i, " is undefined");
    const auto options = tensors[i].options();
    std::vector<std::size_t> members;
    std::int64_t bytes = 0;
    for (; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      LIRE_CHECK(t.defined(), "all_reduce_sum: tensor ", i, " is undefined");
      if (t.scalar_type() != options.dtype().toScalarType() || t.device() != options.device()) break;
      const std::int64_t size = t.numel() * static_cast<std::int64_t>(t.element_size());
      if (!members.empty() && bytes + size > bucket_bytes) break;
      members.push_back(i);
      bytes += size;
    }
    std::vector<torch::Tensor> views;
    for (auto m : members) views.push_back(tensors[m].reshape({-1}));
    std::vector<torch::Tensor> flat = {torch::cat(views)};
    reduce(flat, "all-reduce of gradients");
    std::int64_t offset = 0;
    for (auto m : members) {
      const auto n = tensors[m].numel();
      tensors[m].copy_(flat[0].narrow(0, offset, n).view_as(tensors[m]));
      offset += n;
    }
  }
}

std::vector<double> ProcessGroup::all_reduce_sum(const std::vector<double>& values) {
  if (values.empty()) return {};
  std::vector<torch::Tensor> flat = {torch::tensor(values, torch::kFloat64).to(state_->device)};
  reduce(flat, "all-reduce of values");
  const auto cpu = flat[0].cpu();
  return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
}

double ProcessGroup::all_reduce_min(double value) {
  std::vector<torch::Tensor> flat = {torch::tensor({value}, torch::kFloat64).to(state_->device)};
  reduce(flat, "all-reduce (min)", /*minimum=*/true);
  return flat[0].item<double>();
}

void ProcessGroup::barrier() {
  // An all-reduce of one value: waits like a barrier, with the same timeout and error.
  all_reduce_sum(std::vector<double>{0.0});
}

}  // namespace lire::train

// c10d process groups (see the header).
#include "lire/train/process_group.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include "lire/core/torch_compat.h"
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
    try {
      state->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    } catch (const std::exception& e) {
      // "use_libuv was requested but PyTorch was build without libuv support"
      if (std::string(e.what()).find("libuv") == std::string::npos ||
          !compat::tcp_store_without_libuv(store_options))
        throw;
      state->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    }
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

void ProcessGroup::fail(const char* what, const std::exception& e) const {
  throw DistributedError(str("rank ", rank_, " of ", size_, ": ", what, " failed; another rank died or did not "
                             "join within runtime.dist_timeout_s = ", timeout_s_, " s (", first_line(e.what()), ")"));
}

std::function<void()> ProcessGroup::start(std::vector<torch::Tensor> flat, const char* what, bool minimum) {
  c10d::AllreduceOptions options;
  options.reduceOp = minimum ? c10d::ReduceOp::MIN : c10d::ReduceOp::SUM;
  options.timeout = to_ms(timeout_s_);
  c10::intrusive_ptr<c10d::Work> work;
  try {
#ifdef USE_C10D_NCCL
    if (state_->nccl) work = state_->nccl->allreduce(flat, options);
#endif
    if (state_->gloo) work = state_->gloo->allreduce(flat, options);
  } catch (const std::exception& e) {
    fail(what, e);
  }
  return [this, work, what] {
    try {
      work->wait(to_ms(timeout_s_));
    } catch (const std::exception& e) {
      fail(what, e);
    }
  };
}

void ProcessGroup::reduce(std::vector<torch::Tensor>& flat, const char* what, bool minimum) {
  start(flat, what, minimum)();  // in place: `flat`'s tensors share their storage with the copies started
}

std::function<void()> ProcessGroup::start_sum(torch::Tensor tensor, const char* what) {
  return start({std::move(tensor)}, what, /*minimum=*/false);
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

double ProcessGroup::all_reduce_min(double value) { return all_reduce_min(std::vector<double>{value})[0]; }

std::vector<double> ProcessGroup::all_reduce_min(const std::vector<double>& values) {
  if (values.empty()) return {};
  std::vector<torch::Tensor> flat = {torch::tensor(values, torch::kFloat64).to(state_->device)};
  reduce(flat, "all-reduce (min)", /*minimum=*/true);
  const auto cpu = flat[0].cpu();
  return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
}

void ProcessGroup::barrier() {
  // An all-reduce of one value: waits like a barrier, with the same timeout and error.
  all_reduce_sum(std::vector<double>{0.0});
}

// ------------------------------------------------------------ GradientReducer

struct GradientReducer::Impl {
  struct Bucket {
    torch::Tensor flat;
    std::vector<std::size_t> members;  // indices into params
    std::size_t pending = 0;           // members whose gradient has not arrived
  };

  ProcessGroup& group;
  std::vector<torch::Tensor> params;
  std::vector<Bucket> buckets;
  std::vector<std::size_t> bucket_of;
  std::vector<std::int64_t> offset_of;
  std::vector<char> arrived;
  std::vector<unsigned> hooks;
  std::vector<std::function<void()>> waits;
  std::size_t next = 0;  // the next bucket to start
  std::size_t started_in_backward = 0;
  bool armed = false, twice = false;
  std::mutex mutex;

  Impl(ProcessGroup& g, std::vector<torch::Tensor> p) : group(g), params(std::move(p)) {}

  torch::Tensor slot(std::size_t p) {
    return buckets[bucket_of[p]].flat.narrow(0, offset_of[p], params[p].numel()).view(params[p].sizes());
  }

  void reset() {
    std::fill(arrived.begin(), arrived.end(), 0);
    for (auto& b : buckets) b.pending = b.members.size();
    waits.clear();
    next = started_in_backward = 0;
    twice = false;
  }

  // Starts every bucket that is complete and has all earlier buckets started.
  std::size_t start_ready() {
    const auto before = next;
    for (; next < buckets.size() && buckets[next].pending == 0; ++next)
      waits.push_back(group.start_sum(buckets[next].flat, "all-reduce of gradients"));
    return next - before;
  }

  // `grad` is what backward produced for params[p]; .grad still holds the
  // earlier micro-steps' sum (the accumulation happens after this hook).
  void arrive(std::size_t p, const torch::Tensor& grad) {
    auto s = slot(p);
    const auto& acc = params[p].grad();
    if (acc.defined() && grad.defined())
      torch::add_out(s, acc, grad);
    else if (grad.defined())
      s.copy_(grad);
    else if (acc.defined())
      s.copy_(acc);
    else
      s.zero_();
    arrived[p] = 1;
    --buckets[bucket_of[p]].pending;
  }

  void on_gradient(std::size_t p, const torch::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed) return;
    if (arrived[p]) {  // a second part of this gradient: its bucket may have left already
      twice = true;
      return;
    }
    arrive(p, grad);
    started_in_backward += start_ready();
  }
};

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> params, std::int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>(group, std::move(params))) {
  LIRE_CHECK(bucket_bytes > 0, "GradientReducer: bucket_bytes must be > 0");
  auto& m = *impl_;
  const auto n = m.params.size();
  m.bucket_of.resize(n);
  m.offset_of.resize(n);
  m.arrived.assign(n, 0);
  // Reverse order, one dtype and device a bucket, at most bucket_bytes (or one tensor).
  std::int64_t bytes = 0, elements = 0;
  for (std::size_t k = n; k-- > 0;) {
    const auto& p = m.params[k];
    LIRE_CHECK(p.defined() && p.requires_grad(), "GradientReducer: parameter ", k, " does not require a gradient");
    const std::int64_t size = p.numel() * static_cast<std::int64_t>(p.element_size());
    const bool fits = !m.buckets.empty() && bytes + size <= bucket_bytes &&
                      m.params[m.buckets.back().members.front()].scalar_type() == p.scalar_type() &&
                      m.params[m.buckets.back().members.front()].device() == p.device();
    if (!fits) {
      m.buckets.emplace_back();
      bytes = elements = 0;
    }
    m.buckets.back().members.push_back(k);
    m.bucket_of[k] = m.buckets.size() - 1;
    m.offset_of[k] = elements;
    bytes += size;
    elements += p.numel();
  }
  for (auto& b : m.buckets) {
    std::int64_t total = 0;
    for (auto k : b.members) total += m.params[k].numel();
    b.flat = torch::zeros({total}, m.params[b.members.front()].options().requires_grad(false));
  }
  m.reset();
  for (std::size_t k = 0; k < n; ++k) {
    Impl* impl = impl_.get();
    m.hooks.push_back(m.params[k].register_hook([impl, k](const torch::Tensor& grad) { impl->on_gradient(k, grad); }));
  }
}

GradientReducer::~GradientReducer() {
  for (std::size_t k = 0; k < impl_->params.size(); ++k) impl_->params[k].remove_hook(impl_->hooks[k]);
}

void GradientReducer::arm() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->reset();
  impl_->armed = true;
}

bool GradientReducer::finish() {
  auto& m = *impl_;
  std::vector<std::function<void()>> waits;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    if (!m.armed) m.reset();  // this rank ran no final backward: every gradient is .grad as it stands
    m.armed = false;
    for (std::size_t k = 0; k < m.params.size(); ++k)
      if (!m.arrived[k]) m.arrive(k, torch::Tensor());
    m.start_ready();
    waits.swap(m.waits);
  }
  for (auto& wait : waits) wait();
  return !m.twice;
}

void GradientReducer::commit() {
  torch::NoGradGuard no_grad;
  for (std::size_t k = 0; k < impl_->params.size(); ++k) {
    auto& p = impl_->params[k];
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    p.mutable_grad().copy_(impl_->slot(k));
  }
}

std::size_t GradientReducer::buckets() const { return impl_->buckets.size(); }

std::size_t GradientReducer::started_in_backward() const { return impl_->started_in_backward; }

}  // namespace lire::train

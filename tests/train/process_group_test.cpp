// c10d process groups on 127.0.0.1 with Gloo: two real processes (this test
// binary re-executed as rank 1 with torchrun's variables set) sum bucketed
// tensors of several dtypes, reduce values, and a rank that dies or hangs
// makes the other fail with a DistributedError within the timeout.
#include "lire/train/process_group.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lire/core/local_launcher.h"
#include "lire/models/activation_checkpoint.h"
#include "lire/io/hf_config.h"
#include "lire/models/llama.h"
#include "lire/models/sequence_logprobs.h"

extern char** environ;

namespace lire::train {
namespace {

using ::testing::HasSubstr;

// Starts this binary as rank 1 of 2 running the disabled child test `name`.
pid_t spawn_rank1(const std::string& name, int port) {
  std::vector<std::string> env_strings = {"RANK=1", "WORLD_SIZE=2", "LOCAL_RANK=1", "MASTER_ADDR=127.0.0.1",
                                          "MASTER_PORT=" + std::to_string(port)};
  for (char** e = environ; *e; ++e) {
    const std::string s = *e;
    if (s.rfind("RANK=", 0) && s.rfind("WORLD_SIZE=", 0) && s.rfind("MASTER_", 0) && s.rfind("LOCAL_RANK=", 0))
      env_strings.push_back(s);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", also = "--gtest_also_run_disabled_tests",
              filter = "--gtest_filter=DISABLED_ProcessGroupChild." + name;
  char* argv[] = {exe.data(), also.data(), filter.data(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()), 0);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

DistEnv env_of(int rank, int port) {
  DistEnv env;
  env.rank = rank;
  env.world_size = 2;
  env.master_port = port;
  return env;
}

// What both ranks do: rank r contributes (r + 1) * (i + 1) * arange for
// tensor i; the sum over ranks 0 and 1 is 3 * (i + 1) * arange. Buckets of
// 64 bytes split the float64 tensors into several collectives.
void sum_and_check(ProcessGroup& group) {
  const std::vector<std::vector<std::int64_t>> shapes = {{3, 4}, {7}, {2, 2, 2}, {5}, {1}};
  std::vector<torch::Tensor> tensors;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const auto dtype = i == 3 ? torch::kFloat32 : torch::kFloat64;
    const auto n = c10::multiply_integers(shapes[i]);
    tensors.push_back(torch::arange(n, dtype).reshape(shapes[i]) * static_cast<double>((group.rank() + 1) * (i + 1)));
  }
  group.all_reduce_sum(tensors, /*bucket_bytes=*/64);
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const auto want = torch::arange(c10::multiply_integers(shapes[i]), tensors[i].scalar_type()).reshape(shapes[i]) *
                      static_cast<double>(3 * (i + 1));
    EXPECT_TRUE(torch::equal(tensors[i], want)) << "tensor " << i;
  }
  const auto values = group.all_reduce_sum(std::vector<double>{1.5, static_cast<double>(group.rank())});
  EXPECT_EQ(values, (std::vector<double>{3.0, 1.0}));
  EXPECT_EQ(group.all_reduce_min(group.rank() == 0 ? 1.0 : 0.0), 0.0);
  group.barrier();
}


// The gradient reducer's checks, run by both ranks. A chain of float64 linear
// maps (and one float32 bias, so buckets split by dtype) whose gradients
// pack into buckets of at most 256 bytes: several buckets, started during
// backward. Rank r's data are seeded by (step, r); every rank also computes
// every rank's gradients itself with torch::autograd::grad, and the reduced
// .grad must equal their sum.
struct Chain {
  std::vector<torch::Tensor> params;
  Chain() {
    torch::manual_seed(7);
    for (int i = 0; i < 4; ++i) params.push_back(torch::randn({4, 4}, torch::kFloat64).requires_grad_());
    params.push_back(torch::randn({4}, torch::kFloat32).requires_grad_());
  }
  // Layer 1 runs twice when `reuse`; with `checkpoint` every layer call is
  // its own checkpointed segment, so layer 1's gradient reaches the leaf in
  // two backward passes.
  torch::Tensor loss(std::int64_t seed, bool reuse = false, bool checkpoint = false) const {
    torch::manual_seed(static_cast<std::uint64_t>(seed));
    auto h = torch::randn({3, 4}, torch::kFloat64);
    for (std::size_t i = 0; i < 4; ++i) {
      auto layer = [this, i](const std::vector<torch::Tensor>& in) {  // by value: backward calls it again
        return std::vector<torch::Tensor>{torch::tanh(in[0].matmul(params[i]))};
      };
      for (int times = (reuse && i == 1) ? 2 : 1; times > 0; --times)
        h = checkpoint ? lire::models::checkpointed(layer, {h})[0] : layer({h})[0];
    }
    return (h + params[4].to(torch::kFloat64)).pow(2).sum();
  }
  std::vector<torch::Tensor> grads(std::int64_t seed, bool reuse = false) const {
    auto g = torch::autograd::grad({loss(seed, reuse)}, params);
    for (auto& t : g) t = t.detach();
    return g;
  }
};

std::vector<torch::Tensor> sum(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.empty()) return b;
  std::vector<torch::Tensor> out;
  for (std::size_t i = 0; i < a.size(); ++i) out.push_back(a[i] + b[i]);
  return out;
}

void check_sums(const Chain& chain, const std::vector<torch::Tensor>& want) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(chain.params[i].grad().defined()) << "parameter " << i;
    const double tol = want[i].scalar_type() == torch::kFloat32 ? 1e-5 : 1e-12;  // float32: summed in another order
    EXPECT_TRUE(torch::allclose(chain.params[i].grad(), want[i], tol, tol)) << "parameter " << i;
  }
}

void reducer_and_check(ProcessGroup& group) {
  const auto r = group.rank();
  Chain chain;
  GradientReducer reducer(group, chain.params, /*bucket_bytes=*/256);
  EXPECT_EQ(reducer.buckets(), 3u);  // backward order: the float32 bias, then the 128-byte matrices in pairs

  // Step 1: two micro-steps on each rank, the second armed.
  std::vector<torch::Tensor> want;
  for (int rank = 0; rank < 2; ++rank)
    for (int micro = 0; micro < 2; ++micro) want = sum(want, chain.grads(100 + 10 * rank + micro));
  chain.loss(100 + 10 * r).backward();
  reducer.arm();
  chain.loss(100 + 10 * r + 1).backward();
  EXPECT_EQ(reducer.started_in_backward(), 3u) << "every bucket starts during backward";
  EXPECT_TRUE(reducer.finish());
  reducer.commit();
  check_sums(chain, want);

  // Step 2: rank 1 runs no backward (no lists left): it takes part with zeros.
  for (auto& p : chain.params) p.mutable_grad() = torch::Tensor();
  if (r == 0) {
    reducer.arm();
    chain.loss(200).backward();
  }
  EXPECT_TRUE(reducer.finish());
  EXPECT_EQ(reducer.started_in_backward(), r == 0 ? 3u : 0u);
  reducer.commit();
  check_sums(chain, chain.grads(200));

  // Step 3: layer 1 inside two checkpointed segments delivers its gradient in
  // two parts: finish() says so on both ranks and leaves .grad as backward
  // made it, and the caller sums .grad after backward instead.
  for (auto& p : chain.params) p.mutable_grad() = torch::Tensor();
  reducer.arm();
  chain.loss(300 + r, /*reuse=*/true, /*checkpoint=*/true).backward();
  EXPECT_FALSE(reducer.finish());
  check_sums(chain, chain.grads(300 + r, /*reuse=*/true));
  std::vector<torch::Tensor> grads;
  for (auto& p : chain.params) grads.push_back(p.grad());
  group.all_reduce_sum(grads);
  check_sums(chain, sum(chain.grads(300, true), chain.grads(301, true)));
}

TEST(ProcessGroup, TwoRanksSumBucketedTensorsAndValues) {
  const int port = free_local_port();
  const pid_t child = spawn_rank1("SumAndCheck", port);
  {
    auto group = ProcessGroup::connect(env_of(0, port), 60.0, torch::kCPU);
    EXPECT_EQ(group->rank(), 0);
    EXPECT_EQ(group->size(), 2);
    EXPECT_EQ(group->backend(), "gloo");
    sum_and_check(*group);
  }
  EXPECT_EQ(wait_exit(child), 0) << "rank 1's checks failed";
}

TEST(ProcessGroup, GradientReducerOverlapsTheAllReduceWithBackward) {
  const int port = free_local_port();
  const pid_t child = spawn_rank1("ReduceAndCheck", port);
  {
    auto group = ProcessGroup::connect(env_of(0, port), 60.0, torch::kCPU);
    reducer_and_check(*group);
  }
  EXPECT_EQ(wait_exit(child), 0) << "rank 1's checks failed";
}

TEST(ProcessGroup, DeadOrHangingRankFailsWithinTheTimeout) {
  for (const std::string child_test : {"JoinThenExit", "JoinThenHang"}) {
    SCOPED_TRACE(child_test);
    const int port = free_local_port();
    const pid_t child = spawn_rank1(child_test, port);
    auto group = ProcessGroup::connect(env_of(0, port), 3.0, torch::kCPU);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> grads = {torch::ones({4})};
    try {
      group->all_reduce_sum(grads);
      ADD_FAILURE() << "expected a DistributedError";
    } catch (const DistributedError& e) {
      EXPECT_THAT(e.what(), HasSubstr("rank 0 of 2: all-reduce of gradients failed; another rank died or did not join "
                                      "within runtime.dist_timeout_s = 3 s"));
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(waited, 15.0) << "the error must come within about the timeout";
    ::kill(child, SIGKILL);
    wait_exit(child);
  }
}

TEST(ProcessGroup, RendezvousWithoutPeersTimesOut) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    ProcessGroup::connect(env_of(0, free_local_port()), 1.0, torch::kCPU);
    ADD_FAILURE() << "expected a DistributedError";
  } catch (const DistributedError& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank 0 of 2: the rendezvous at 127.0.0.1:"));
    EXPECT_THAT(e.what(), HasSubstr("runtime.dist_timeout_s = 1 s"));
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 15.0);
}

// ---- rank 1's side, run only by the tests above (disabled otherwise)

#ifdef USE_C10D_NCCL
// On a CUDA LibTorch with NCCL (the GPU machine's recipe, scripts/gpu.sh): a
// process group of one rank on GPU 0, an all-reduce of CUDA tensors, and one
// LoRA-free training step of a tiny Llama whose gradients go through the group.
TEST(ProcessGroupNccl, OneRankSmokeTest) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  DistEnv env;
  env.master_port = free_local_port();
  const torch::Device cuda(torch::kCUDA, 0);
  auto group = ProcessGroup::connect(env, 60.0, cuda);
  EXPECT_EQ(group->backend(), "nccl");
  std::vector<torch::Tensor> t = {torch::arange(1000, torch::TensorOptions().dtype(torch::kFloat32).device(cuda)),
                                  torch::ones({3, 5}, torch::TensorOptions().dtype(torch::kBFloat16).device(cuda))};
  const auto before = t[0].clone();
  group->all_reduce_sum(t, 1024);
  EXPECT_TRUE(torch::equal(t[0], before));  // one rank: the sum is the tensor
  EXPECT_EQ(group->all_reduce_sum(std::vector<double>{2.5, -1.0}), (std::vector<double>{2.5, -1.0}));
  EXPECT_EQ(group->all_reduce_min(3.0), 3.0);
  group->barrier();

  lire::io::LlamaConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  torch::manual_seed(1);
  lire::models::LlamaForCausalLM model(c, torch::TensorOptions().dtype(torch::kFloat32).device(cuda));
  model->init_weights(0.1);
  const std::vector<lire::models::ListTokens> lists = {{{1, 5, 9}, {{10, 11}, {12, 13, 14}}}};
  const auto lp = lire::models::batch_logprobs(*model, lists);
  (-lp.logps.masked_select(lp.mask).sum()).backward();
  std::vector<torch::Tensor> grads;
  for (auto& p : model->parameters()) grads.push_back(p.grad());
  const auto g0 = grads[0].clone();
  group->all_reduce_sum(grads);
  EXPECT_TRUE(torch::equal(grads[0], g0));
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  sgd.step();
  torch::NoGradGuard no_grad;
  const auto after = lire::models::batch_logprobs(*model, lists);
  EXPECT_GT(after.logps.masked_select(after.mask).sum().item<double>(),
            lp.logps.masked_select(lp.mask).sum().item<double>());  // the step raised the log-probs
}
#endif

TEST(DISABLED_ProcessGroupChild, SumAndCheck) {
  auto group = ProcessGroup::connect(read_dist_env(), 60.0, torch::kCPU);
  sum_and_check(*group);
}

TEST(DISABLED_ProcessGroupChild, ReduceAndCheck) {
  auto group = ProcessGroup::connect(read_dist_env(), 60.0, torch::kCPU);
  reducer_and_check(*group);
}

TEST(DISABLED_ProcessGroupChild, JoinThenExit) {
  auto group = ProcessGroup::connect(read_dist_env(), 60.0, torch::kCPU);
  std::_Exit(0);  // dies without taking part in the collective
}

TEST(DISABLED_ProcessGroupChild, JoinThenHang) {
  auto group = ProcessGroup::connect(read_dist_env(), 60.0, torch::kCPU);
  std::this_thread::sleep_for(std::chrono::seconds(60));  // alive, never joins the collective
}

}  // namespace
}  // namespace lire::train

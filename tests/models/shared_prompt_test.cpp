// The fast paths of sequence log-probs against their plain counterparts:
// shared-prompt (one prompt pass, K responses behind its KV cache) against K
// separate prompt + response sequences; the lean token log-probs (no [M x V]
// tensor kept for backward) against autograd through a full log_softmax;
// activation checkpointing against plain backward. Log-probs and gradients,
// ragged lists, padding, LoRA on and off, Llama (MHA, GQA, sliding window) and T5.
#include <cmath>
#include <functional>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lire/config/lora_options.h"
#include "lire/io/hf_config.h"
#include "lire/models/activation_checkpoint.h"
#include "lire/models/attention.h"
#include "lire/models/fused_ops.h"
#include "lire/models/llama.h"
#include "lire/models/lora.h"
#include "lire/models/sequence_logprobs.h"
#include "lire/models/t5.h"
#include "lire/models/t5_logprobs.h"
#include "support/hf_fixtures.h"

namespace {

using namespace lire::models;

lire::io::LlamaConfig tiny_llama_config(int64_t kv_heads, bool tied, std::optional<int64_t> window = {}) {
  lire::io::LlamaConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.head_dim = 8;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  c.sliding_window = window;
  return c;
}

LlamaForCausalLM random_llama(const lire::io::LlamaConfig& c, torch::Dtype dtype) {
  torch::manual_seed(11);
  LlamaForCausalLM model(c, torch::TensorOptions().dtype(dtype));
  model->init_weights(0.25);
  return model;
}

// Three lists: ragged prompts (1..9 tokens), K of 2..4, responses of 1..7 tokens
// (one of a single token: predicted from the prompt's last state alone).
std::vector<ListTokens> ragged_lists() {
  return {{{1, 5, 9, 13, 17, 21, 25, 29, 33}, {{20, 21, 22}, {30}, {40, 41, 42, 43, 44, 45, 46}, {50, 51}}},
          {{1}, {{60, 61, 62, 63}, {64, 65}}},
          {{1, 7, 8, 9}, {{70, 71, 72, 73, 74}, {75}, {76, 77, 78}}}};
}

// A random float64 T5 (std 0.4) of a tiny shape.
T5ForConditionalGeneration random_t5(bool tied, uint64_t seed) {
  lire::io::T5Config c;
  c.vocab_size = 60;
  c.d_model = 24;
  c.d_kv = 6;
  c.num_heads = 4;
  c.d_ff = 32;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  c.tie_word_embeddings = tied;
  torch::manual_seed(seed);
  T5ForConditionalGeneration model(c, torch::TensorOptions().dtype(torch::kFloat64));
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.normal_(0.0, 0.4);
  return model;
}

// sum_k w_bk logp_bk with fixed weights, so that every list and response gets
// its own gradient.
torch::Tensor weighted(const ListBatchLogprobs& lp) {
  const auto w = torch::arange(1, lp.logps.numel() + 1, lp.logps.options()).view(lp.logps.sizes()).cos();
  return (lp.logps * w).masked_select(lp.mask).sum();
}

std::vector<torch::Tensor> grads_of(torch::nn::Module& model, const std::function<torch::Tensor()>& loss) {
  for (auto& p : model.parameters())
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  loss().backward();
  std::vector<torch::Tensor> out;
  for (auto& p : model.parameters())
    if (p.requires_grad()) out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return out;
}

// max |a - b| / max |b| over a list of tensors.
double relative_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
    scale = std::max(scale, b[i].abs().max().item<double>());
  }
  return scale > 0 ? diff / scale : diff;
}

double relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return relative_diff(std::vector<torch::Tensor>{a}, std::vector<torch::Tensor>{b});
}

void enable_lora(torch::nn::Module& model, const std::vector<std::string>& targets, torch::Dtype dtype) {
  lire::config::LoraOptions options;
  options.r = 4;
  options.alpha = 8;
  options.targets = targets;
  apply_lora(model, options, dtype);
  // B = 0 at init would hide the adapter's path; give it values.
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : lora_parameters(model)) p.normal_(0.0, 0.2);
}

struct Case {
  std::string name;
  int64_t kv_heads;
  bool tied;
  std::optional<int64_t> window;
  bool lora;
  torch::Dtype dtype;
};

// Nodes of `root`'s autograd graph whose name contains `what`.
int count_nodes(const torch::Tensor& root, const std::string& what) {
  std::vector<torch::autograd::Node*> stack = {root.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  int n = 0;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find(what) != std::string::npos) ++n;
    for (const auto& e : node->next_edges()) stack.push_back(e.function.get());
  }
  return n;
}

// --------------------------------------------------------------- shared prompt

TEST(SharedPrompt, LogprobsAndGradientsEqualSeparateSequences) {
  const std::vector<Case> cases = {
      {"MHA fp64 full fine-tuning", 4, false, {}, false, torch::kFloat64},
      {"GQA fp64 LoRA", 2, true, {}, true, torch::kFloat64},
      {"MQA fp32 LoRA", 1, false, {}, true, torch::kFloat32},
      {"GQA fp32 full", 2, false, {}, false, torch::kFloat32},
      {"sliding window 4 fp64", 2, false, 4, true, torch::kFloat64},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto model = random_llama(tiny_llama_config(c.kv_heads, c.tied, c.window), c.dtype);
    if (c.lora) enable_lora(*model, {"q_proj", "v_proj", "o_proj", "down_proj"}, c.dtype);
    const double tol = c.dtype == torch::kFloat64 ? 1e-10 : 1e-5;
    const auto lists = ragged_lists();
    for (int64_t max_sequences : {16, 3, 1}) {  // one pass; a list split across passes; one response a pass
      SCOPED_TRACE("max_sequences " + std::to_string(max_sequences));
      LogprobOptions shared, naive;
      shared.max_sequences = naive.max_sequences = max_sequences;
      shared.chunk_positions = 4;
      naive.shared_prompt = false;
      ListBatchLogprobs a, b;
      const auto ga = grads_of(*model, [&] { return weighted(a = batch_logprobs(*model, lists, shared)); });
      const auto gb = grads_of(*model, [&] { return weighted(b = batch_logprobs(*model, lists, naive)); });
      EXPECT_TRUE(torch::equal(a.mask, b.mask));
      EXPECT_TRUE(torch::equal(a.token_counts, b.token_counts));
      EXPECT_LT(relative_diff(a.logps.masked_select(a.mask), b.logps.masked_select(b.mask)), tol);
      EXPECT_LT(relative_diff(ga, gb), tol);
      EXPECT_FALSE(ga.empty());
    }
    // list_logprobs: per-token values too.
    const auto& l = lists[0];
    LogprobOptions naive;
    naive.shared_prompt = false;
    torch::NoGradGuard no_grad;
    const auto s = list_logprobs(*model, l.prompt_ids, l.response_ids);
    const auto n = list_logprobs(*model, l.prompt_ids, l.response_ids, naive);
    EXPECT_LT(relative_diff(s.per_token, n.per_token), tol);
    EXPECT_TRUE(torch::equal(s.token_counts, n.token_counts));
  }
}

// The shared and the naive path on LIRE_TEST_DEVICE (cpu unless set;
// scripts/gpu.sh sets cuda), in float32 and in bf16 with float32 adapters,
// against each other and against the same weights in float64 on the CPU.
// Other code serves here than in the float64 tests: on CUDA and for bf16 the
// prefix keys are concatenated per row and attention is the fused kernel
// (LibTorch 2.1+), and RMSNorm/rotary/SwiGLU take their composed formulas.
TEST(SharedPrompt, OnTheTestDeviceInFloat32AndBf16) {
  const auto device = lire::testing::test_device();
  if (device.is_cuda() && !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto config = tiny_llama_config(2, false);
  lire::config::LoraOptions lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.targets = {"q_proj", "v_proj", "down_proj"};
  const auto lists = ragged_lists();
  // Tolerances, relative to the largest value: shared vs naive on the device,
  // then device vs the float64 reference; log-probs, then gradients. bf16
  // keeps 8 bits of mantissa: on the CPU its log-probs came within 2e-3 of the
  // reference and its gradients within 6e-2 (9e-3 between the two paths).
  struct DtypeCase {
    torch::Dtype dtype;
    double logp_same, grad_same, logp_reference, grad_reference;
  };
  for (const auto& c : {DtypeCase{torch::kFloat32, 1e-5, 1e-5, 1e-4, 1e-4},
                        DtypeCase{torch::kBFloat16, 1e-2, 5e-2, 2e-2, 2e-1}}) {
    SCOPED_TRACE(c10::toString(c.dtype));
    // The float64 reference holds the weights rounded to the tested dtype.
    auto reference = random_llama(config, torch::kFloat64);
    reference->to(c.dtype);
    reference->to(torch::kFloat64);
    apply_lora(*reference, lora, torch::kFloat64);
    auto model = random_llama(config, torch::kFloat64);
    model->to(device, c.dtype);
    apply_lora(*model, lora, torch::kFloat32);
    {
      torch::NoGradGuard no_grad;
      const auto ref_lora = lora_parameters(*reference);
      const auto dev_lora = lora_parameters(*model);
      ASSERT_EQ(ref_lora.size(), dev_lora.size());
      for (std::size_t i = 0; i < ref_lora.size(); ++i) {
        ASSERT_EQ(ref_lora[i].first, dev_lora[i].first);
        ref_lora[i].second.normal_(0.0, 0.2);
        ref_lora[i].second.copy_(ref_lora[i].second.to(torch::kFloat32));
        dev_lora[i].second.copy_(ref_lora[i].second);
        ASSERT_EQ(dev_lora[i].second.device(), device);
      }
    }
    for (bool checkpointing : {false, true}) {
      SCOPED_TRACE(checkpointing ? "checkpointing" : "plain backward");
      model->model->gradient_checkpointing = checkpointing;
      LogprobOptions shared, naive;
      shared.max_sequences = naive.max_sequences = 3;
      naive.shared_prompt = false;
      ListBatchLogprobs a, b, r;
      const auto ga = grads_of(*model, [&] { return weighted(a = batch_logprobs(*model, lists, shared)); });
      const auto gb = grads_of(*model, [&] { return weighted(b = batch_logprobs(*model, lists, naive)); });
      const auto gr = grads_of(*reference, [&] { return weighted(r = batch_logprobs(*reference, lists, naive)); });
      ASSERT_EQ(a.logps.device(), device);
      ASSERT_FALSE(ga.empty());
      const auto on_cpu = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat64); };
      std::vector<torch::Tensor> ga_cpu, gb_cpu;
      for (const auto& g : ga) ga_cpu.push_back(on_cpu(g));
      for (const auto& g : gb) gb_cpu.push_back(on_cpu(g));
      const auto la = on_cpu(a.logps).masked_select(on_cpu(a.mask).to(torch::kBool));
      const auto lb = on_cpu(b.logps).masked_select(on_cpu(b.mask).to(torch::kBool));
      const auto lr = r.logps.masked_select(r.mask);
      EXPECT_LT(relative_diff(la, lb), c.logp_same);
      EXPECT_LT(relative_diff(ga_cpu, gb_cpu), c.grad_same);
      EXPECT_LT(relative_diff(la, lr), c.logp_reference);
      EXPECT_LT(relative_diff(ga_cpu, gr), c.grad_reference);
    }
  }
}

TEST(SharedPrompt, NaivePathMatchesFullLogSoftmaxOfEachSequence) {
  // An independent formula for the value both paths must give.
  torch::NoGradGuard no_grad;
  auto model = random_llama(tiny_llama_config(2, false), torch::kFloat64);
  const auto lists = ragged_lists();
  const auto lp = batch_logprobs(*model, lists);
  for (std::size_t b = 0; b < lists.size(); ++b)
    for (std::size_t k = 0; k < lists[b].response_ids.size(); ++k) {
      std::vector<int64_t> seq = lists[b].prompt_ids;
      const auto& y = lists[b].response_ids[k];
      seq.insert(seq.end(), y.begin(), y.end());
      const auto ids = torch::tensor(seq, torch::kLong).unsqueeze(0);
      const auto full = torch::log_softmax(model->logits(model->forward(ids)), -1)[0];
      double sum = 0;
      for (std::size_t t = lists[b].prompt_ids.size(); t < seq.size(); ++t) sum += full[t - 1][seq[t]].item<double>();
      EXPECT_NEAR(lp.logps[b][k].item<double>(), sum, 1e-10);
    }
}

TEST(SharedPrompt, ListLogprobsDoNotDependOnTheOtherListsOfTheBatch) {
  // Bitwise: each list runs its own passes, so a list scored with others (of
  // other prompt and response lengths) gets the same bits as alone, in either
  // grouping. LiPO-lambda's weights jump at exact ties and need this.
  torch::NoGradGuard no_grad;
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    auto model = random_llama(tiny_llama_config(2, false), dtype);
    const auto lists = ragged_lists();
    LogprobOptions one_pass, small;
    small.max_sequences = 5;  // other groupings of the lists
    const auto together = batch_logprobs(*model, lists, one_pass);
    const auto grouped = batch_logprobs(*model, lists, small);
    EXPECT_TRUE(torch::equal(together.logps, grouped.logps));
    for (std::size_t b = 0; b < lists.size(); ++b) {
      const auto alone = batch_logprobs(*model, {lists[b]}, one_pass);
      const auto k = static_cast<int64_t>(lists[b].response_ids.size());
      EXPECT_TRUE(torch::equal(together.logps[static_cast<int64_t>(b)].narrow(0, 0, k), alone.logps[0]))
          << "list " << b << " " << dtype;
    }
  }
}

TEST(SharedPrompt, T5SharedEncoderEqualsOneEncoderPassPerResponse) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied head" : "own lm_head");
    auto model = random_t5(tied, 5);
    const std::vector<ListTokens> lists = {{{3, 4, 5, 6, 1}, {{7, 8, 1}, {9, 1}, {10, 11, 12, 13, 1}}},
                                           {{14, 1}, {{15, 1}, {16, 17, 1}}}};
    LogprobOptions shared, naive;
    shared.max_sequences = naive.max_sequences = 2;
    naive.shared_prompt = false;
    ListBatchLogprobs a, b;
    const auto ga = grads_of(*model, [&] { return weighted(a = batch_logprobs(*model, lists, shared)); });
    const auto gb = grads_of(*model, [&] { return weighted(b = batch_logprobs(*model, lists, naive)); });
    EXPECT_LT(relative_diff(a.logps.masked_select(a.mask), b.logps.masked_select(b.mask)), 1e-10);
    EXPECT_LT(relative_diff(ga, gb), 1e-10);
  }
}

// ------------------------------------------------------------- lean log-probs

TEST(TokenLogprobs, ChunkedValuesAndGradientsEqualFullLogSoftmax) {
  torch::manual_seed(3);
  const int64_t M = 11, H = 7, V = 23;
  const auto targets = torch::randint(V, {M}, torch::kLong);
  const auto upstream = torch::randn({M}, torch::kFloat64);
  for (bool weight_grad : {false, true}) {
    SCOPED_TRACE(weight_grad ? "hidden and weight" : "hidden only");
    const auto h0 = torch::randn({M, H}, torch::kFloat64), w0 = torch::randn({V, H}, torch::kFloat64);
    // Reference: autograd through the full [M, V] log_softmax.
    auto h_ref = h0.clone().requires_grad_(true), w_ref = w0.clone().requires_grad_(weight_grad);
    const auto ref = torch::log_softmax(torch::linear(h_ref, w_ref), 1).gather(1, targets.unsqueeze(1)).squeeze(1);
    (ref * upstream).sum().backward();
    for (int64_t chunk : {int64_t{1}, int64_t{4}, M, int64_t{100}}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk));
      auto h = h0.clone().requires_grad_(true), w = w0.clone().requires_grad_(weight_grad);
      const auto out = token_logprobs(h, w, targets, chunk);
      EXPECT_LT((out - ref).abs().max().item<double>(), 1e-12);
      (out * upstream).sum().backward();
      EXPECT_LT((h.grad() - h_ref.grad()).abs().max().item<double>(), 1e-12);
      if (weight_grad) {
        EXPECT_LT((w.grad() - w_ref.grad()).abs().max().item<double>(), 1e-12);
      }
      // Without gradients: the same values.
      torch::NoGradGuard no_grad;
      EXPECT_LT((token_logprobs(h0, w0, targets, chunk) - ref).abs().max().item<double>(), 1e-12);
    }
  }
}

TEST(TokenLogprobs, Float32ComputeForFloat32Inputs) {
  torch::manual_seed(4);
  const auto h = torch::randn({5, 8}), w = torch::randn({30, 8});
  const auto t = torch::randint(30, {5}, torch::kLong);
  const auto out = token_logprobs(h, w, t, 2);
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  const auto ref = torch::log_softmax(torch::linear(h.to(torch::kFloat64), w.to(torch::kFloat64)), 1)
                       .gather(1, t.unsqueeze(1))
                       .squeeze(1);
  EXPECT_LT((out.to(torch::kFloat64) - ref).abs().max().item<double>(), 1e-5);
}

// ------------------------------------------------------------- batched products

// Restores LibTorch's intra-op thread count when it goes out of scope.
struct ThreadCount {
  int saved = torch::get_num_threads();
  explicit ThreadCount(int n) { torch::set_num_threads(n); }
  ~ThreadCount() { torch::set_num_threads(saved); }
};

TEST(BatchedMatmul, HeadsSideBySideEqualMatmulInValuesAndGradients) {
  ThreadCount two(2);  // the path that shares heads out among threads
  torch::manual_seed(8);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    SCOPED_TRACE(dtype == torch::kFloat64 ? "float64" : "float32");
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
    const auto opts = torch::TensorOptions().dtype(dtype);
    // [2,3,5,4] @ [2,3,4,6] with a transposed (non-contiguous) right operand, as q k^T.
    const auto a0 = torch::randn({2, 3, 5, 4}, opts), b0 = torch::randn({2, 3, 6, 4}, opts).transpose(2, 3);
    const auto up = torch::randn({2, 3, 5, 6}, opts);
    auto a = a0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    auto ar = a0.clone().requires_grad_(true), br = b0.clone().requires_grad_(true);
    const auto out = batched_matmul(a, b.transpose(2, 3).transpose(2, 3));
    const auto ref = torch::matmul(ar, br);
    EXPECT_EQ(out.sizes(), ref.sizes());
    EXPECT_LT((out - ref).abs().max().item<double>(), tol);
    (out * up).sum().backward();
    (ref * up).sum().backward();
    EXPECT_LT((a.grad() - ar.grad()).abs().max().item<double>(), tol);
    EXPECT_LT((b.grad() - br.grad()).abs().max().item<double>(), tol);
    // Only one operand needing a gradient, and no gradients at all.
    auto c = a0.clone().requires_grad_(true);
    (batched_matmul(c, b0) * up).sum().backward();
    EXPECT_LT((c.grad() - ar.grad()).abs().max().item<double>(), tol);
    // A scale and a broadcast addend (a mask or a position bias) with its own gradient.
    const auto m0 = torch::randn({2, 1, 5, 6}, opts);
    auto a2 = a0.clone().requires_grad_(true), m = m0.clone().requires_grad_(true);
    auto a2r = a0.clone().requires_grad_(true), mr = m0.clone().requires_grad_(true);
    const auto fused = batched_matmul(a2, b0, 0.25, m);
    const auto plain = torch::matmul(a2r, b0) * 0.25 + mr;
    EXPECT_LT((fused - plain).abs().max().item<double>(), tol);
    (fused * up).sum().backward();
    (plain * up).sum().backward();
    EXPECT_LT((a2.grad() - a2r.grad()).abs().max().item<double>(), tol);
    EXPECT_EQ(m.grad().sizes(), m0.sizes());
    EXPECT_LT((m.grad() - mr.grad()).abs().max().item<double>(), tol);
    torch::NoGradGuard no_grad;
    EXPECT_LT((batched_matmul(a0, b0) - torch::matmul(a0, b0)).abs().max().item<double>(), tol);
    EXPECT_LT((batched_matmul(a0, b0, 0.5, m0) - (torch::matmul(a0, b0) * 0.5 + m0)).abs().max().item<double>(), tol);
  }
  // The caller's thread count is left as it was (each worker limits only its own BLAS calls).
  EXPECT_EQ(torch::get_num_threads(), 2);
  // Shapes that are not [..., M, K] @ [..., K, N] with equal leading dimensions: matmul's own rules.
  const auto x = torch::randn({3, 4, 5}, torch::kFloat64), w = torch::randn({5, 2}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(batched_matmul(x, w), torch::matmul(x, w)));
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 6})), c10::Error);
}

TEST(BatchedMatmul, AttentionEqualsSoftmaxOfScoresOnOneAndTwoThreads) {
  torch::manual_seed(9);
  const auto q = torch::randn({2, 3, 5, 4}, torch::kFloat64), k = torch::randn({2, 3, 7, 4}, torch::kFloat64);
  const auto v = torch::randn({2, 3, 7, 4}, torch::kFloat64);
  auto mask = torch::zeros({2, 1, 5, 7}, torch::kFloat64);
  mask.index_put_({1, 0, torch::indexing::Slice(), 6}, -1e300);  // row 1 cannot see key 6
  const auto ref = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(2, 3)) * 0.5 + mask, 3), v);
  for (int threads : {1, 2}) {
    ThreadCount n(threads);
    EXPECT_LT((attention(q, k, v, mask, 0.5) - ref).abs().max().item<double>(), 1e-12) << threads << " threads";
  }
}

TEST(BatchedMatmul, CausalAttentionInBlocksEqualsFullAttention) {
  ThreadCount two(2);
  torch::manual_seed(12);
  // 300 queries: blocks of 128, 128 and 44. Without cached keys, and after 5
  // cached ones; a plain causal mask, and a sliding window of 150 with key 7
  // padded out (no query has all its keys masked: a padding query's output is
  // unused, and differs).
  for (int64_t cached : {0, 5}) {
    for (bool window : {false, true}) {
      SCOPED_TRACE("cached " + std::to_string(cached) + (window ? ", window" : ""));
      const int64_t T = 300, S = T + cached;
      const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
      const auto q0 = torch::randn({1, 3, T, 8}, opts), k0 = torch::randn({1, 3, S, 8}, opts);
      const auto v0 = torch::randn({1, 3, S, 8}, opts), up = torch::randn({1, 3, T, 8}, opts);
      const auto qpos = torch::arange(T, torch::kLong).unsqueeze(1) + cached, kpos = torch::arange(S, torch::kLong);
      auto allowed = kpos.unsqueeze(0) <= qpos;
      if (window) allowed = allowed & (qpos - kpos.unsqueeze(0) < 150) & (kpos.unsqueeze(0) != 7);
      const auto mask = torch::zeros({T, S}, opts).masked_fill(allowed.logical_not(), -1e300).view({1, 1, T, S});
      std::vector<torch::Tensor> grads[2];
      torch::Tensor outs[2];
      for (int path = 0; path < 2; ++path) {
        auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true);
        auto v = v0.clone().requires_grad_(true);
        outs[path] = path == 0 ? attention(q, k, v, mask, 0.3) : causal_attention(q, k, v, mask, 0.3);
        (outs[path] * up).sum().backward();
        grads[path] = {q.grad(), k.grad(), v.grad()};
      }
      EXPECT_LT((outs[1] - outs[0]).abs().max().item<double>(), 1e-12);
      for (int i = 0; i < 3; ++i) EXPECT_LT((grads[1][i] - grads[0][i]).abs().max().item<double>(), 1e-12) << i;
    }
  }
}

// ------------------------------------------------------------- fused kernels

// rms_norm's and rotary's one-pass CPU kernels against the composed ATen
// formulas (HF's), in values and in the gradients of every input, float64 and
// float32, on 1 and 2 threads.
TEST(FusedOps, RmsNormEqualsComposedFormulaInValuesAndGradients) {
  torch::manual_seed(10);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    SCOPED_TRACE(dtype == torch::kFloat64 ? "float64" : "float32");
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-5;
    const auto opts = torch::TensorOptions().dtype(dtype);
    // 4 x 37 = 148 rows (several blocks of the weight gradient), given transposed (not contiguous).
    const auto x0 = torch::randn({37, 4, 48}, opts).transpose(0, 1) * 3.0;
    const auto w0 = torch::rand({48}, opts) + 0.5, up = torch::randn({4, 37, 48}, opts);
    auto xr = x0.clone().requires_grad_(true), wr = w0.clone().requires_grad_(true);
    const auto ref = rms_norm_composed(xr, wr, 1e-5);
    (ref * up).sum().backward();
    torch::Tensor first_dw;
    for (int threads : {1, 2}) {
      ThreadCount n(threads);
      SCOPED_TRACE(std::to_string(threads) + " threads");
      auto x = x0.detach().requires_grad_(true), w = w0.clone().requires_grad_(true);
      const auto out = rms_norm(x, w, 1e-5);
      EXPECT_EQ(out.sizes(), ref.sizes());
      EXPECT_LT((out - ref).abs().max().item<double>(), tol);
      (out * up).sum().backward();
      EXPECT_LT(((x.grad() - xr.grad()).abs() / (xr.grad().abs() + 1)).max().item<double>(), tol);
      EXPECT_LT(((w.grad() - wr.grad()).abs() / (wr.grad().abs() + 1)).max().item<double>(), tol);
      // The weight's gradient sums fixed blocks of rows: the same bits on any thread count.
      if (first_dw.defined()) {
        EXPECT_TRUE(torch::equal(first_dw, w.grad()));
      }
      first_dw = w.grad().clone();
      // Only x needing a gradient (a frozen norm under LoRA), and none at all.
      auto x2 = x0.detach().requires_grad_(true);
      (rms_norm(x2, w0, 1e-5) * up).sum().backward();
      EXPECT_LT(((x2.grad() - xr.grad()).abs() / (xr.grad().abs() + 1)).max().item<double>(), tol);
      torch::NoGradGuard no_grad;
      EXPECT_LT((rms_norm(x0, w0, 1e-5) - ref).abs().max().item<double>(), tol);
    }
  }
  // Another dtype takes the composed formula: bf16 in, bf16 out, close to float32.
  const auto x = torch::randn({3, 16}), w = torch::rand({16}) + 0.5;
  const auto half = rms_norm(x.to(torch::kBFloat16), w.to(torch::kBFloat16), 1e-6);
  EXPECT_EQ(half.scalar_type(), torch::kBFloat16);
  EXPECT_LT((half.to(torch::kFloat32) - rms_norm(x, w, 1e-6)).abs().max().item<double>(), 0.05);
}

TEST(FusedOps, SwigluEqualsComposedFormulaInValuesAndGradients) {
  torch::manual_seed(13);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    SCOPED_TRACE(dtype == torch::kFloat64 ? "float64" : "float32");
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
    const auto opts = torch::TensorOptions().dtype(dtype);
    // 42,000 elements: more than one parallel chunk; gates from -12 to 12 (saturated sigmoids too).
    const auto g0 = torch::randn({3, 70, 200}, opts) * 4.0, u0 = torch::randn({3, 70, 200}, opts);
    const auto up = torch::randn({3, 70, 200}, opts);
    auto gr = g0.clone().requires_grad_(true), ur = u0.clone().requires_grad_(true);
    const auto ref = swiglu_composed(gr, ur);
    (ref * up).sum().backward();
    for (int threads : {1, 2}) {
      ThreadCount n(threads);
      auto g = g0.clone().requires_grad_(true), u = u0.clone().requires_grad_(true);
      const auto out = swiglu(g, u);
      EXPECT_LT(((out - ref).abs() / (ref.abs() + 1)).max().item<double>(), tol) << threads << " threads";
      (out * up).sum().backward();
      EXPECT_LT(((g.grad() - gr.grad()).abs() / (gr.grad().abs() + 1)).max().item<double>(), tol);
      EXPECT_LT(((u.grad() - ur.grad()).abs() / (ur.grad().abs() + 1)).max().item<double>(), tol);
    }
    // Only the gate needing a gradient.
    auto g = g0.clone().requires_grad_(true);
    (swiglu(g, u0) * up).sum().backward();
    EXPECT_LT(((g.grad() - gr.grad()).abs() / (gr.grad().abs() + 1)).max().item<double>(), tol);
  }
}

TEST(FusedOps, RotaryEqualsComposedFormulaInValuesAndGradients) {
  torch::manual_seed(11);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    SCOPED_TRACE(dtype == torch::kFloat64 ? "float64" : "float32");
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-6;
    const auto opts = torch::TensorOptions().dtype(dtype);
    // x as the attention gets it: a projection [B,T,H,D] viewed as [B,H,T,D].
    const auto x0 = torch::randn({3, 7, 4, 8}, opts).transpose(1, 2);
    const auto up = torch::randn({3, 4, 7, 8}, opts);
    const auto angles = torch::rand({3, 7, 8}, opts) * 6.0;
    // Tables per row [B,T,D], and one table every row shares [1,T,D].
    for (const auto& [cos, sin] : std::vector<std::pair<torch::Tensor, torch::Tensor>>{
             {angles.cos(), angles.sin()}, {angles.narrow(0, 1, 1).cos(), angles.narrow(0, 1, 1).sin()}}) {
      SCOPED_TRACE("tables " + std::to_string(cos.size(0)));
      auto xr = x0.detach().requires_grad_(true);
      const auto ref = rotary_composed(xr, cos, sin);
      (ref * up).sum().backward();
      for (int threads : {1, 2}) {
        ThreadCount n(threads);
        auto x = x0.detach().requires_grad_(true);
        const auto out = rotary(x, cos, sin);
        EXPECT_EQ(out.sizes(), ref.sizes());
        EXPECT_TRUE(out.is_contiguous());
        EXPECT_LT((out - ref).abs().max().item<double>(), tol) << threads << " threads";
        (out * up).sum().backward();
        EXPECT_LT((x.grad() - xr.grad()).abs().max().item<double>(), tol) << threads << " threads";
      }
    }
  }
  // With RoPE's tables (both halves of D the same angles: cat(freqs, freqs)) each
  // pair (j, j + D/2) is rotated: its length |x_j|^2 + |x_j+D/2|^2 is kept.
  const auto x = torch::randn({1, 2, 3, 6}, torch::kFloat64), a = torch::rand({1, 3, 3}, torch::kFloat64) * 6.0;
  const auto table = torch::cat({a, a}, 2);
  const auto y = rotary(x, table.cos(), table.sin());
  const auto length = [](const torch::Tensor& t) { return t.narrow(3, 0, 3).pow(2) + t.narrow(3, 3, 3).pow(2); };
  EXPECT_LT((length(y) - length(x)).abs().max().item<double>(), 1e-12);
  EXPECT_GT((y - x).abs().max().item<double>(), 0.1);  // and it did rotate
}

// ------------------------------------------------------------- checkpointing

TEST(ActivationCheckpoint, LlamaGradientsEqualPlainBackward) {
  struct Setup {
    std::string name;
    bool lora;
    double dropout;
    bool shared;
  };
  for (const auto& s : std::vector<Setup>{{"full, naive", false, 0.0, false},
                                         {"LoRA, shared", true, 0.0, true},
                                         {"LoRA with dropout, shared", true, 0.3, true},
                                         {"LoRA with dropout, naive", true, 0.3, false}}) {
    SCOPED_TRACE(s.name);
    auto model = random_llama(tiny_llama_config(2, false), torch::kFloat64);
    if (s.lora) {
      lire::config::LoraOptions options;
      options.r = 4;
      options.dropout = s.dropout;
      options.targets = {"q_proj", "v_proj", "up_proj"};
      apply_lora(*model, options, torch::kFloat64);
      torch::NoGradGuard no_grad;
      for (auto& [name, p] : lora_parameters(*model)) p.normal_(0.0, 0.2);
    }
    model->train();
    LogprobOptions options;
    options.shared_prompt = s.shared;
    options.max_sequences = 3;
    const auto lists = ragged_lists();
    torch::Tensor plain_value, checkpointed_value;
    torch::manual_seed(99);  // the same dropout masks in both runs
    model->model->gradient_checkpointing = false;
    const auto plain = grads_of(*model, [&] { return plain_value = weighted(batch_logprobs(*model, lists, options)); });
    torch::manual_seed(99);
    model->model->gradient_checkpointing = true;
    const auto ckpt =
        grads_of(*model, [&] { return checkpointed_value = weighted(batch_logprobs(*model, lists, options)); });
    EXPECT_NEAR(plain_value.item<double>(), checkpointed_value.item<double>(), 1e-12);
    // Checkpointing really happened: one node per layer and forward pass. With
    // max_sequences 3 the lists (K = 4, 2, 3) go one a group: naive passes
    // 2 + 1 + 1; shared, a prompt pass more per list.
    EXPECT_EQ(count_nodes(plain_value, "CheckpointFunction"), 0);
    EXPECT_EQ(count_nodes(checkpointed_value, "CheckpointFunction"), s.shared ? 3 * 7 : 3 * 4);
    EXPECT_LT(relative_diff(ckpt, plain), 1e-12);
    double norm = 0;
    for (const auto& g : plain) norm += g.abs().sum().item<double>();
    EXPECT_GT(norm, 0.0);
  }
}

TEST(ActivationCheckpoint, T5GradientsEqualPlainBackward) {
  auto model = random_t5(true, 6);
  const std::vector<ListTokens> lists = {{{3, 4, 5, 1}, {{7, 8, 1}, {9, 1}}}, {{14, 1}, {{15, 1}, {16, 17, 1}}}};
  const auto plain = grads_of(*model, [&] { return weighted(batch_logprobs(*model, lists)); });
  model->encoder->gradient_checkpointing = model->decoder->gradient_checkpointing = true;
  const auto ckpt = grads_of(*model, [&] { return weighted(batch_logprobs(*model, lists)); });
  EXPECT_LT(relative_diff(ckpt, plain), 1e-12);
}

TEST(ActivationCheckpoint, InputGradientsAndNoGradPassThrough) {
  // f(x, y) = (x * y).sin(), y undefined-tolerant: gradients equal autograd's.
  const auto fn = [](const std::vector<torch::Tensor>& in) -> std::vector<torch::Tensor> {
    return {(in[0] * in[1]).sin(), in[0].exp()};
  };
  auto x = torch::randn({4}, torch::kFloat64).requires_grad_(true);
  auto y = torch::randn({4}, torch::kFloat64).requires_grad_(true);
  const auto out = checkpointed(fn, {x, y});
  (out[0].sum() + 2 * out[1].sum()).backward();
  const auto gx = x.grad().clone(), gy = y.grad().clone();
  x.mutable_grad() = torch::Tensor();
  y.mutable_grad() = torch::Tensor();
  const auto ref = fn({x, y});
  (ref[0].sum() + 2 * ref[1].sum()).backward();
  EXPECT_LT((gx - x.grad()).abs().max().item<double>(), 1e-14);
  EXPECT_LT((gy - y.grad()).abs().max().item<double>(), 1e-14);
  torch::NoGradGuard no_grad;
  const auto plain = checkpointed(fn, {x, y});
  EXPECT_FALSE(plain[0].requires_grad());
  EXPECT_LT((plain[0] - ref[0].detach()).abs().max().item<double>(), 0.0 + 1e-15);
}

}  // namespace

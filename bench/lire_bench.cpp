// lire-bench: what a listwise train step and generation cost on this machine,
// and how far each is from the machine's matrix-multiply limit.
//
// For one Llama (a folder, or random weights of the shape given by flags) it
// measures the machine's GEMM rate, then runs every configuration in a child
// process of its own (this program re-executed with a hidden --one flag), so
// each configuration's peak memory is its own:
//   train: list size K x prompt/response lengths x {naive, shared prompt}: a
//          step is batch_logprobs with grad (LogprobOptions::shared_prompt
//          on or off), the LIRE loss (losses::make("lire"), random rewards),
//          backward and an AdamW step over the trainable parameters (LoRA
//          adapters, or every weight with --lora-r 0). Median step time after
//          warm-up, lists/s, tokens/s, the shared/naive ratio, the largest
//          log-prob difference between the two paths (same weights, same
//          data), peak RSS (and peak CUDA memory), and the matmul limit
//            c x (non-embedding params x tokens run through the decoder
//                 + LM-head params x predicted positions) / GEMM rate,
//          c = 4 with LoRA (forward + input gradients), 6 for full
//          fine-tuning; tokens run through the decoder per list are K(P+R)
//          naive and P+KR shared; predicted positions K R.
//   generation: prefill and decode tokens/s at batch 1 and 8 (greedy), and K
//          samples of one prompt with its cache reused (the default) against
//          K separate prefills (GenerateOptions::reuse_prompt_cache).
// A benchmark, not a test: it prints figures and asserts nothing (docs/perf.md
// records runs and explains the columns). `lire-bench --help` lists the flags.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/record_function.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#if defined(LIRE_BENCH_CUDA) && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define LIRE_BENCH_CUDA_STATS 1
#endif

#include "lire/config/lora_options.h"
#include "lire/config/runtime_options.h"
#include "lire/core/error.h"
#include "lire/core/torch_runtime.h"
#include "lire/generate/generate.h"
#include "lire/losses/registry.h"
#include "lire/models/llama.h"
#include "lire/models/lora.h"
#include "lire/models/sequence_logprobs.h"
#include "lire/models/weights.h"
#include "lire/train/optimizer.h"

namespace {

using lire::Error;

const char* const kUsage =
    "usage: lire-bench [--model DIR | --hidden N --layers N --heads N --kv-heads N --intermediate N --vocab N]\n"
    "                  [--lora-r 8] [--k 2,4,8] [--lengths 256/64,512/64,64/256] [--batch 1]\n"
    "                  [--repeats 5] [--warmup 2] [--threads 0] [--device auto] [--dtype auto]\n"
    "                  [--checkpointing] [--max-sequences 16] [--no-generation] [--gen-new 32]\n"
    "                  [--peak-tflops X] [--seed 1234] [--profile 25]\n"
    "Without --model the shape defaults to a 134M-parameter Llama (768 hidden, 12 layers, 12 heads,\n"
    "intermediate 2048, vocab 32000). --lora-r 0 is full fine-tuning. --peak-tflops adds an MFU column.\n"
    "--profile N: after each train configuration's timed steps, one more step with every LibTorch op\n"
    "timed; prints the N ops with the most self time and the N GEMMs by shape with their\n"
    "rate (stderr).\n";

struct Options {
  std::string model;  // HF folder; empty: random weights of the shape below
  std::int64_t hidden = 768, layers = 12, heads = 12, kv_heads = 0, intermediate = 2048, vocab = 32000;
  std::int64_t lora_r = 8;  // 0 = full fine-tuning
  std::vector<std::int64_t> ks = {2, 4, 8};
  std::vector<std::pair<std::int64_t, std::int64_t>> lengths = {{256, 64}, {512, 64}, {64, 256}};
  std::int64_t batch = 1, repeats = 5, warmup = 2, max_sequences = 16, gen_new = 32;
  int threads = 0;
  std::string device = "auto", dtype = "auto";
  bool checkpointing = false, generation = true;
  double peak_tflops = 0;
  std::int64_t seed = 1234;
  std::int64_t profile = 0;  // ops to list from a profiled extra step; 0: no profile
  std::string one;  // hidden: run one configuration and print its RESULT line
};

std::int64_t positive(const std::string& flag, const std::string& text, std::int64_t min = 1) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || v < min)
    throw Error(flag + ": expected an integer >= " + std::to_string(min) + ", got '" + text + "'");
  return v;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

Options parse(const std::vector<std::string>& args) {
  Options o;
  bool shape_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag == "--checkpointing") {
      o.checkpointing = true;
      continue;
    }
    if (flag == "--no-generation") {
      o.generation = false;
      continue;
    }
    if (i + 1 >= args.size()) throw Error(flag + ": unknown flag or missing value (see --help)");
    const std::string& v = args[++i];
    if (flag == "--model") o.model = v;
    else if (flag == "--hidden") o.hidden = positive(flag, v), shape_given = true;
    else if (flag == "--layers") o.layers = positive(flag, v), shape_given = true;
    else if (flag == "--heads") o.heads = positive(flag, v), shape_given = true;
    else if (flag == "--kv-heads") o.kv_heads = positive(flag, v), shape_given = true;
    else if (flag == "--intermediate") o.intermediate = positive(flag, v), shape_given = true;
    else if (flag == "--vocab") o.vocab = positive(flag, v, 4), shape_given = true;
    else if (flag == "--lora-r") o.lora_r = positive(flag, v, 0);
    else if (flag == "--batch") o.batch = positive(flag, v);
    else if (flag == "--repeats") o.repeats = positive(flag, v);
    else if (flag == "--warmup") o.warmup = positive(flag, v, 0);
    else if (flag == "--max-sequences") o.max_sequences = positive(flag, v);
    else if (flag == "--gen-new") o.gen_new = positive(flag, v);
    else if (flag == "--threads") o.threads = static_cast<int>(positive(flag, v, 0));
    else if (flag == "--seed") o.seed = positive(flag, v, 0);
    else if (flag == "--profile") o.profile = positive(flag, v, 0);
    else if (flag == "--device") o.device = v;
    else if (flag == "--dtype") o.dtype = v;
    else if (flag == "--one") o.one = v;
    else if (flag == "--peak-tflops") {
      try {
        o.peak_tflops = std::stod(v);
      } catch (const std::exception&) {
        o.peak_tflops = -1;
      }
      if (!(o.peak_tflops > 0)) throw Error("--peak-tflops: expected a positive number, got '" + v + "'");
    } else if (flag == "--k") {
      o.ks.clear();
      for (const auto& part : split(v, ',')) o.ks.push_back(positive(flag, part, 2));
      if (o.ks.empty()) throw Error("--k: expected a list such as 2,4,8");
    } else if (flag == "--lengths") {
      o.lengths.clear();
      for (const auto& part : split(v, ',')) {
        const auto pr = split(part, '/');
        if (pr.size() != 2) throw Error("--lengths: expected PROMPT/RESPONSE pairs such as 256/64, got '" + part + "'");
        o.lengths.emplace_back(positive(flag, pr[0]), positive(flag, pr[1]));
      }
      if (o.lengths.empty()) throw Error("--lengths: expected a list such as 256/64,512/64");
    } else {
      throw Error(flag + ": unknown flag (see --help)");
    }
  }
  if (!o.model.empty() && shape_given) throw Error("--model: give a model folder or shape flags, not both");
  if (o.kv_heads == 0) o.kv_heads = o.heads;
  if (o.hidden % o.heads != 0 || (o.hidden / o.heads) % 2 != 0)
    throw Error("--hidden: must be a multiple of --heads with an even head size, got " + std::to_string(o.hidden) +
                " and " + std::to_string(o.heads) + " heads");
  if (o.heads % o.kv_heads != 0) throw Error("--kv-heads: must divide --heads");
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Peak resident set of this process (its own address space: VmHWM, which a
// fork's copied pages do not inflate as getrusage's ru_maxrss would), in MiB.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

void reset_cuda_peak(const torch::Device& device) {
#ifdef LIRE_BENCH_CUDA_STATS
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#else
  (void)device;
#endif
}

// Peak bytes allocated by the CUDA caching allocator since the last reset, in MiB (-1: not CUDA).
double cuda_peak_mib(const torch::Device& device) {
#ifdef LIRE_BENCH_CUDA_STATS
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);  // [0]: all pools
  }
#endif
  (void)device;
  return -1;
}

// The compute dtype: fp32 on CPU, bf16 on CUDA unless --dtype says otherwise.
torch::Dtype compute_dtype(const Options& o, const torch::Device& device) {
  return lire::models::resolve_dtype(o.dtype, device);
}

// GEMM rate (FLOP/s) of an n x n x n matmul in `dtype`: median of repeats after one warm-up,
// into one preallocated output (the kernel's rate, without a fresh allocation's page faults).
double gemm_rate(const torch::Device& device, torch::Dtype dtype, std::int64_t n, int repeats) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);
  const auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  auto c = torch::empty({n, n}, opts);
  torch::mm_out(c, a, b);
  synchronize(device);
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    synchronize(device);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(n * n * n) / median(times);
}

lire::models::LlamaForCausalLM build_model(const Options& o, const torch::Device& device) {
  lire::models::LoadOptions load;
  load.dtype = o.dtype;
  load.device = device.str();
  if (!o.model.empty()) return lire::models::load_causal_lm(o.model, load);
  lire::io::LlamaConfig c;
  c.hidden_size = o.hidden;
  c.num_hidden_layers = o.layers;
  c.num_attention_heads = o.heads;
  c.num_key_value_heads = o.kv_heads;
  c.head_dim = o.hidden / o.heads;
  c.intermediate_size = o.intermediate;
  c.vocab_size = o.vocab;
  c.max_position_embeddings = 8192;
  lire::models::LlamaForCausalLM model(c, torch::TensorOptions().dtype(compute_dtype(o, device)).device(device));
  model->init_weights();
  return model;
}

// Random token ids in [3, vocab) (0-2: pad/BOS/EOS in Llama vocabularies).
std::vector<std::int64_t> random_ids(std::mt19937_64& rng, std::int64_t n, std::int64_t vocab) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (auto& id : ids) id = 3 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(vocab - 3));
  return ids;
}

// ---------------------------------------------------------------- op profile
//
// Self time of every LibTorch op (RecordFunction callbacks: an op's time
// minus that of the ops it calls), summed by op name over one step. Autograd
// nodes ("autograd::engine::evaluate_function: MmBackward0") count only what
// their kernels do not. On CUDA the times are the host's (launches), not the
// kernels'.
struct GemmTotals {
  double seconds = 0, flops = 0;
  std::int64_t calls = 0;
};
struct OpTotals {
  std::mutex mutex;
  std::map<std::string, std::pair<double, std::int64_t>> by_name;  // seconds, calls
  std::map<std::string, GemmTotals> gemms;  // aten::mm / addmm by operand shapes
};
OpTotals& op_totals() {
  static OpTotals totals;
  return totals;
}

struct OpFrame {
  std::chrono::steady_clock::time_point start;
  double children = 0;
};
thread_local std::vector<OpFrame> op_stack;

struct OpContext : at::ObserverContext {};

std::unique_ptr<at::ObserverContext> op_enter(const at::RecordFunction&) {
  op_stack.push_back({std::chrono::steady_clock::now(), 0.0});
  return std::make_unique<OpContext>();
}

void op_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  if (op_stack.empty()) return;
  const auto frame = op_stack.back();
  op_stack.pop_back();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - frame.start).count();
  if (!op_stack.empty()) op_stack.back().children += total;
  const std::string name = fn.name();
  // A GEMM's shapes: [M, K] x [K, N] (addmm: the bias first).
  std::string shape;
  double flops = 0;
  if (name == "aten::mm" || name == "aten::addmm") {
    const auto inputs = fn.inputs();
    const std::size_t first = name == "aten::addmm" ? 1 : 0;
    if (inputs.size() >= first + 2 && inputs[first].isTensor() && inputs[first + 1].isTensor()) {
      const auto a = inputs[first].toTensor().sizes(), b = inputs[first + 1].toTensor().sizes();
      if (a.size() == 2 && b.size() == 2) {
        shape = name + " [" + std::to_string(a[0]) + "x" + std::to_string(a[1]) + "]x[" + std::to_string(b[0]) + "x" +
                std::to_string(b[1]) + "]";
        flops = 2.0 * static_cast<double>(a[0]) * static_cast<double>(a[1]) * static_cast<double>(b[1]);
      }
    }
  }
  auto& totals = op_totals();
  std::lock_guard<std::mutex> lock(totals.mutex);
  auto& entry = totals.by_name[name];
  entry.first += total - frame.children;
  entry.second += 1;
  if (!shape.empty()) {
    auto& g = totals.gemms[shape];
    g.seconds += total - frame.children;
    g.flops += flops;
    g.calls += 1;
  }
}

// Runs `step` once with every op timed and prints the `top` ops with the most
// self time to stderr.
template <class F>
void profile_step(const torch::Device& device, std::int64_t top, const std::string& title, F&& step) {
  op_totals().by_name.clear();
  op_totals().gemms.clear();
  const auto handle = at::addGlobalCallback(at::RecordFunctionCallback(op_enter, op_exit).needsInputs(true));
  const auto t0 = std::chrono::steady_clock::now();
  step();
  synchronize(device);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  at::removeCallback(handle);
  std::vector<std::pair<double, std::pair<std::string, std::int64_t>>> rows;
  double counted = 0;
  for (const auto& [name, e] : op_totals().by_name) {
    rows.push_back({e.first, {name, e.second}});
    counted += e.first;
  }
  std::sort(rows.rbegin(), rows.rend());
  std::fprintf(stderr, "profile of one step, %s: %.1f ms wall, %.1f ms in ops\n", title.c_str(), wall * 1e3,
               counted * 1e3);
  std::fprintf(stderr, "%10s %6s %7s  %s\n", "self ms", "%", "calls", "op");
  for (std::size_t i = 0; i < rows.size() && static_cast<std::int64_t>(i) < top; ++i)
    std::fprintf(stderr, "%10.1f %6.1f %7lld  %s\n", rows[i].first * 1e3, 100.0 * rows[i].first / wall,
                 static_cast<long long>(rows[i].second.second), rows[i].second.first.c_str());
  // The GEMMs by shape, with the rate each ran at (summed over the threads
  // that ran them: attention's per-head GEMMs run one per thread).
  std::vector<std::pair<double, std::string>> gemms;
  for (const auto& [shape, g] : op_totals().gemms) gemms.push_back({g.seconds, shape});
  std::sort(gemms.rbegin(), gemms.rend());
  std::fprintf(stderr, "%10s %6s %7s %8s  %s\n", "self ms", "%", "calls", "GFLOP/s", "GEMM");
  for (std::size_t i = 0; i < gemms.size() && static_cast<std::int64_t>(i) < top; ++i) {
    const auto& g = op_totals().gemms[gemms[i].second];
    std::fprintf(stderr, "%10.1f %6.1f %7lld %8.1f  %s\n", g.seconds * 1e3, 100.0 * g.seconds / wall,
                 static_cast<long long>(g.calls), g.seconds > 0 ? g.flops / g.seconds * 1e-9 : 0.0,
                 gemms[i].second.c_str());
  }
}

template <class F>
std::vector<double> timed(const torch::Device& device, std::int64_t warmup, std::int64_t repeats, F&& f) {
  for (std::int64_t w = 0; w < warmup; ++w) f();
  synchronize(device);
  std::vector<double> times;
  for (std::int64_t r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    synchronize(device);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return times;
}

// ---------------------------------------------------------------- one configuration (child)

// "train:K:P:R:shared|naive": median step seconds, the first step's log-probs,
// and the parameter counts of the FLOP formula.
void run_train(const Options& o, const torch::Device& device, const std::vector<std::string>& spec) {
  if (spec.size() != 5) throw Error("--one: bad train spec");
  const auto K = std::stoll(spec[1]), P = std::stoll(spec[2]), R = std::stoll(spec[3]);
  const bool shared = spec[4] == "shared";
  auto model = build_model(o, device);
  model->model->gradient_checkpointing = o.checkpointing;
  double nonembedding = 0, head = 0;
  for (const auto& p : model->named_parameters()) {
    const auto& name = p.key();
    if (name.find("lora_") != std::string::npos) continue;
    if (name.find("embed_tokens") != std::string::npos) continue;
    if (name.find("lm_head") != std::string::npos) continue;
    nonembedding += static_cast<double>(p.value().numel());
  }
  head = static_cast<double>(model->head_weight().numel());
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  if (o.lora_r > 0) {
    lire::config::LoraOptions lora;
    lora.r = o.lora_r;
    lora.alpha = 2.0 * static_cast<double>(o.lora_r);
    lora.targets = {"q_proj", "v_proj"};
    lire::models::apply_lora(*model, lora);
    trainable = lire::models::lora_parameters(*model);
  } else {
    for (const auto& p : model->named_parameters())
      if (p.value().requires_grad()) trainable.emplace_back(p.key(), p.value());
  }
  model->to(device);
  model->train();
  auto optimizer = lire::train::make_adamw(trainable, {});
  const auto params = lire::train::all_params(*optimizer);
  const auto loss = lire::losses::make("lire");

  std::mt19937_64 rng(static_cast<std::uint64_t>(o.seed));
  const auto vocab = model->config().vocab_size;
  std::vector<lire::models::ListTokens> lists(static_cast<std::size_t>(o.batch));
  std::vector<float> rewards;
  for (auto& list : lists) {
    list.prompt_ids = random_ids(rng, P, vocab);
    list.prompt_ids[0] = 1;  // BOS
    for (std::int64_t k = 0; k < K; ++k) list.response_ids.push_back(random_ids(rng, R, vocab));
    for (std::int64_t k = 0; k < K; ++k) rewards.push_back(static_cast<float>(rng() % 1000) / 1000.0f);
  }
  const auto reward_tensor = torch::tensor(rewards).view({o.batch, K}).to(device);
  lire::models::LogprobOptions lp;
  lp.shared_prompt = shared;
  lp.max_sequences = o.max_sequences;

  torch::Tensor first_logps;
  auto step = [&]() {
    lire::train::zero_grads(params);
    const auto batch = lire::models::batch_logprobs(*model, lists, lp);
    if (!first_logps.defined()) first_logps = batch.logps.detach().to(torch::kFloat64).cpu().flatten();
    lire::losses::LossInput in;
    in.logps = batch.logps;
    in.mask = batch.mask;
    in.token_counts = batch.token_counts;
    in.rewards = reward_tensor.to(batch.logps.scalar_type());
    const auto out = loss->forward(in);
    out.loss.backward();
    optimizer->step();
  };
  // The GEMM rate just before and just after each timed step: on a shared or
  // throttling machine the rate drifts (on the 2-core VM by 10-30 % between
  // minutes), and a step's limit should use the rate the machine had while
  // that step ran. The row reports the median of the steps' rates.
  const auto dtype = compute_dtype(o, device);
  const std::int64_t n = device.is_cuda() ? 8192 : 2048;
  reset_cuda_peak(device);
  for (std::int64_t w = 0; w < o.warmup; ++w) step();
  std::vector<double> times, rates;
  for (std::int64_t r = 0; r < o.repeats; ++r) {
    const double before = gemm_rate(device, dtype, n, 1);
    times.push_back(timed(device, 0, 1, step).front());
    rates.push_back(0.5 * (before + gemm_rate(device, dtype, n, 1)));
  }
  if (o.profile > 0) profile_step(device, o.profile, o.one, step);
  std::printf("RESULT step_s=%.9g gemm=%.6g nonembedding=%.0f head=%.0f rss_mib=%.1f cuda_mib=%.1f logps=",
              median(times), median(rates), nonembedding, head, peak_rss_mib(), cuda_peak_mib(device));
  for (std::int64_t i = 0; i < first_logps.numel(); ++i)
    std::printf("%s%.9g", i ? "," : "", first_logps[i].item<double>());
  std::printf("\n");
}

// "gen:decode:B" (B prompts, greedy) or "gen:samples:K:reuse|separate" (one
// prompt, K samples): median seconds of generate() with 1 new token (the
// prefill and the first logits) and with gen_new + 1 (gen_new decode steps more).
void run_gen(const Options& o, const torch::Device& device, const std::vector<std::string>& spec) {
  auto model = build_model(o, device);
  const auto vocab = model->config().vocab_size;
  const auto P = o.lengths.front().first;
  std::mt19937_64 rng(static_cast<std::uint64_t>(o.seed));
  lire::generate::GenerateOptions g;
  g.eos_ids = {-1};  // every row runs to max_new_tokens
  std::int64_t prompts_n = 1;
  if (spec.size() == 3 && spec[1] == "decode") {
    g.strategy = "greedy";
    prompts_n = std::stoll(spec[2]);
    g.batch_prompts = prompts_n;
  } else if (spec.size() == 4 && spec[1] == "samples") {
    g.strategy = "sample";
    g.temperature = 0.7;
    g.top_k = 40;
    g.num_samples = std::stoll(spec[2]);
    g.reuse_prompt_cache = spec[3] == "reuse";
  } else {
    throw Error("--one: bad gen spec");
  }
  std::vector<std::vector<std::int64_t>> prompts;
  for (std::int64_t p = 0; p < prompts_n; ++p) {
    prompts.push_back(random_ids(rng, P, vocab));
    prompts.back()[0] = 1;
  }
  reset_cuda_peak(device);
  g.max_new_tokens = 1;
  const double first = median(timed(device, 1, o.repeats, [&] { lire::generate::generate(*model, prompts, g); }));
  g.max_new_tokens = o.gen_new + 1;
  const double full = median(timed(device, 1, o.repeats, [&] { lire::generate::generate(*model, prompts, g); }));
  std::printf("RESULT first_s=%.9g full_s=%.9g rss_mib=%.1f cuda_mib=%.1f\n", first, full, peak_rss_mib(),
              cuda_peak_mib(device));
}

// ---------------------------------------------------------------- driver (parent)

using Result = std::map<std::string, std::string>;

// Runs this program again with `--one spec` and parses its RESULT line.
Result run_child(const std::vector<std::string>& args, const std::string& spec) {
  std::vector<std::string> child_args = {"lire-bench"};
  child_args.insert(child_args.end(), args.begin(), args.end());
  child_args.push_back("--one");
  child_args.push_back(spec);
  int fds[2];
  if (pipe(fds) != 0) throw Error("pipe failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw Error("fork failed");
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (auto& a : child_args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    std::perror("lire-bench: exec /proc/self/exe");
    _exit(127);
  }
  close(fds[1]);
  std::string output;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0) output.append(buffer, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("configuration " + spec + " failed (its error is above)");
  Result result;
  const auto at = output.find("RESULT ");
  if (at == std::string::npos) throw Error("configuration " + spec + " printed no RESULT line");
  std::stringstream line(output.substr(at + 7, output.find('\n', at) - at - 7));
  std::string field;
  while (line >> field) {
    const auto eq = field.find('=');
    if (eq != std::string::npos) result[field.substr(0, eq)] = field.substr(eq + 1);
  }
  return result;
}

double num(const Result& r, const std::string& key) { return std::stod(r.at(key)); }

std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

std::string memory(const Result& r) {
  std::string s = fixed(num(r, "rss_mib"), 0);
  if (num(r, "cuda_mib") >= 0) s += " / " + fixed(num(r, "cuda_mib"), 0);
  return s;
}

int drive(const Options& o, const std::vector<std::string>& args) {
  const auto device = lire::resolve_device(o.device);
  const auto dtype = compute_dtype(o, device);
  const std::int64_t n = device.is_cuda() ? 8192 : 2048;
  const double gemm = gemm_rate(device, dtype, n, 5);
  const double peak = o.peak_tflops > 0 ? o.peak_tflops * 1e12 : 0;
  const std::string shape = o.model.empty()
                                ? "random Llama: hidden " + std::to_string(o.hidden) + ", " + std::to_string(o.layers) +
                                      " layers, " + std::to_string(o.heads) + "/" + std::to_string(o.kv_heads) +
                                      " heads, intermediate " + std::to_string(o.intermediate) + ", vocab " +
                                      std::to_string(o.vocab)
                                : o.model;
  std::printf("lire-bench: %s; %s, %s, %d threads\n", shape.c_str(), lire::torch_description().c_str(),
              device.str().c_str(), static_cast<int>(at::get_num_threads()));
  std::printf("GEMM rate (%s, %lld^3, median of 5): %.1f GFLOP/s\n", c10::toString(dtype), static_cast<long long>(n),
              gemm / 1e9);
  std::printf("train step: %s, LIRE loss + AdamW, %lld list(s) a step, median of %lld after %lld warm-up%s\n\n",
              o.lora_r > 0 ? ("LoRA r " + std::to_string(o.lora_r) + " on q_proj, v_proj").c_str()
                           : "full fine-tuning",
              static_cast<long long>(o.batch), static_cast<long long>(o.repeats), static_cast<long long>(o.warmup),
              o.checkpointing ? ", gradient checkpointing" : "");
  const bool cuda = device.is_cuda();
  std::printf("| K | P/R | path | step ms | lists/s | tokens/s | ratio | GEMM GFLOP/s | limit ms | x limit |%s max abs "
              "dlogp | peak RSS MiB%s |\n",
              peak > 0 ? " MFU |" : "", cuda ? " / CUDA MiB" : "");
  std::printf("|---|---|---|---|---|---|---|---|---|---|%s---|---|\n", peak > 0 ? "---|" : "");
  const double c = o.lora_r > 0 ? 4.0 : 6.0;
  const double B = static_cast<double>(o.batch);
  for (const auto& [P, R] : o.lengths)
    for (const auto K : o.ks) {
      double naive_rate = 0;
      std::vector<double> naive_logps;
      for (const bool shared : {false, true}) {
        const auto r = run_child(args, "train:" + std::to_string(K) + ":" + std::to_string(P) + ":" +
                                           std::to_string(R) + ":" + (shared ? "shared" : "naive"));
        const double t = num(r, "step_s");
        const double decoder_tokens = B * (shared ? static_cast<double>(P + K * R) : static_cast<double>(K * (P + R)));
        const double flops = c * (num(r, "nonembedding") * decoder_tokens + num(r, "head") * B * K * R);
        const double row_gemm = r.count("gemm") ? num(r, "gemm") : gemm;  // the rate while this row ran
        const double limit = flops / row_gemm;
        std::vector<double> logps;
        for (const auto& v : split(r.at("logps"), ',')) logps.push_back(std::stod(v));
        const double lists = B / t;
        std::string ratio = "", diff = "";
        if (!shared) {
          naive_rate = lists;
          naive_logps = logps;
        } else {
          ratio = fixed(lists / naive_rate, 2) + "x";
          double d = 0;
          for (std::size_t i = 0; i < logps.size() && i < naive_logps.size(); ++i)
            d = std::max(d, std::abs(logps[i] - naive_logps[i]));
          char text[32];
          std::snprintf(text, sizeof text, "%.2g", d);
          diff = text;
        }
        std::printf("| %lld | %lld/%lld | %s | %s | %s | %s | %s | %s | %s | %s |%s %s | %s |\n",
                    static_cast<long long>(K), static_cast<long long>(P), static_cast<long long>(R),
                    shared ? "shared" : "naive", fixed(t * 1e3, 1).c_str(), fixed(lists, 2).c_str(),
                    fixed(B * K * (P + R) / t, 0).c_str(), ratio.c_str(), fixed(row_gemm / 1e9, 1).c_str(),
                    fixed(limit * 1e3, 1).c_str(),
                    fixed(t / limit, 2).c_str(), peak > 0 ? (" " + fixed(100 * flops / t / peak, 1) + "% |").c_str() : "",
                    diff.c_str(), memory(r).c_str());
        std::fflush(stdout);
      }
    }
  if (!o.generation) return 0;
  const auto P = o.lengths.front().first;
  std::printf("\ngeneration: prompts of %lld tokens, %lld new tokens a row (EOS off), median of %lld after 1 warm-up\n\n",
              static_cast<long long>(P), static_cast<long long>(o.gen_new), static_cast<long long>(o.repeats));
  std::printf("| case | rows | prefill ms | prefill tokens/s | decode tokens/s | total ms | ratio | peak RSS MiB%s |\n",
              cuda ? " / CUDA MiB" : "");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  const auto row = [&](const std::string& label, std::int64_t rows, std::int64_t prefilled, const Result& r,
                       const std::string& ratio) {
    const double first = num(r, "first_s"), full = num(r, "full_s");
    std::printf("| %s | %lld | %s | %s | %s | %s | %s | %s |\n", label.c_str(), static_cast<long long>(rows),
                fixed(first * 1e3, 1).c_str(), fixed(static_cast<double>(prefilled * P) / first, 0).c_str(),
                fixed(static_cast<double>(rows * o.gen_new) / (full - first), 1).c_str(), fixed(full * 1e3, 1).c_str(),
                ratio.c_str(), memory(r).c_str());
    std::fflush(stdout);
  };
  for (const std::int64_t b : {1, 8}) row("greedy, batch " + std::to_string(b), b, b, run_child(args, "gen:decode:" + std::to_string(b)), "");
  for (const auto K : o.ks) {
    const auto reuse = run_child(args, "gen:samples:" + std::to_string(K) + ":reuse");
    const auto separate = run_child(args, "gen:samples:" + std::to_string(K) + ":separate");
    row(std::to_string(K) + " samples, prompt cache reused", K, 1, reuse, "");
    row(std::to_string(K) + " samples, " + std::to_string(K) + " prefills", K, K, separate,
        fixed(num(separate, "first_s") / num(reuse, "first_s"), 2) + "x / " +
            fixed(num(separate, "full_s") / num(reuse, "full_s"), 2) + "x");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    const Options o = parse(args);
    lire::config::RuntimeOptions runtime;
    runtime.threads = o.threads;
    runtime.device = o.device;
    runtime.seed = o.seed;
    lire::apply_runtime(runtime);
    if (o.one.empty()) return drive(o, args);
    const auto device = lire::resolve_device(o.device);
    const auto spec = split(o.one, ':');
    if (!spec.empty() && spec[0] == "train") run_train(o, device, spec);
    else if (!spec.empty() && spec[0] == "gen") run_gen(o, device, spec);
    else throw Error("--one: unknown configuration '" + o.one + "'");
  } catch (const std::exception& e) {
    std::cerr << "lire-bench: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

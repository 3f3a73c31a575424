// Greedy and sampled decoding with the KV cache (see the header).
#include "lire/generate/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include <torch/torch.h>

#include "lire/core/error.h"

namespace lire::generate {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A uniform double in [0, 1) from the top 53 bits (the same on every platform).
double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Decodes one batch of prompts; `first` is the index of its first prompt.
void generate_batch(models::LlamaForCausalLMImpl& model, const std::vector<std::vector<std::int64_t>>& prompts,
                    std::size_t first, std::size_t count, const GenerateOptions& o,
                    const std::vector<std::uint64_t>& keys, const std::vector<std::int64_t>& eos, const StopCheck& stop,
                    std::vector<std::vector<Generation>>& out) {
  const auto device = model.head_weight().device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  const auto P = static_cast<std::int64_t>(count);
  const std::int64_t K = o.num_samples;
  const std::int64_t R = P * K;
  const bool greedy = o.strategy == "greedy" || o.temperature == 0.0;

  // Left-padded prompts, prefilled once.
  std::size_t T = 0;
  for (std::size_t p = 0; p < count; ++p) T = std::max(T, prompts[first + p].size());
  std::vector<std::int64_t> ids(static_cast<std::size_t>(P) * T, 0), mask(static_cast<std::size_t>(P) * T, 0);
  for (std::size_t p = 0; p < count; ++p) {
    const auto& prompt = prompts[first + p];
    const std::size_t pad = T - prompt.size();
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      ids[p * T + pad + t] = prompt[t];
      mask[p * T + pad + t] = 1;
    }
  }
  const auto T64 = static_cast<std::int64_t>(T);
  auto attention = torch::tensor(mask, torch::kLong).view({P, T64}).to(device);
  models::KVCache cache;
  auto hidden = model.forward(torch::tensor(ids, torch::kLong).view({P, T64}).to(device), attention, {}, &cache);
  auto logits = model.logits(hidden.select(1, -1));  // [P, V]

  // K rows a prompt: copy the prompt's cache rows instead of prefilling again.
  if (K > 1) {
    const auto rows = torch::arange(P, long_opts).repeat_interleave(K);
    cache.select_rows(rows);
    attention = attention.index_select(0, rows);
    logits = logits.index_select(0, rows);
  }

  std::vector<std::mt19937_64> streams;
  if (!greedy) {
    streams.reserve(static_cast<std::size_t>(R));
    for (std::int64_t r = 0; r < R; ++r) {
      const std::size_t p = first + static_cast<std::size_t>(r / K);
      const std::uint64_t key = keys.empty() ? static_cast<std::uint64_t>(p) : keys[p];
      streams.emplace_back(stream_seed(o.seed, key, r % K));
    }
  }
  std::vector<Generation> rows(static_cast<std::size_t>(R));
  std::vector<bool> done(static_cast<std::size_t>(R), false);
  std::int64_t remaining = R;
  const std::int64_t pad_token = eos.empty() ? 0 : eos.front();

  for (std::int64_t step = 0; step < o.max_new_tokens && remaining > 0; ++step) {
    const auto model_logprobs = torch::log_softmax(logits.to(torch::kFloat64), -1);  // [R, V]
    torch::Tensor next;
    if (greedy) {
      next = logits.argmax(-1);
    } else {
      std::vector<double> u(static_cast<std::size_t>(R), 0.0);
      for (std::int64_t r = 0; r < R; ++r)
        if (!done[r]) u[r] = uniform(streams[r]);  // finished rows draw nothing: streams stay per sample
      next = draw_tokens(filtered_logprobs(logits, o.temperature, o.top_k, o.top_p), u);
    }
    next = next.to(torch::kLong);
    const auto chosen = model_logprobs.gather(1, next.unsqueeze(1)).squeeze(1).cpu();
    const auto next_cpu = next.cpu();
    const auto* tok = next_cpu.data_ptr<std::int64_t>();
    const auto* lp = chosen.data_ptr<double>();
    std::vector<std::int64_t> feed(static_cast<std::size_t>(R), pad_token);
    for (std::int64_t r = 0; r < R; ++r) {
      if (done[r]) continue;
      auto& g = rows[r];
      g.logprob += lp[r];
      if (std::find(eos.begin(), eos.end(), tok[r]) != eos.end()) {
        g.finish = "eos";
      } else {
        g.ids.push_back(tok[r]);
        feed[r] = tok[r];
        if (stop && stop(first + static_cast<std::size_t>(r / K), r % K, g.ids)) g.finish = "stop";
      }
      if (!g.finish.empty()) {
        done[r] = true;
        --remaining;
      }
    }
    if (remaining == 0 || step + 1 == o.max_new_tokens) break;
    attention = torch::cat({attention, torch::ones({R, 1}, long_opts)}, 1);
    hidden = model.forward(torch::tensor(feed, torch::kLong).view({R, 1}).to(device), attention, {}, &cache);
    logits = model.logits(hidden.select(1, -1));
  }
  for (std::int64_t r = 0; r < R; ++r) {
    auto& g = rows[r];
    if (g.finish.empty()) g.finish = "length";
    out[first + static_cast<std::size_t>(r / K)][static_cast<std::size_t>(r % K)] = std::move(g);
  }
}

}  // namespace

void validate(const GenerateOptions& o) {
  if (o.strategy != "greedy" && o.strategy != "sample")
    throw ConfigError(str("sample.strategy: must be greedy or sample, got '", o.strategy, "'"));
  if (o.max_new_tokens < 1) throw ConfigError(str("sample.max_new_tokens: must be >= 1, got ", o.max_new_tokens));
  if (o.num_samples < 1) throw ConfigError(str("sample.num_samples: must be >= 1, got ", o.num_samples));
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw ConfigError(str("sample.temperature: must be >= 0, got ", o.temperature));
  if (o.top_k < 0) throw ConfigError(str("sample.top_k: must be >= 0 (0 = off), got ", o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) throw ConfigError(str("sample.top_p: must be in (0, 1], got ", o.top_p));
  if (o.batch_prompts < 1) throw ConfigError(str("sample.batch_prompts: must be >= 1, got ", o.batch_prompts));
}

std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t key, std::int64_t sample) {
  return splitmix64(splitmix64(splitmix64(seed) ^ key) ^ static_cast<std::uint64_t>(sample));
}

torch::Tensor filtered_logprobs(const torch::Tensor& logits, double temperature, std::int64_t top_k, double top_p) {
  LIRE_CHECK(temperature > 0, "filtered_logprobs: temperature must be > 0");
  LIRE_CHECK(logits.dim() == 2, "filtered_logprobs: logits must be [R, V]");
  const double ninf = -std::numeric_limits<double>::infinity();
  auto scores = logits.to(torch::kFloat64) / temperature;
  const auto V = scores.size(1);
  if (top_k > 0 && top_k < V) {
    // HF TopKLogitsWarper: remove scores below the k-th largest (ties kept).
    const auto kth = std::get<0>(scores.topk(top_k, -1)).select(1, top_k - 1).unsqueeze(1);
    scores = scores.masked_fill(scores < kth, ninf);
  }
  if (top_p < 1.0) {
    // HF TopPLogitsWarper: sort ascending, drop the tokens whose cumulative
    // probability stays <= 1 - top_p; the most likely token is always kept.
    const auto [sorted, order] = scores.sort(-1, /*descending=*/false);
    const auto cumulative = sorted.softmax(-1).cumsum(-1);
    auto remove_sorted = cumulative <= (1.0 - top_p);
    remove_sorted.select(1, V - 1).fill_(false);
    const auto remove = remove_sorted.scatter(1, order, remove_sorted);
    scores = scores.masked_fill(remove, ninf);
  }
  return torch::log_softmax(scores, -1);
}

torch::Tensor draw_tokens(const torch::Tensor& logprobs, const std::vector<double>& u) {
  LIRE_CHECK(logprobs.dim() == 2 && static_cast<std::size_t>(logprobs.size(0)) == u.size(),
             "draw_tokens: one uniform per row");
  const auto probs = logprobs.to(torch::kFloat64).exp();
  const auto cumulative = probs.cumsum(-1);
  const auto total = cumulative.select(1, -1).unsqueeze(1);
  const auto target = torch::tensor(u, torch::kFloat64).to(probs.device()).unsqueeze(1) * total;
  // The first index whose cumulative mass exceeds the target, skipping
  // zero-probability tokens (a target of exactly 0 must not pick one).
  auto index = (cumulative <= target).sum(-1);
  index = torch::minimum(index, torch::full_like(index, probs.size(1) - 1));
  // Rounding can land on a token of zero probability at the top end: step back to the last supported one.
  const auto picked_zero = probs.gather(1, index.unsqueeze(1)).squeeze(1) <= 0;
  if (picked_zero.any().item<bool>()) {
    const auto ids = torch::arange(probs.size(1), index.options()).unsqueeze(0).expand_as(probs);
    const auto last_supported = torch::where(probs > 0, ids, torch::full_like(ids, -1)).amax(-1);
    index = torch::where(picked_zero, last_supported, index);
  }
  return index;
}

std::vector<std::vector<Generation>> generate(models::LlamaForCausalLMImpl& model,
                                              const std::vector<std::vector<std::int64_t>>& prompts,
                                              const GenerateOptions& options, const std::vector<std::uint64_t>& keys,
                                              const StopCheck& stop) {
  validate(options);
  LIRE_CHECK(keys.empty() || keys.size() == prompts.size(), "generate: one key per prompt");
  const auto vocab = model.config().vocab_size;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    LIRE_CHECK(!prompts[p].empty(), "generate: prompt ", p, " is empty (it needs at least BOS)");
    for (auto id : prompts[p])
      LIRE_CHECK(id >= 0 && id < vocab, "generate: prompt ", p, " has token id ", id, " outside [0, ", vocab, ")");
  }
  std::vector<std::int64_t> eos = options.eos_ids;
  if (eos.empty()) eos = model.config().eos_token_ids;
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<std::vector<Generation>> out(prompts.size(),
                                           std::vector<Generation>(static_cast<std::size_t>(options.num_samples)));
  const auto per_batch = static_cast<std::size_t>(options.batch_prompts);
  for (std::size_t first = 0; first < prompts.size(); first += per_batch)
    generate_batch(model, prompts, first, std::min(per_batch, prompts.size() - first), options, keys, eos, stop, out);
  if (was_training) model.train();
  return out;
}

}  // namespace lire::generate

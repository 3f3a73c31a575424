// Greedy and sampled decoding with the KV cache (see the header).
#include "lire/generate/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/portable_random.h"

namespace lire::generate {
namespace {


// Incremental decoding of one batch of prompts, whatever the architecture:
// start() encodes / prefills prompts [first, first + count), each repeated
// rows_per_prompt times (samples or beams) without computing it again, and
// returns the logits [rows, V] of every row's first new token; step() feeds
// one token per row and returns the next logits; select_rows() reorders the
// rows' state (beam search).
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual torch::Tensor start(const std::vector<std::vector<std::int64_t>>& prompts, std::size_t first,
                              std::size_t count, std::int64_t rows_per_prompt) = 0;
  virtual torch::Tensor step(const torch::Tensor& tokens) = 0;
  virtual void select_rows(const torch::Tensor& index) = 0;
  virtual torch::Device device() const = 0;
  // The token finished rows are fed (their outputs are never read).
  virtual std::int64_t filler_token() const = 0;
};

// Row indices [P * rows_per_prompt]: each prompt's index repeated.
torch::Tensor repeated_rows(std::int64_t P, std::int64_t rows_per_prompt, const torch::Device& device) {
  return torch::arange(P, torch::TensorOptions().dtype(torch::kLong).device(device)).repeat_interleave(rows_per_prompt);
}

// Prompts [first, first + count) padded into one batch: ids and mask [count, T]
// (mask 1 on real tokens), padding on the left or on the right with `pad_id`.
struct PaddedPrompts {
  torch::Tensor ids, mask;
};
PaddedPrompts pad_prompts(const std::vector<std::vector<std::int64_t>>& prompts, std::size_t first, std::size_t count,
                          bool left, std::int64_t pad_id, const torch::Device& device) {
  std::size_t T = 0;
  for (std::size_t p = 0; p < count; ++p) T = std::max(T, prompts[first + p].size());
  std::vector<std::int64_t> ids(count * T, pad_id), mask(count * T, 0);
  for (std::size_t p = 0; p < count; ++p) {
    const auto& prompt = prompts[first + p];
    const std::size_t offset = left ? T - prompt.size() : 0;
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      ids[p * T + offset + t] = prompt[t];
      mask[p * T + offset + t] = 1;
    }
  }
  const auto shape = std::vector<std::int64_t>{static_cast<std::int64_t>(count), static_cast<std::int64_t>(T)};
  return {torch::tensor(ids, torch::kLong).view(shape).to(device), torch::tensor(mask, torch::kLong).view(shape).to(device)};
}

// A causal LM: prompts left-padded into one batch and prefilled once into the
// KV cache, whose rows are then copied per sample.
class CausalDecoder : public Decoder {
 public:
  CausalDecoder(models::LlamaForCausalLMImpl& model, std::int64_t filler) : model_(model), filler_(filler) {}

  torch::Tensor start(const std::vector<std::vector<std::int64_t>>& prompts, std::size_t first, std::size_t count,
                      std::int64_t rows_per_prompt) override {
    const auto dev = device();
    const auto P = static_cast<std::int64_t>(count);
    const auto batch = pad_prompts(prompts, first, count, /*left=*/true, 0, dev);
    cache_ = models::KVCache{};
    attention_ = batch.mask;
    const auto hidden = model_.forward(batch.ids, attention_, {}, &cache_);
    auto logits = model_.logits(hidden.select(1, -1));
    if (rows_per_prompt > 1) {
      const auto rows = repeated_rows(P, rows_per_prompt, dev);
      cache_.select_rows(rows);
      attention_ = attention_.index_select(0, rows);
      logits = logits.index_select(0, rows);
    }
    return logits;
  }

  torch::Tensor step(const torch::Tensor& tokens) override {
    const auto R = tokens.size(0);
    attention_ = torch::cat({attention_, torch::ones({R, 1}, attention_.options())}, 1);
    const auto hidden = model_.forward(tokens.view({R, 1}), attention_, {}, &cache_);
    return model_.logits(hidden.select(1, -1));
  }

  void select_rows(const torch::Tensor& index) override {
    cache_.select_rows(index);
    attention_ = attention_.index_select(0, index);
  }

  torch::Device device() const override { return model_.head_weight().device(); }
  std::int64_t filler_token() const override { return filler_; }

 private:
  models::LlamaForCausalLMImpl& model_;
  std::int64_t filler_;
  models::KVCache cache_;
  torch::Tensor attention_;  // [rows, T] 1 for real tokens
};

// T5: prompts right-padded and encoded once; each row's decoder starts from
// decoder_start_token_id, with the cross-attention keys/values of the encoder
// states computed on the first decoder step and kept in the cache.
class Seq2SeqDecoder : public Decoder {
 public:
  explicit Seq2SeqDecoder(models::T5ForConditionalGenerationImpl& model) : model_(model) {}

  torch::Tensor start(const std::vector<std::vector<std::int64_t>>& prompts, std::size_t first, std::size_t count,
                      std::int64_t rows_per_prompt) override {
    const auto dev = device();
    const auto P = static_cast<std::int64_t>(count);
    const auto batch = pad_prompts(prompts, first, count, /*left=*/false, model_.config().pad_token_id, dev);
    encoder_mask_ = batch.mask;
    encoder_states_ = model_.encode(batch.ids, encoder_mask_);
    if (rows_per_prompt > 1) {
      const auto rows = repeated_rows(P, rows_per_prompt, dev);
      encoder_states_ = encoder_states_.index_select(0, rows);
      encoder_mask_ = encoder_mask_.index_select(0, rows);
    }
    cache_ = models::T5DecoderCache{};
    const auto R = encoder_states_.size(0);
    return step(torch::full({R}, model_.config().decoder_start_token_id,
                            torch::TensorOptions().dtype(torch::kLong).device(dev)));
  }

  torch::Tensor step(const torch::Tensor& tokens) override {
    const auto hidden = model_.decode(tokens.view({tokens.size(0), 1}), encoder_states_, encoder_mask_, &cache_);
    return model_.logits(hidden.select(1, -1));
  }

  void select_rows(const torch::Tensor& index) override {
    cache_.select_rows(index);
    encoder_states_ = encoder_states_.index_select(0, index);
    encoder_mask_ = encoder_mask_.index_select(0, index);
  }

  torch::Device device() const override { return model_.head_weight().device(); }
  std::int64_t filler_token() const override { return model_.config().pad_token_id; }

 private:
  models::T5ForConditionalGenerationImpl& model_;
  models::T5DecoderCache cache_;
  torch::Tensor encoder_states_, encoder_mask_;  // [rows, S, d_model], [rows, S]
};

// decoder.start() for prompts [first, first + count) with rows_per_prompt rows
// each: one prefill per prompt, its cache copied to its rows (reuse), or one
// prefill per row (the prompt repeated rows_per_prompt times in the batch).
torch::Tensor start_rows(Decoder& decoder, const std::vector<std::vector<std::int64_t>>& prompts, std::size_t first,
                         std::size_t count, std::int64_t rows_per_prompt, bool reuse) {
  if (reuse || rows_per_prompt == 1) return decoder.start(prompts, first, count, rows_per_prompt);
  std::vector<std::vector<std::int64_t>> repeated;
  repeated.reserve(count * static_cast<std::size_t>(rows_per_prompt));
  for (std::size_t p = 0; p < count; ++p)
    for (std::int64_t k = 0; k < rows_per_prompt; ++k) repeated.push_back(prompts[first + p]);
  return decoder.start(repeated, 0, repeated.size(), 1);
}

// Decodes one batch of prompts; `first` is the index of its first prompt.
void generate_batch(Decoder& decoder, const std::vector<std::vector<std::int64_t>>& prompts,
                    std::size_t first, std::size_t count, const GenerateOptions& o,
                    const std::vector<std::uint64_t>& keys, const std::vector<std::int64_t>& eos, const StopCheck& stop,
                    std::vector<std::vector<Generation>>& out) {
  const auto device = decoder.device();
  const auto P = static_cast<std::int64_t>(count);
  const std::int64_t K = o.num_samples;
  const std::int64_t R = P * K;
  const bool greedy = o.strategy == "greedy" || o.temperature == 0.0;

  auto logits = start_rows(decoder, prompts, first, count, K, o.reuse_prompt_cache);

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
  const std::int64_t pad_token = decoder.filler_token();

  for (std::int64_t step = 0; step < o.max_new_tokens && remaining > 0; ++step) {
    const auto model_logprobs = torch::log_softmax(logits.to(torch::kFloat64), -1);  // [R, V]
    torch::Tensor next;
    if (greedy) {
      next = logits.argmax(-1);
    } else {
      std::vector<double> u(static_cast<std::size_t>(R), 0.0);
      for (std::int64_t r = 0; r < R; ++r)
        if (!done[r]) u[r] = uniform_unit(streams[r]);  // finished rows draw nothing: streams stay per sample
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
        g.eos_id = tok[r];
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
    logits = decoder.step(torch::tensor(feed, torch::kLong).to(device));
  }
  for (std::int64_t r = 0; r < R; ++r) {
    auto& g = rows[r];
    if (g.finish.empty()) g.finish = "length";
    out[first + static_cast<std::size_t>(r / K)][static_cast<std::size_t>(r % K)] = std::move(g);
  }
}

// ------------------------------------------------------------------ beams

struct Hypothesis {
  std::vector<std::int64_t> ids;
  double score = 0, model_logprob = 0;
  std::string finish;
  std::int64_t eos_id = -1;
};

// The best `capacity` finished hypotheses of one beam group (HF BeamHypotheses).
struct Hypotheses {
  std::size_t capacity = 0;
  double length_penalty = 1.0;
  std::vector<Hypothesis> kept;
  bool done = false;

  double worst() const {
    double w = std::numeric_limits<double>::infinity();
    for (const auto& h : kept) w = std::min(w, h.score);
    return w;
  }
  double score_of(double sum_logprobs, std::size_t generated) const {
    return sum_logprobs / std::pow(static_cast<double>(std::max<std::size_t>(generated, 1)), length_penalty);
  }
  void add(std::vector<std::int64_t> ids, double sum_logprobs, double model_logprob, const std::string& finish,
           std::int64_t eos_id = -1) {
    const double score = score_of(sum_logprobs, ids.size());
    if (kept.size() < capacity || score > worst()) {
      kept.push_back({std::move(ids), score, model_logprob, finish, eos_id});
      if (kept.size() > capacity) {
        auto it = std::min_element(kept.begin(), kept.end(),
                                   [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; });
        kept.erase(it);
      }
    }
  }
  // No running beam (best running sum `best`, `generated` tokens so far) can beat the worst kept.
  bool finished_by(double best, std::size_t generated) const {
    return kept.size() >= capacity && worst() >= score_of(best, generated);
  }
};

void beam_batch(Decoder& decoder, const std::vector<std::vector<std::int64_t>>& prompts,
                std::size_t first, std::size_t count, const GenerateOptions& o, const std::vector<std::int64_t>& eos,
                const StopCheck& stop, std::vector<std::vector<Generation>>& out) {
  const auto device = decoder.device();
  const auto P = static_cast<std::int64_t>(count);
  const std::int64_t NB = o.num_beams;
  const std::int64_t G = o.strategy == "diverse-beam" ? o.num_beam_groups : 1;
  const std::int64_t BG = NB / G;  // beams a group
  const std::int64_t R = P * NB;
  const double ninf = -std::numeric_limits<double>::infinity();

  auto logits = start_rows(decoder, prompts, first, count, NB, o.reuse_prompt_cache);

  // Beam state by row (p * NB + g * BG + j). At the start only the first beam
  // of each group is live, so a group does not fill itself with copies.
  std::vector<std::vector<std::int64_t>> beam_ids(static_cast<std::size_t>(R));
  std::vector<double> beam_score(static_cast<std::size_t>(R), 0.0), beam_model(static_cast<std::size_t>(R), 0.0);
  for (std::int64_t r = 0; r < R; ++r)
    if ((r % NB) % BG != 0) beam_score[r] = ninf;
  std::vector<Hypotheses> hyps(static_cast<std::size_t>(P * G));
  for (auto& h : hyps) {
    h.capacity = static_cast<std::size_t>(BG);
    h.length_penalty = o.length_penalty;
  }
  const std::int64_t pad_token = decoder.filler_token();
  const auto is_eos = [&](std::int64_t t) { return std::find(eos.begin(), eos.end(), t) != eos.end(); };

  for (std::int64_t step = 0; step < o.max_new_tokens; ++step) {
    const auto logprobs = torch::log_softmax(logits.to(torch::kFloat64), -1).cpu().contiguous();  // [R, V]
    const auto V = logprobs.size(1);
    const double* lp = logprobs.data_ptr<double>();
    std::vector<std::int64_t> source(static_cast<std::size_t>(R)), feed(static_cast<std::size_t>(R), pad_token);
    std::vector<std::vector<std::int64_t>> next_ids(static_cast<std::size_t>(R));
    std::vector<double> next_score(static_cast<std::size_t>(R), ninf), next_model(static_cast<std::size_t>(R), 0.0);
    bool all_done = true;
    for (std::int64_t p = 0; p < P; ++p) {
      std::vector<double> used(static_cast<std::size_t>(V), 0.0);  // tokens chosen by earlier groups this step
      for (std::int64_t g = 0; g < G; ++g) {
        auto& h = hyps[p * G + g];
        const std::int64_t base = p * NB + g * BG;
        if (h.done) {
          for (std::int64_t j = 0; j < BG; ++j) source[base + j] = base + j;
          continue;
        }
        // Candidate scores of the group: beam score + log p (- diversity penalty).
        std::vector<double> cand(static_cast<std::size_t>(BG * V));
        for (std::int64_t j = 0; j < BG; ++j)
          for (std::int64_t v = 0; v < V; ++v)
            cand[j * V + v] = beam_score[base + j] + lp[(base + j) * V + v] - o.diversity_penalty * used[v] * (G > 1);
        const auto n_top = std::min<std::int64_t>(2 * BG, BG * V);
        std::vector<std::int64_t> order(static_cast<std::size_t>(BG * V));
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
        std::partial_sort(order.begin(), order.begin() + n_top, order.end(), [&](std::int64_t a, std::int64_t b) {
          return cand[a] > cand[b] || (cand[a] == cand[b] && a < b);
        });
        std::int64_t filled = 0;
        for (std::int64_t rank = 0; rank < n_top && filled < BG; ++rank) {
          const std::int64_t j = order[rank] / V, v = order[rank] % V;
          const std::int64_t src = base + j;
          if (!std::isfinite(cand[order[rank]])) break;
          const double model_lp = beam_model[src] + lp[src * V + v];
          if (is_eos(v)) {
            if (rank < BG) h.add(beam_ids[src], cand[order[rank]], model_lp, "eos", v);
            continue;
          }
          std::vector<std::int64_t> grown = beam_ids[src];
          grown.push_back(v);
          if (stop && stop(first + static_cast<std::size_t>(p), -1, grown)) {
            if (rank < BG) h.add(std::move(grown), cand[order[rank]], model_lp, "stop");
            continue;
          }
          const std::int64_t dst = base + filled++;
          source[dst] = src;
          next_ids[dst] = std::move(grown);
          next_score[dst] = cand[order[rank]];
          next_model[dst] = model_lp;
          feed[dst] = v;
          used[v] += 1;
        }
        for (; filled < BG; ++filled) source[base + filled] = base;  // dead beams (score -inf)
        double best = ninf;
        for (std::int64_t j = 0; j < BG; ++j) best = std::max(best, next_score[base + j]);
        if (h.finished_by(best, static_cast<std::size_t>(step)) || !std::isfinite(best)) h.done = true;
        all_done = all_done && h.done;
      }
    }
    beam_ids = std::move(next_ids);
    beam_score = std::move(next_score);
    beam_model = std::move(next_model);
    if (all_done || step + 1 == o.max_new_tokens) break;
    decoder.select_rows(torch::tensor(source, torch::kLong).to(device));
    logits = decoder.step(torch::tensor(feed, torch::kLong).to(device));
  }
  // Groups still running at the length limit keep their beams as hypotheses.
  for (std::int64_t p = 0; p < P; ++p) {
    std::vector<Hypothesis> all;
    for (std::int64_t g = 0; g < G; ++g) {
      auto& h = hyps[p * G + g];
      if (!h.done)
        for (std::int64_t j = 0; j < BG; ++j) {
          const std::int64_t r = p * NB + g * BG + j;
          if (std::isfinite(beam_score[r])) h.add(beam_ids[r], beam_score[r], beam_model[r], "length");
        }
      all.insert(all.end(), h.kept.begin(), h.kept.end());
    }
    std::stable_sort(all.begin(), all.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    auto& dst = out[first + static_cast<std::size_t>(p)];
    for (std::size_t k = 0; k < dst.size() && k < all.size(); ++k) {
      dst[k].ids = all[k].ids;
      dst[k].logprob = all[k].model_logprob;
      dst[k].score = all[k].score;
      dst[k].finish = all[k].finish;
      dst[k].eos_id = all[k].eos_id;
    }
  }
}

}  // namespace

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

namespace {

// Decodes every batch of prompts with `decoder` (a model of vocabulary `vocab`,
// ending responses at `default_eos` unless the options name EOS ids).
std::vector<std::vector<Generation>> run(Decoder& decoder, torch::nn::Module& model, std::int64_t vocab,
                                         const std::vector<std::int64_t>& default_eos,
                                         const std::vector<std::vector<std::int64_t>>& prompts,
                                         const GenerateOptions& options, const std::vector<std::uint64_t>& keys,
                                         const StopCheck& stop) {
  validate(options);
  LIRE_CHECK(keys.empty() || keys.size() == prompts.size(), "generate: one key per prompt");
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    LIRE_CHECK(!prompts[p].empty(), "generate: prompt ", p, " is empty (it needs at least BOS or EOS)");
    for (auto id : prompts[p])
      LIRE_CHECK(id >= 0 && id < vocab, "generate: prompt ", p, " has token id ", id, " outside [0, ", vocab, ")");
  }
  const std::vector<std::int64_t> eos = options.eos_ids.empty() ? default_eos : options.eos_ids;
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<std::vector<Generation>> out(prompts.size(),
                                           std::vector<Generation>(static_cast<std::size_t>(options.num_samples)));
  const auto per_batch = static_cast<std::size_t>(options.batch_prompts);
  const bool beams = options.strategy == "beam" || options.strategy == "diverse-beam";
  for (std::size_t first = 0; first < prompts.size(); first += per_batch) {
    const std::size_t n = std::min(per_batch, prompts.size() - first);
    if (beams) {
      beam_batch(decoder, prompts, first, n, options, eos, stop, out);
    } else {
      generate_batch(decoder, prompts, first, n, options, keys, eos, stop, out);
    }
  }
  if (was_training) model.train();
  return out;
}

}  // namespace

std::vector<std::vector<Generation>> generate(models::LlamaForCausalLMImpl& model,
                                              const std::vector<std::vector<std::int64_t>>& prompts,
                                              const GenerateOptions& options, const std::vector<std::uint64_t>& keys,
                                              const StopCheck& stop) {
  const auto& eos = model.config().eos_token_ids;
  CausalDecoder decoder(model, eos.empty() ? 0 : eos.front());
  return run(decoder, model, model.config().vocab_size, eos, prompts, options, keys, stop);
}

std::vector<std::vector<Generation>> generate(models::T5ForConditionalGenerationImpl& model,
                                              const std::vector<std::vector<std::int64_t>>& prompts,
                                              const GenerateOptions& options, const std::vector<std::uint64_t>& keys,
                                              const StopCheck& stop) {
  Seq2SeqDecoder decoder(model);
  return run(decoder, model, model.config().vocab_size, {model.config().eos_token_id}, prompts, options, keys, stop);
}

std::vector<std::vector<Generation>> generate(const models::LanguageModel& model,
                                              const std::vector<std::vector<std::int64_t>>& prompts,
                                              const GenerateOptions& options, const std::vector<std::uint64_t>& keys,
                                              const StopCheck& stop) {
  if (model.t5()) return generate(*model.t5(), prompts, options, keys, stop);
  return generate(*model.llama(), prompts, options, keys, stop);
}

}  // namespace lire::generate

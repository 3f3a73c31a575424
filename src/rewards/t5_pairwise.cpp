// The t5-pairwise label source (see the header).
#include "lire/rewards/t5_pairwise.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "lire/core/error.h"

namespace lire::rewards {
namespace {

std::vector<std::int64_t> choice_ids(const data::Tokenizer& tokenizer, const config::RewardSourceOptions& o,
                                     const std::string& key, const std::string& text, std::int64_t vocab_size) {
  auto ids = tokenizer.encode(text);
  if (ids.empty())
    throw ConfigError(str("rewards.", o.name, ".", key, ": '", text, "' encodes to no tokens with ",
                          tokenizer.model_path()));
  for (auto id : ids)
    if (id < 0 || id >= vocab_size)
      throw ConfigError(str("rewards.", o.name, ".", key, ": token ", id, " of '", text, "' is outside ", o.path,
                            "'s vocabulary [0, ", vocab_size, ")"));
  return ids;
}

}  // namespace

std::string render_pair_template(const std::string& pair_template, const std::string& context, const std::string& a,
                                 const std::string& b) {
  struct Slot {
    std::size_t at;
    std::size_t size;
    const std::string* text;
  };
  std::vector<Slot> slots;
  for (const auto& [name, text] : {std::pair<std::string, const std::string*>{"{context}", &context},
                                   {"{a}", &a}, {"{b}", &b}}) {
    const auto at = pair_template.find(name);
    if (at == std::string::npos || pair_template.find(name, at + name.size()) != std::string::npos)
      throw ConfigError(str("pair template '", pair_template, "' must hold ", name, " exactly once"));
    slots.push_back({at, name.size(), text});
  }
  std::sort(slots.begin(), slots.end(), [](const Slot& x, const Slot& y) { return x.at < y.at; });
  std::string out;
  std::size_t from = 0;
  for (const auto& s : slots) {
    out.append(pair_template, from, s.at - from);
    out += *s.text;
    from = s.at + s.size;
  }
  out.append(pair_template, from, std::string::npos);
  return out;
}

std::vector<double> labels_from_preferences(const std::vector<std::vector<double>>& preferences) {
  const std::size_t K = preferences.size();
  std::vector<double> labels(K, 0.0);
  for (std::size_t k = 0; k < K; ++k) {
    LIRE_CHECK(preferences[k].size() == K, "labels_from_preferences: row ", k, " has ", preferences[k].size(),
               " entries; a ", K, " x ", K, " matrix was expected");
    double sum = 0;
    for (double p : preferences[k]) sum += p;
    labels[k] = sum / static_cast<double>(K);
  }
  return labels;
}

std::string ranker_context(const data::CandidateList& list, const std::string& source) {
  if (list.prompt.empty() && list.prompt_ids)
    throw DataError(str(list.where(), ": reward source '", source,
                        "' reads the prompt text, and this list has only prompt_ids"));
  return list.input.empty() ? list.prompt : list.prompt + "\n\n" + list.input;
}

T5PairwiseRanker::T5PairwiseRanker(const config::RewardSourceOptions& options, const models::LoadOptions& load)
    : RewardSource(options.name),
      options_(options),
      model_(models::load_t5(options.path, load)),
      tokenizer_(data::Tokenizer::from_folder(options.path)) {
  const auto vocab = model_->config().vocab_size;
  if (tokenizer_.vocab_size() > vocab)
    throw ConfigError(str("rewards.", name(), ": ", tokenizer_.model_path(), " has ", tokenizer_.vocab_size(),
                          " tokens, more than the model's vocab_size ", vocab, " (", options.path, "/config.json)"));
  if (tokenizer_.eos_id() < 0)
    throw ConfigError(str("rewards.", name(), ": ", options.path, " has no EOS token (a T5 input ends with one)"));
  LIRE_CHECK(options_.batch_pairs > 0, "rewards.", name(), ".batch_pairs must be positive");
  choice_a_ = choice_ids(tokenizer_, options_, "choice_a", options_.choice_a, vocab);
  choice_b_ = choice_ids(tokenizer_, options_, "choice_b", options_.choice_b, vocab);
  model_->eval();
}

std::vector<std::int64_t> T5PairwiseRanker::input_ids(const std::string& context, const std::string& a,
                                                      const std::string& b) const {
  const auto encode = [&](const std::string& x) {
    auto ids = tokenizer_.encode(render_pair_template(options_.pair_template, x, a, b));
    ids.push_back(tokenizer_.eos_id());
    return ids;
  };
  auto ids = encode(context);
  const auto limit = static_cast<std::size_t>(options_.max_input_tokens);
  // Drop the context's first tokens by the excess, re-render, repeat: the
  // re-encoded text may tokenize a little differently at the cut.
  std::string x = context;
  while (limit > 0 && ids.size() > limit && !x.empty()) {
    const auto context_ids = tokenizer_.encode(x);
    const std::size_t drop = std::min(context_ids.size(), std::max<std::size_t>(ids.size() - limit, 1));
    const std::string shorter =
        drop >= context_ids.size()
            ? std::string()
            : tokenizer_.decode(std::vector<std::int64_t>(context_ids.begin() + static_cast<std::ptrdiff_t>(drop),
                                                          context_ids.end()));
    x = shorter.size() < x.size() ? shorter : std::string();
    ids = encode(x);
  }
  return ids;
}

std::vector<double> T5PairwiseRanker::choice_logprobs(const std::vector<std::int64_t>& choice,
                                                      const torch::Tensor& states, const torch::Tensor& mask) {
  const auto n = states.size(0);
  const auto L = static_cast<int64_t>(choice.size());
  // Teacher forcing: decoder inputs [decoder_start] + choice[:-1], targets choice.
  std::vector<std::int64_t> inputs{model_->config().decoder_start_token_id};
  inputs.insert(inputs.end(), choice.begin(), choice.end() - 1);
  const auto device = states.device();
  const auto decoder_ids = torch::tensor(inputs, torch::kLong).to(device).unsqueeze(0).expand({n, L}).contiguous();
  const auto targets = torch::tensor(choice, torch::kLong).to(device).unsqueeze(0).expand({n, L}).contiguous();
  const auto compute = model_->head_weight().scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const auto logits = model_->logits(model_->decode(decoder_ids, states, mask)).to(compute);  // [n,L,V]
  const auto logps = torch::log_softmax(logits, -1).gather(2, targets.unsqueeze(2)).squeeze(2).sum(1);
  const auto cpu = logps.to(torch::kFloat64).cpu().contiguous();
  return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + n);
}

std::vector<double> T5PairwiseRanker::prefer_first(const std::vector<std::vector<std::int64_t>>& inputs) {
  torch::NoGradGuard no_grad;
  const auto& config = model_->config();
  const auto device = model_->head_weight().device();
  const auto batch = static_cast<std::size_t>(options_.batch_pairs);
  std::vector<double> out;
  out.reserve(inputs.size());
  for (std::size_t begin = 0; begin < inputs.size(); begin += batch) {
    const std::size_t end = std::min(inputs.size(), begin + batch);
    const auto n = static_cast<int64_t>(end - begin);
    int64_t S = 1;
    for (std::size_t i = begin; i < end; ++i) S = std::max<int64_t>(S, inputs[i].size());
    // Right-padded encoder inputs; the mask keeps the padding out of every real position.
    auto ids = torch::full({n, S}, config.pad_token_id, torch::kLong);
    auto mask = torch::zeros({n, S}, torch::kLong);
    auto I = ids.accessor<int64_t, 2>();
    auto M = mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < n; ++r) {
      const auto& x = inputs[begin + static_cast<std::size_t>(r)];
      for (std::size_t t = 0; t < x.size(); ++t) {
        LIRE_CHECK(x[t] >= 0 && x[t] < config.vocab_size, "rewards.", name(), ": input token ", x[t],
                   " is outside the vocabulary [0, ", config.vocab_size, ")");
        I[r][static_cast<int64_t>(t)] = x[t], M[r][static_cast<int64_t>(t)] = 1;
      }
    }
    ids = ids.to(device);
    mask = mask.to(device);
    const auto states = model_->encode(ids, mask);
    const auto a = choice_logprobs(choice_a_, states, mask);
    if (options_.normalize_choices) {
      // P(A) / (P(A) + P(B)) = sigmoid(log P(A) - log P(B)), stable for tiny probabilities.
      const auto b = choice_logprobs(choice_b_, states, mask);
      for (int64_t r = 0; r < n; ++r) out.push_back(1.0 / (1.0 + std::exp(b[r] - a[r])));
    } else {
      for (int64_t r = 0; r < n; ++r) out.push_back(std::exp(a[r]));
    }
  }
  return out;
}

namespace {

// Ordered pairs (i, j), i != j, of a list of K, row by row.
std::vector<std::pair<std::size_t, std::size_t>> ordered_pairs(std::size_t K) {
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j)
      if (i != j) pairs.emplace_back(i, j);
  return pairs;
}

// Psi from pA of the ordered pairs (in ordered_pairs order, from `first`).
std::vector<std::vector<double>> matrix_of(std::size_t K, const std::vector<double>& p, std::size_t first) {
  std::vector<std::vector<double>> prefer(K, std::vector<double>(K, 0.5)), psi = prefer;
  std::size_t at = first;
  for (const auto& [i, j] : ordered_pairs(K)) prefer[i][j] = p[at++];
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = i + 1; j < K; ++j) {
      // Both orders: y_i in position A, then in position B. Clamped against
      // rounding so the labels stay inside [0, 1].
      psi[i][j] = std::clamp(0.5 * (prefer[i][j] + 1.0 - prefer[j][i]), 0.0, 1.0);
      psi[j][i] = 1.0 - psi[i][j];
    }
  return psi;
}

}  // namespace

std::vector<std::vector<double>> T5PairwiseRanker::preference_matrix(const std::string& context,
                                                                     const std::vector<std::string>& responses) {
  std::vector<std::vector<std::int64_t>> inputs;
  for (const auto& [i, j] : ordered_pairs(responses.size()))
    inputs.push_back(input_ids(context, responses[i], responses[j]));
  return matrix_of(responses.size(), prefer_first(inputs), 0);
}

ListRewards T5PairwiseRanker::score(const std::vector<data::CandidateList>& lists) {
  // Every ordered pair of every list in one stream, so that batches fill up
  // across short lists.
  std::vector<std::vector<std::int64_t>> inputs;
  for (const auto& list : lists) {
    if (list.size() > 0 && list.responses.size() < list.size())
      throw DataError(str(list.where(), ": reward source '", name(),
                          "' reads response texts, and this list has only token ids"));
    const auto context = ranker_context(list, name());
    for (const auto& [i, j] : ordered_pairs(list.size()))
      inputs.push_back(input_ids(context, list.responses[i], list.responses[j]));
  }
  const auto p = prefer_first(inputs);
  ListRewards out;
  matrices_.clear();
  std::size_t at = 0;
  for (const auto& list : lists) {
    const std::size_t K = list.size();
    matrices_.push_back(matrix_of(K, p, at));
    at += K * (K - 1);
    out.push_back(labels_from_preferences(matrices_.back()));
  }
  return out;
}

ModelRewardFactory t5_pairwise_factory(const models::LoadOptions& load) {
  return [=](const config::RewardSourceOptions& o) -> std::unique_ptr<RewardSource> {
    return std::make_unique<T5PairwiseRanker>(o, load);
  };
}

}  // namespace lire::rewards

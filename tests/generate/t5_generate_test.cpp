// Generation with T5 (encoder once, decoder KV cache): greedy tokens against
// Hugging Face's, sampling against a naive decoder that recomputes the whole
// prefix every step with the same random streams, batching and padding
// invariance, the reported log-prob against t5_logprobs, beam search against
// brute force, diverse beams, EOS and the LanguageModel dispatch.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lire/core/portable_random.h"
#include "lire/generate/generate.h"
#include "lire/models/language_model.h"
#include "lire/models/t5_logprobs.h"
#include "support/hf_fixtures.h"

namespace lire::generate {
namespace {

using lire::testing::hf_reference;
using lire::testing::kHfFixtures;

models::T5ForConditionalGeneration tiny_t5(const std::string& model = "t5_tiny", const std::string& dtype = "fp64") {
  return models::load_t5(kHfFixtures + "/" + model, lire::testing::cpu_load(dtype));
}

const std::vector<std::vector<std::int64_t>> kPrompts = {
    {320, 165, 251, 189, 383, 149, 350, 372, 238, 1}, {298, 398, 104, 1}, {17, 42, 99, 311, 469, 1}};

// Log-probs [V] of the next token after `decoded` (decoder_start first),
// recomputing the encoder and the whole decoder prefix: no cache, no batch.
torch::Tensor naive_next(models::T5ForConditionalGenerationImpl& model, const std::vector<std::int64_t>& prompt,
                         const std::vector<std::int64_t>& decoded) {
  torch::NoGradGuard no_grad;
  const auto logits =
      model.forward(torch::tensor(prompt).unsqueeze(0), {}, torch::tensor(decoded).unsqueeze(0)).select(1, -1)[0];
  return logits;
}

TEST(T5Generate, GreedyMatchesHuggingFace) {
  for (const std::string m : {"t5_tiny", "t5_tiny_orig"}) {
    SCOPED_TRACE(m);
    auto model = tiny_t5(m, "fp32");
    const auto ref = hf_reference(m);
    const auto want = ref["greedy"]["new_tokens_hf_f64_cache"];
    std::vector<std::vector<std::int64_t>> prompts;  // HF right-padded them: drop the padding
    for (std::size_t r = 0; r < 2; ++r) {
      std::vector<std::int64_t> p;
      for (std::size_t t = 0; t < ref["inputs"]["input_ids"][r].size(); ++t)
        if (ref["inputs"]["attention_mask"][r][t].get<int>() == 1) p.push_back(ref["inputs"]["input_ids"][r][t]);
      prompts.push_back(p);
    }
    GenerateOptions o;
    o.strategy = "greedy";
    o.max_new_tokens = static_cast<std::int64_t>(want[0].size()) - 1;
    const auto out = generate(*model, prompts, o);
    for (std::size_t r = 0; r < 2; ++r) {
      auto tokens = want[r].get<std::vector<std::int64_t>>();
      tokens.erase(tokens.begin());  // decoder_start_token_id
      // HF pads a finished row with pad_token_id after its EOS; lire stops the row at EOS.
      const auto eos = std::find(tokens.begin(), tokens.end(), 1);
      const bool ended = eos != tokens.end();
      tokens.erase(eos, tokens.end());
      EXPECT_EQ(out[r][0].ids, tokens) << r;
      EXPECT_EQ(out[r][0].finish, ended ? "eos" : "length");
    }
  }
}

// Sampling with the caches draws exactly what a naive decoder draws from the
// same streams: the full recomputation, prompt by prompt, through the same
// warpers and inverse-CDF draw. Prompts of three lengths share a batch (the
// encoder input is right-padded), with two samples each.
TEST(T5Generate, CachedSamplingEqualsNaiveDecoding) {
  auto model = tiny_t5();
  GenerateOptions o;
  o.max_new_tokens = 9;
  o.num_samples = 2;
  o.temperature = 0.9;
  o.top_k = 40;
  o.top_p = 0.95;
  o.seed = 11;
  o.eos_ids = {1};
  const auto out = generate(*model, kPrompts, o);
  for (std::size_t p = 0; p < kPrompts.size(); ++p) {
    for (std::int64_t k = 0; k < 2; ++k) {
      std::mt19937_64 stream(stream_seed(o.seed, p, k));
      std::vector<std::int64_t> decoded = {0}, naive;
      double logprob = 0;
      std::string finish = "length";
      for (std::int64_t step = 0; step < o.max_new_tokens; ++step) {
        const auto logits = naive_next(*model, kPrompts[p], decoded).unsqueeze(0);
        const auto token = draw_tokens(filtered_logprobs(logits, o.temperature, o.top_k, o.top_p),
                                       {uniform_unit(stream)})[0]
                               .item<std::int64_t>();
        logprob += torch::log_softmax(logits[0], -1)[token].item<double>();
        if (token == 1) {
          finish = "eos";
          break;
        }
        naive.push_back(token);
        decoded.push_back(token);
      }
      SCOPED_TRACE(::testing::Message() << "prompt " << p << " sample " << k);
      EXPECT_EQ(out[p][k].ids, naive);
      EXPECT_EQ(out[p][k].finish, finish);
      EXPECT_NEAR(out[p][k].logprob, logprob, 1e-9);
    }
  }
}

// The reported log-prob is the sequence log-prob t5_logprobs computes for the
// response (EOS included when the response ended with it), and a prompt's
// samples do not depend on the batch it is decoded in.
TEST(T5Generate, LogprobsAndBatchingAgree) {
  auto model = tiny_t5();
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.num_samples = 3;
  o.temperature = 1.2;
  o.seed = 5;
  o.batch_prompts = 3;
  const auto batched = generate(*model, kPrompts, o);
  o.batch_prompts = 1;
  const auto single = generate(*model, kPrompts, o);
  torch::NoGradGuard no_grad;
  std::size_t distinct = 0;
  for (std::size_t p = 0; p < kPrompts.size(); ++p) {
    for (std::size_t k = 0; k < 3; ++k) {
      const auto& g = batched[p][k];
      EXPECT_EQ(g.ids, single[p][k].ids);
      auto ids = g.ids;
      if (g.finish == "eos") ids.push_back(g.eos_id);
      const auto lp = models::list_logprobs(*model, kPrompts[p], {ids});
      EXPECT_NEAR(g.logprob, lp.sums[0].item<double>(), 1e-9) << p << " " << k;
      distinct += k > 0 && g.ids != batched[p][0].ids;
    }
  }
  EXPECT_GT(distinct, 0u) << "samples of a prompt should differ";
  // Keys, not positions, name the streams.
  o.batch_prompts = 4;
  const auto alone = generate(*model, {kPrompts[2]}, o, {2});
  for (std::size_t k = 0; k < 3; ++k) EXPECT_EQ(alone[0][k].ids, batched[2][k].ids);
}

// Encoding a prompt once for its K samples (the default) equals encoding it
// once per sample: the same tokens, log-probs up to float32 rounding.
TEST(T5Generate, PromptCacheReuseEqualsSeparateEncodings) {
  auto model = tiny_t5("t5_tiny", "fp32");
  GenerateOptions o;
  o.max_new_tokens = 8;
  o.num_samples = 3;
  o.seed = 3;
  const auto reused = generate(*model, kPrompts, o);
  o.reuse_prompt_cache = false;
  const auto separate = generate(*model, kPrompts, o);
  for (std::size_t p = 0; p < kPrompts.size(); ++p)
    for (std::size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(reused[p][k].ids, separate[p][k].ids) << p << " " << k;
      EXPECT_NEAR(reused[p][k].logprob, separate[p][k].logprob, 1e-4) << p << " " << k;
    }
}

// Two steps of beam search with as many beams as the vocabulary are an
// exhaustive search: the best two-token continuations by brute force over
// all 512 x 512.
TEST(T5Generate, BeamSearchWithAllBeamsIsExhaustive) {
  auto model = tiny_t5();
  const auto& prompt = kPrompts[1];
  GenerateOptions o;
  o.strategy = "beam";
  o.num_beams = 512;
  o.num_samples = 3;
  o.max_new_tokens = 2;
  o.eos_ids = {-1};  // no token ends a response
  const auto out = generate(*model, {prompt}, o)[0];
  torch::NoGradGuard no_grad;
  const auto first = torch::log_softmax(naive_next(*model, prompt, {0}), -1);
  auto decoder = torch::cat({torch::zeros({512, 1}, torch::kLong), torch::arange(512, torch::kLong).unsqueeze(1)}, 1);
  const auto second =
      torch::log_softmax(model->forward(torch::tensor(prompt).unsqueeze(0).repeat({512, 1}), {}, decoder).select(1, -1),
                         -1);  // [512, 512]
  const auto total = (first.unsqueeze(1) + second).flatten();
  const auto [values, index] = total.topk(3);
  for (int k = 0; k < 3; ++k) {
    const auto i = index[k].item<std::int64_t>();
    EXPECT_EQ(out[k].ids, (std::vector<std::int64_t>{i / 512, i % 512})) << k;
    EXPECT_NEAR(out[k].score, values[k].item<double>() / 2.0, 1e-9) << k;
    EXPECT_NEAR(out[k].logprob, values[k].item<double>(), 1e-9);
  }
}

// One beam is greedy; diverse beams with a large penalty start differently,
// and each keeps the model's own log-prob; the LanguageModel handle decodes
// the same as the T5 module.
TEST(T5Generate, BeamsGreedyAndDispatch) {
  auto model = tiny_t5("t5_tiny_orig");
  GenerateOptions greedy;
  greedy.strategy = "greedy";
  greedy.max_new_tokens = 8;
  const auto g = generate(*model, kPrompts, greedy);
  GenerateOptions one_beam = greedy;
  one_beam.strategy = "beam";
  one_beam.num_beams = 1;
  const auto b = generate(*model, kPrompts, one_beam);
  for (std::size_t p = 0; p < kPrompts.size(); ++p) EXPECT_EQ(b[p][0].ids, g[p][0].ids);

  GenerateOptions diverse = greedy;
  diverse.strategy = "diverse-beam";
  diverse.num_beams = 4;
  diverse.num_beam_groups = 4;
  diverse.num_samples = 4;
  diverse.diversity_penalty = 1e3;
  diverse.max_new_tokens = 5;
  const auto d = generate(*model, {kPrompts[0]}, diverse)[0];
  torch::NoGradGuard no_grad;
  for (std::size_t a = 0; a < d.size(); ++a) {
    ASSERT_FALSE(d[a].ids.empty());
    for (std::size_t c = a + 1; c < d.size(); ++c) EXPECT_NE(d[a].ids[0], d[c].ids[0]) << a << c;
    auto ids = d[a].ids;
    if (d[a].finish == "eos") ids.push_back(d[a].eos_id);
    EXPECT_NEAR(d[a].logprob, models::list_logprobs(*model, kPrompts[0], {ids}).sums[0].item<double>(), 1e-9);
  }

  const models::LanguageModel handle(model);
  EXPECT_EQ(handle.family(), "t5");
  EXPECT_EQ(handle.eos_ids(), std::vector<std::int64_t>{1});
  EXPECT_EQ(handle.bos_id(), -1);
  EXPECT_EQ(handle.default_lora_targets(), (std::vector<std::string>{"q", "v"}));
  const auto via = generate(handle, kPrompts, greedy);
  for (std::size_t p = 0; p < kPrompts.size(); ++p) EXPECT_EQ(via[p][0].ids, g[p][0].ids);
}

}  // namespace
}  // namespace lire::generate

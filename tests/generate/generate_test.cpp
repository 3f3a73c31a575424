// The generation engine: greedy decoding against Hugging Face's tokens,
// cached against uncached decoding, the warpers' support on fixed
// distributions, inverse-CDF draws, seeds independent of batching, stops.
#include "lire/generate/generate.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/models/sequence_logprobs.h"
#include "support/error_message.h"
#include "support/hf_fixtures.h"

namespace lire::generate {
namespace {

using ::testing::HasSubstr;
using lire::testing::hf_reference;
using lire::testing::kHfFixtures;

models::LlamaForCausalLM tiny(const std::string& dtype = "fp32") {
  models::LoadOptions o;
  o.dtype = dtype;
  o.device = "cpu";
  return models::load_causal_lm(kHfFixtures + "/llama_tiny", o);
}

GenerateOptions greedy(std::int64_t n) {
  GenerateOptions o;
  o.strategy = "greedy";
  o.max_new_tokens = n;
  return o;
}

TEST(Generate, GreedyMatchesHuggingFace) {
  auto model = tiny();
  const auto ref = hf_reference("llama_tiny");
  const auto one = ref["greedy"];
  auto out = generate(*model, {one["prompt"].get<std::vector<std::int64_t>>()}, greedy(10));
  EXPECT_EQ(out[0][0].ids, one["new_tokens_hf_f32_cache"].get<std::vector<std::int64_t>>());
  EXPECT_EQ(out[0][0].finish, "length");

  // A batch whose second prompt is shorter (HF left-padded it with its mask).
  const auto batch = ref["greedy_batch_left_padded"];
  std::vector<std::vector<std::int64_t>> prompts;
  for (std::size_t r = 0; r < 2; ++r) {
    std::vector<std::int64_t> p;
    for (std::size_t t = 0; t < batch["prompt_ids"][r].size(); ++t)
      if (batch["attention_mask"][r][t].get<int>() == 1) p.push_back(batch["prompt_ids"][r][t].get<std::int64_t>());
    prompts.push_back(p);
  }
  out = generate(*model, prompts, greedy(10));
  for (std::size_t r = 0; r < 2; ++r)
    EXPECT_EQ(out[r][0].ids, batch["new_tokens_hf_f32_cache"][r].get<std::vector<std::int64_t>>()) << r;
}

// Decoding with the cache equals recomputing the whole sequence every step.
TEST(Generate, CachedDecodingEqualsFullRecomputation) {
  auto model = tiny("fp64");
  const std::vector<std::vector<std::int64_t>> prompts = {{1, 306, 214, 297, 56, 207}, {1, 40}, {1, 236, 157, 33, 9}};
  const auto out = generate(*model, prompts, greedy(12));
  torch::NoGradGuard no_grad;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    std::vector<std::int64_t> seq = prompts[p];
    std::vector<std::int64_t> naive;
    for (int step = 0; step < 12; ++step) {
      const auto ids = torch::tensor(seq, torch::kLong).unsqueeze(0);
      const auto next = model->logits(model->forward(ids)).select(1, -1)[0].argmax().item<std::int64_t>();
      if (next == 2) break;
      naive.push_back(next);
      seq.push_back(next);
    }
    EXPECT_EQ(out[p][0].ids, naive) << "prompt " << p;
  }
}

// The log-prob a generation reports is the model's, as sequence_logprobs computes it.
TEST(Generate, ReportedLogprobIsTheModels) {
  auto model = tiny("fp64");
  GenerateOptions o;
  o.max_new_tokens = 8;
  o.num_samples = 2;
  o.temperature = 0.8;
  const std::vector<std::int64_t> prompt = {1, 306, 214};
  const auto out = generate(*model, {prompt}, o);
  torch::NoGradGuard no_grad;
  for (const auto& g : out[0]) {
    ASSERT_EQ(g.finish, "length");
    const auto lp = models::list_logprobs(*model, prompt, {g.ids});
    EXPECT_NEAR(g.logprob, lp.sums[0].item<double>(), 1e-9);
  }
}

TEST(Generate, TemperatureZeroIsGreedy) {
  auto model = tiny();
  GenerateOptions o;
  o.temperature = 0.0;
  o.max_new_tokens = 10;
  o.num_samples = 2;
  const std::vector<std::vector<std::int64_t>> prompts = {{1, 306, 214, 297}, {1, 236}};
  const auto sampled = generate(*model, prompts, o);
  const auto argmax = generate(*model, prompts, greedy(10));
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    EXPECT_EQ(sampled[p][0].ids, argmax[p][0].ids);
    EXPECT_EQ(sampled[p][1].ids, argmax[p][0].ids);
  }
}

TEST(Generate, SameSeedSamePoolAtAnyBatchSize) {
  auto model = tiny("fp64");
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.num_samples = 3;
  o.temperature = 0.7;
  o.top_k = 40;  // LiPO's sampling settings
  o.seed = 7;
  const std::vector<std::vector<std::int64_t>> prompts = {{1, 306, 214, 297}, {1, 236}, {1, 40, 41, 42, 43}, {1, 9}};
  o.batch_prompts = 1;
  const auto one = generate(*model, prompts, o);
  o.batch_prompts = 4;
  const auto four = generate(*model, prompts, o);
  std::size_t distinct = 0;
  for (std::size_t p = 0; p < prompts.size(); ++p)
    for (std::size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(one[p][k].ids, four[p][k].ids) << p << " " << k;
      distinct += k > 0 && one[p][k].ids != one[p][0].ids;
    }
  EXPECT_GT(distinct, 0u) << "samples of a prompt should differ";
  // Keys, not positions, identify prompts: prompt 2 alone with key 2 gets the same samples.
  o.batch_prompts = 8;
  const auto alone = generate(*model, {prompts[2]}, o, {2});
  for (std::size_t k = 0; k < 3; ++k) EXPECT_EQ(alone[0][k].ids, one[2][k].ids);
  // Another seed, other samples.
  o.seed = 8;
  const auto other = generate(*model, prompts, o);
  std::size_t differ = 0;
  for (std::size_t p = 0; p < prompts.size(); ++p) differ += other[p][0].ids != one[p][0].ids;
  EXPECT_GT(differ, 0u);
}

// Prefilling a prompt once and copying its cache to the K samples (the
// default) gives what K separate prefills of the prompt give: exactly the same
// tokens, and the same log-probs and beam scores up to float32 rounding (a
// batch of K copies runs other matmul shapes), for samples and beams, with
// prompts of different lengths (left padding) in one batch.
TEST(Generate, PromptCacheReuseEqualsSeparatePrefills) {
  auto model = tiny();  // fp32
  const std::vector<std::vector<std::int64_t>> prompts = {{1, 306, 214, 297, 56, 207}, {1, 40}, {1, 236, 157}};
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.num_samples = 4;
  o.temperature = 0.9;
  o.seed = 11;
  o.eos_ids = {-1};
  for (const std::string strategy : {"sample", "beam"}) {
    o.strategy = strategy;
    o.reuse_prompt_cache = true;
    const auto reused = generate(*model, prompts, o);
    o.reuse_prompt_cache = false;
    const auto separate = generate(*model, prompts, o);
    std::size_t distinct = 0;
    for (std::size_t p = 0; p < prompts.size(); ++p)
      for (std::size_t k = 0; k < 4; ++k) {
        EXPECT_EQ(reused[p][k].ids, separate[p][k].ids) << strategy << " " << p << " " << k;
        EXPECT_NEAR(reused[p][k].logprob, separate[p][k].logprob, 1e-4) << strategy << " " << p << " " << k;
        EXPECT_NEAR(reused[p][k].score, separate[p][k].score, 1e-4) << strategy << " " << p << " " << k;
        EXPECT_EQ(reused[p][k].ids.size(), 10u);
        distinct += k > 0 && reused[p][k].ids != reused[p][0].ids;
      }
    EXPECT_GT(distinct, 0u) << strategy << ": the rows of a prompt should differ";
  }
}

TEST(Generate, StopsAtEosAndStopCallback) {
  auto model = tiny();
  const std::vector<std::int64_t> prompt = {1, 306, 214, 297, 56, 207};
  const auto free_run = generate(*model, {prompt}, greedy(10))[0][0];
  ASSERT_EQ(free_run.ids.size(), 10u);
  // Declare the 4th greedy token an end token: the response is the first 3.
  GenerateOptions o = greedy(10);
  o.eos_ids = {free_run.ids[3]};
  const auto eos = generate(*model, {prompt}, o)[0][0];
  EXPECT_EQ(eos.finish, "eos");
  EXPECT_EQ(eos.ids, std::vector<std::int64_t>(free_run.ids.begin(), free_run.ids.begin() + 3));
  const auto stopped = generate(*model, {prompt}, greedy(10), {}, [](std::size_t, std::int64_t,
                                                                     const std::vector<std::int64_t>& ids) {
    return ids.size() == 5;
  })[0][0];
  EXPECT_EQ(stopped.finish, "stop");
  EXPECT_EQ(stopped.ids, std::vector<std::int64_t>(free_run.ids.begin(), free_run.ids.begin() + 5));
}

// ------------------------------------------------------------------ warpers

// probs by id: 0.1, 0.4, 0.05, 0.3, 0.15
torch::Tensor fixed_logits() {
  return torch::tensor({0.1, 0.4, 0.05, 0.3, 0.15}, torch::kFloat64).log().unsqueeze(0);
}

std::vector<bool> support(const torch::Tensor& logprobs) {
  std::vector<bool> s;
  for (std::int64_t i = 0; i < logprobs.size(1); ++i) s.push_back(std::isfinite(logprobs[0][i].item<double>()));
  return s;
}

TEST(Warpers, TopKKeepsTheKMostLikelyAndTies) {
  EXPECT_EQ(support(filtered_logprobs(fixed_logits(), 1.0, 2, 1.0)),
            (std::vector<bool>{false, true, false, true, false}));
  const auto lp = filtered_logprobs(fixed_logits(), 1.0, 2, 1.0);
  EXPECT_NEAR(std::exp(lp[0][1].item<double>()), 0.4 / 0.7, 1e-12);  // renormalised over the kept mass
  const auto ties = torch::tensor({1.0, 1.0, 1.0, 0.0}, torch::kFloat64).unsqueeze(0);
  EXPECT_EQ(support(filtered_logprobs(ties, 1.0, 2, 1.0)), (std::vector<bool>{true, true, true, false}));
}

TEST(Warpers, TopPKeepsTheSmallestSetReachingP) {
  // Sorted: 0.4 (id 1), 0.3 (id 3), 0.15 (id 4), 0.1 (id 0), 0.05 (id 2).
  EXPECT_EQ(support(filtered_logprobs(fixed_logits(), 1.0, 0, 0.7)),
            (std::vector<bool>{false, true, false, true, false}));  // 0.4 + 0.3 = 0.7 reaches 0.7
  EXPECT_EQ(support(filtered_logprobs(fixed_logits(), 1.0, 0, 0.71)),
            (std::vector<bool>{false, true, false, true, true}));  // 0.7 < 0.71: 0.15 joins
  EXPECT_EQ(support(filtered_logprobs(fixed_logits(), 1.0, 0, 0.01)),
            (std::vector<bool>{false, true, false, false, false}));  // the top token always stays
}

TEST(Warpers, TemperatureThenTopKThenTopP) {
  // T = 0.5 squares the probabilities (renormalised): 0.16, 0.09, 0.0225, 0.01, 0.0025 over 0.285.
  const auto lp = filtered_logprobs(fixed_logits(), 0.5, 0, 1.0);
  const double z = 0.01 + 0.16 + 0.0025 + 0.09 + 0.0225;
  EXPECT_NEAR(std::exp(lp[0][1].item<double>()), 0.16 / z, 1e-12);
  // After T = 0.5, top 0.16/z = 0.561 and 0.09/z = 0.316 sum to 0.877: p = 0.8 keeps two tokens
  // (at T = 1 it keeps three: 0.4 + 0.3 = 0.7 < 0.8).
  EXPECT_EQ(support(filtered_logprobs(fixed_logits(), 0.5, 0, 0.8)),
            (std::vector<bool>{false, true, false, true, false}));
  EXPECT_EQ(support(filtered_logprobs(fixed_logits(), 1.0, 0, 0.8)),
            (std::vector<bool>{false, true, false, true, true}));
}

TEST(Warpers, TopKBeforeTopP) {
  // top-k 3 keeps 0.4, 0.3, 0.15 (renormalised 0.471, 0.353, 0.176); then top-p 0.8 drops 0.176
  // (its ascending cumulative 0.176 <= 0.2). Top-p first would keep 0.4, 0.3, 0.15 (0.7 < 0.8).
  EXPECT_EQ(support(filtered_logprobs(fixed_logits(), 1.0, 3, 0.8)),
            (std::vector<bool>{false, true, false, true, false}));
}

TEST(Warpers, DrawsInvertTheCumulativeDistribution) {
  // N evenly spaced uniforms hit each token N * p times (to one draw).
  const auto lp = filtered_logprobs(fixed_logits(), 1.0, 3, 1.0);  // keeps ids 1, 3, 4: 0.4, 0.3, 0.15 of 0.85
  const int N = 1700;
  std::vector<double> u;
  for (int i = 0; i < N; ++i) u.push_back((i + 0.5) / N);
  const auto rows = lp.expand({N, lp.size(1)}).contiguous();
  const auto tokens = draw_tokens(rows, u);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < N; ++i) ++counts[tokens[i].item<std::int64_t>()];
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(counts[1], N * 0.4 / 0.85, 1.0);
  EXPECT_NEAR(counts[3], N * 0.3 / 0.85, 1.0);
  EXPECT_NEAR(counts[4], N * 0.15 / 0.85, 1.0);
  // u = 0 skips leading unsupported tokens; u just below 1 never lands past the support.
  EXPECT_EQ(draw_tokens(lp, {0.0})[0].item<std::int64_t>(), 1);
  EXPECT_EQ(draw_tokens(lp, {1.0 - 1e-16})[0].item<std::int64_t>(), 4);
}

TEST(Generate, InvalidOptionsNameTheKey) {
  auto model = tiny();
  GenerateOptions o;
  o.top_p = 0;
  EXPECT_THAT(lire::testing::error_message<ConfigError>([&] { generate(*model, {{1}}, o); }), HasSubstr("sample.top_p"));
  o = GenerateOptions{};
  o.strategy = "beams";
  EXPECT_THAT(lire::testing::error_message<ConfigError>([&] { generate(*model, {{1}}, o); }),
              HasSubstr("sample.strategy"));
  EXPECT_THAT(lire::testing::error_message<Error>([&] { generate(*model, {{}}, GenerateOptions{}); }),
              HasSubstr("prompt 0 is empty"));
  EXPECT_THAT(lire::testing::error_message<Error>([&] { generate(*model, {{1, 9999}}, GenerateOptions{}); }),
              HasSubstr("9999"));
}

// ------------------------------------------------------------------ beams

GenerateOptions beams(std::int64_t beams_n, std::int64_t k, std::int64_t n) {
  GenerateOptions o;
  o.strategy = "beam";
  o.num_beams = beams_n;
  o.num_samples = k;
  o.max_new_tokens = n;
  return o;
}

TEST(BeamSearch, OneBeamIsGreedy) {
  auto model = tiny();
  const std::vector<std::vector<std::int64_t>> prompts = {{1, 306, 214, 297, 56, 207}, {1, 236, 157}};
  const auto b = generate(*model, prompts, beams(1, 1, 10));
  const auto g = generate(*model, prompts, greedy(10));
  for (std::size_t p = 0; p < prompts.size(); ++p) EXPECT_EQ(b[p][0].ids, g[p][0].ids);
}

// With as many beams as the vocabulary, two steps of beam search are an
// exhaustive search: the result is the best two-token continuation, found
// here by brute force over all 512 x 512 of them.
TEST(BeamSearch, AsManyBeamsAsTokensIsExhaustive) {
  auto model = tiny("fp64");
  const std::vector<std::int64_t> prompt = {1, 306, 214};
  GenerateOptions o = beams(512, 3, 2);
  o.eos_ids = {-1};  // no token ends a response
  const auto out = generate(*model, {prompt}, o)[0];
  torch::NoGradGuard no_grad;
  const auto first = torch::log_softmax(model->logits(model->forward(torch::tensor(prompt).unsqueeze(0))).select(1, -1)[0], -1);
  auto ids = torch::tensor(prompt).unsqueeze(0).repeat({512, 1});
  ids = torch::cat({ids, torch::arange(512, torch::kLong).unsqueeze(1)}, 1);
  const auto second = torch::log_softmax(model->logits(model->forward(ids)).select(1, -1), -1);  // [512, 512]
  const auto total = (first.unsqueeze(1) + second).flatten();
  const auto [values, index] = total.topk(3);
  for (int k = 0; k < 3; ++k) {
    const auto i = index[k].item<std::int64_t>();
    EXPECT_EQ(out[k].ids, (std::vector<std::int64_t>{i / 512, i % 512})) << k;
    EXPECT_NEAR(out[k].score, values[k].item<double>() / 2.0, 1e-9) << k;  // length_penalty 1: sum / 2
    EXPECT_NEAR(out[k].logprob, values[k].item<double>(), 1e-9);
  }
}

TEST(BeamSearch, ReturnsTheBestHypothesesInOrder) {
  auto model = tiny();
  const auto out = generate(*model, {{1, 306, 214, 297}}, beams(6, 4, 8))[0];
  for (std::size_t k = 1; k < out.size(); ++k) {
    EXPECT_GE(out[k - 1].score, out[k].score);
    EXPECT_NE(out[k - 1].ids, out[k].ids);
  }
}

// Diverse beam search: with no penalty the groups are independent copies of
// one beam search and find the same hypotheses; a penalty pushes each group
// away from the tokens earlier groups chose, so the K results differ from
// their first token on.
TEST(DiverseBeamSearch, PenaltySeparatesTheGroups) {
  auto model = tiny("fp64");
  GenerateOptions o = beams(4, 4, 6);
  o.strategy = "diverse-beam";
  o.num_beam_groups = 4;  // one beam a group
  o.diversity_penalty = 0.0;
  const std::vector<std::int64_t> prompt = {1, 306, 214, 297};
  const auto same = generate(*model, {prompt}, o)[0];
  for (std::size_t k = 1; k < same.size(); ++k) EXPECT_EQ(same[k].ids, same[0].ids);  // 4 greedy copies
  EXPECT_EQ(same[0].ids, generate(*model, {prompt}, greedy(6))[0][0].ids);
  o.diversity_penalty = 1e3;
  const auto diverse = generate(*model, {prompt}, o)[0];
  for (std::size_t a = 0; a < diverse.size(); ++a)
    for (std::size_t b = a + 1; b < diverse.size(); ++b) EXPECT_NE(diverse[a].ids[0], diverse[b].ids[0]) << a << b;
  // The penalty is part of the ranking score, the model's log-prob is not penalised.
  torch::NoGradGuard no_grad;
  for (const auto& g : diverse)
    EXPECT_NEAR(g.logprob, models::list_logprobs(*model, prompt, {g.ids}).sums[0].item<double>(), 1e-9);
}

TEST(BeamSearch, InvalidOptionsNameTheKey) {
  auto model = tiny();
  EXPECT_THAT(lire::testing::error_message<ConfigError>([&] { generate(*model, {{1}}, beams(2, 3, 4)); }),
              HasSubstr("sample.num_samples"));
  GenerateOptions o = beams(4, 1, 4);
  o.strategy = "diverse-beam";
  o.num_beam_groups = 3;
  EXPECT_THAT(lire::testing::error_message<ConfigError>([&] { generate(*model, {{1}}, o); }),
              HasSubstr("sample.num_beam_groups"));
}

}  // namespace
}  // namespace lire::generate

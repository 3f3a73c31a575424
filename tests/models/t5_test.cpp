// T5 against Hugging Face transformers' outputs on the tiny fixtures
// (tests/fixtures/hf/t5_tiny: v1.1, gated-GELU, untied; t5_tiny_orig:
// original, ReLU, tied and scaled; see the README there), and against itself
// on variants made here: the bucket table, cached vs uncached decoding,
// shared-prompt log-probs vs an independent sum and vs separate encodings,
// LoRA on q/v (identity at B = 0, gradients, PEFT round trip with T5's module
// paths), config.json errors and checkpoint quirks.
#include "lire/models/t5.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lire/core/error.h"
#include "lire/io/hf_config.h"
#include "lire/io/safetensors.h"
#include "lire/models/lora.h"
#include "lire/models/t5_logprobs.h"
#include "lire/models/weights.h"
#include "support/hf_fixtures.h"
#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lire::models;
using lire::testing::ids_tensor;
using ::testing::HasSubstr;

const std::string kFixtures = lire::testing::kHfFixtures;
const std::vector<std::string> kModels = {"t5_tiny", "t5_tiny_orig"};

json reference(const std::string& model) { return lire::testing::hf_reference(model); }
torch::Tensor reference_array(const std::string& model, const std::string& name) {
  return lire::testing::hf_reference_array(model, name);
}
T5ForConditionalGeneration load(const std::string& model, const std::string& dtype) {
  return load_t5(kFixtures + "/" + model, lire::testing::cpu_load(dtype));
}

double max_abs(const torch::Tensor& a) { return a.abs().max().item<double>(); }
double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

struct Inputs {
  torch::Tensor ids, mask, decoder_ids;
};
Inputs inputs(const std::string& model) {
  const auto in = reference(model)["inputs"];
  return {ids_tensor(in["input_ids"]), ids_tensor(in["attention_mask"]), ids_tensor(in["decoder_input_ids"])};
}

// Row `row`'s real encoder tokens.
std::vector<int64_t> prompt_of(const Inputs& in, int64_t row) {
  std::vector<int64_t> out;
  for (int64_t t = 0; t < in.ids.size(1); ++t)
    if (in.mask[row][t].item<int64_t>() == 1) out.push_back(in.ids[row][t].item<int64_t>());
  return out;
}

std::string config_error(const json& config) {
  try {
    lire::io::parse_t5_config(config, "m/config.json");
  } catch (const lire::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// A T5 with random weights (std 0.5: far from the identity, still finite).
T5ForConditionalGeneration random_t5(const lire::io::T5Config& config, torch::Dtype dtype, uint64_t seed) {
  torch::manual_seed(seed);
  T5ForConditionalGeneration model(config, torch::TensorOptions().dtype(dtype));
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.normal_(0.0, 0.5);
  model->eval();
  return model;
}

// ------------------------------------------------------------------ config
TEST(T5Config, FixtureVariantsParse) {
  const auto v11 = lire::io::read_t5_config(kFixtures + "/t5_tiny");
  EXPECT_EQ(v11.d_model, 64);
  EXPECT_EQ(v11.d_kv, 16);
  EXPECT_EQ(v11.d_ff, 128);
  EXPECT_EQ(v11.num_layers, 2);
  EXPECT_EQ(v11.num_decoder_layers, 2);
  EXPECT_EQ(v11.num_heads, 4);
  EXPECT_EQ(v11.relative_attention_num_buckets, 32);
  EXPECT_EQ(v11.relative_attention_max_distance, 128);
  EXPECT_DOUBLE_EQ(v11.layer_norm_epsilon, 1e-6);
  EXPECT_EQ(v11.dense_act_fn, "gelu_new");
  EXPECT_TRUE(v11.is_gated_act);
  EXPECT_FALSE(v11.tie_word_embeddings);
  EXPECT_EQ(v11.vocab_size, 512);
  EXPECT_EQ(v11.pad_token_id, 0);
  EXPECT_EQ(v11.eos_token_id, 1);
  EXPECT_EQ(v11.decoder_start_token_id, 0);

  const auto orig = lire::io::read_t5_config(kFixtures + "/t5_tiny_orig");
  EXPECT_EQ(orig.dense_act_fn, "relu");
  EXPECT_FALSE(orig.is_gated_act);
  EXPECT_TRUE(orig.tie_word_embeddings);  // absent from config.json: T5's default
  for (const auto& m : kModels) EXPECT_EQ(lire::io::model_family(kFixtures + "/" + m), "t5");
  EXPECT_EQ(lire::io::model_family(kFixtures + "/llama_tiny"), "llama");
}

TEST(T5Config, DefaultsAndFeedForwardForms) {
  auto c = lire::io::parse_t5_config(json{{"model_type", "t5"}, {"num_layers", 3}, {"pad_token_id", 5}});
  EXPECT_EQ(c.num_decoder_layers, 3);      // None -> num_layers
  EXPECT_EQ(c.decoder_start_token_id, 5);  // None -> pad_token_id
  EXPECT_EQ(c.d_model, 512);
  EXPECT_EQ(c.dense_act_fn, "relu");
  c = lire::io::parse_t5_config(json{{"model_type", "t5"}, {"feed_forward_proj", "gated-relu"}});
  EXPECT_TRUE(c.is_gated_act);
  EXPECT_EQ(c.dense_act_fn, "relu");
  c = lire::io::parse_t5_config(json{{"model_type", "t5"}, {"feed_forward_proj", "gelu"}});
  EXPECT_FALSE(c.is_gated_act);
  EXPECT_EQ(c.dense_act_fn, "gelu");  // exact gelu: only "gated-gelu" means gelu_new
}

TEST(T5Config, ErrorsNameFileAndKey) {
  EXPECT_THAT(config_error({{"architectures", {"LlamaForCausalLM"}}}),
              HasSubstr("m/config.json: architectures: 'LlamaForCausalLM' is not a T5 model"));
  EXPECT_THAT(config_error({{"model_type", "t5"}, {"feed_forward_proj", "fancy-gelu"}}),
              HasSubstr("m/config.json: feed_forward_proj: 'fancy-gelu' is not of the form ACT or gated-ACT"));
  EXPECT_THAT(config_error({{"model_type", "t5"}, {"feed_forward_proj", "gated-tanh"}}),
              HasSubstr("m/config.json: feed_forward_proj: activation 'tanh' is not supported"));
  EXPECT_THAT(config_error({{"model_type", "t5"}, {"vocab_size", 100}, {"decoder_start_token_id", 100}}),
              HasSubstr("decoder_start_token_id: token id 100 is outside [0, vocab_size 100)"));
  EXPECT_THAT(config_error({{"model_type", "t5"}, {"relative_attention_max_distance", 16}}),
              HasSubstr("relative_attention_max_distance: 16 must exceed relative_attention_num_buckets / 2 (16)"));
  EXPECT_THAT(config_error({{"model_type", "t5"}, {"d_model", "64"}}),
              HasSubstr("m/config.json: d_model: expected an integer, got string \"64\""));
  EXPECT_THAT(config_error(json::object()), HasSubstr("architectures: missing, and no model_type either"));
}

// ----------------------------------------------------------------- buckets
TEST(T5Buckets, MatchHfTableExactly) {
  const auto table = reference("t5_tiny")["relative_position_buckets_32_128"];
  const auto relative = torch::tensor(table["relative_position"].get<std::vector<int64_t>>(), torch::kLong);
  const auto bidirectional = t5_relative_position_bucket(relative, true, 32, 128);
  const auto causal = t5_relative_position_bucket(relative, false, 32, 128);
  const auto want_bi = torch::tensor(table["bidirectional"].get<std::vector<int64_t>>(), torch::kLong);
  const auto want_causal = torch::tensor(table["unidirectional"].get<std::vector<int64_t>>(), torch::kLong);
  EXPECT_TRUE(torch::equal(bidirectional, want_bi));
  EXPECT_TRUE(torch::equal(causal, want_causal));
  // Spot checks of the layout: keys after the query use the upper half
  // (bidirectional) or bucket 0 (causal); exact buckets for small offsets.
  EXPECT_EQ(
      t5_relative_position_bucket(torch::tensor({0, 3, -3, 200}), true, 32, 128).equal(torch::tensor({0, 19, 3, 31})),
      true);
  EXPECT_EQ(t5_relative_position_bucket(torch::tensor({0, 3, -3, -7, -200}), false, 32, 128)
                .equal(torch::tensor({0, 0, 3, 7, 31})),
            true);
}

// Other bucket counts and distances against a scalar transcription of HF's
// _relative_position_bucket (float32 log, truncation toward zero).
int64_t scalar_bucket(int64_t relative, bool bidirectional, int64_t num_buckets, int64_t max_distance) {
  int64_t bucket = 0;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative > 0) bucket += num_buckets;
    relative = std::abs(relative);
  } else {
    relative = -std::min<int64_t>(relative, 0);
  }
  const int64_t max_exact = num_buckets / 2;
  if (relative < max_exact) return bucket + relative;
  const float scaled = std::log(static_cast<float>(relative) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                       static_cast<float>(num_buckets - max_exact);
  return bucket + std::min<int64_t>(max_exact + static_cast<int64_t>(scaled), num_buckets - 1);
}

TEST(T5Buckets, OtherCountsAndDistancesMatchTheFormula) {
  std::vector<int64_t> offsets;
  for (int64_t r = -300; r <= 300; ++r) offsets.push_back(r);
  const auto relative = torch::tensor(offsets, torch::kLong);
  for (const auto& [buckets, distance] : std::vector<std::pair<int64_t, int64_t>>{{8, 10}, {16, 64}, {32, 128}, {64, 256}}) {
    for (const bool bidirectional : {true, false}) {
      const auto got = t5_relative_position_bucket(relative, bidirectional, buckets, distance);
      int64_t mismatches = 0, top = 0;
      for (std::size_t i = 0; i < offsets.size(); ++i) {
        const auto b = got[static_cast<int64_t>(i)].item<int64_t>();
        mismatches += b != scalar_bucket(offsets[i], bidirectional, buckets, distance);
        top = std::max(top, b);
      }
      EXPECT_EQ(mismatches, 0) << buckets << "/" << distance << (bidirectional ? " bidirectional" : " causal");
      EXPECT_EQ(top, buckets - 1) << "every bucket count reaches its last bucket by offset 300";
    }
  }
}

// ------------------------------------------------------------------ parity
TEST(T5Parity, Float64LogitsMatchExactReference) {
  torch::NoGradGuard no_grad;
  for (const auto& m : kModels) {
    SCOPED_TRACE(m);
    auto model = load(m, "fp64");
    const auto in = inputs(m);
    const auto logits = model->forward(in.ids, in.mask, in.decoder_ids);
    EXPECT_LT(max_diff(logits, reference_array(m, "logits_np_f64")), 1e-9);
    EXPECT_LT(max_diff(logits, reference_array(m, "logits_hf_f64")), 1e-5);
  }
}

TEST(T5Parity, Float32LogitsWithin1e5Relative) {
  torch::NoGradGuard no_grad;
  for (const auto& m : kModels) {
    SCOPED_TRACE(m);
    auto model = load(m, "fp32");
    const auto in = inputs(m);
    const auto logits = model->forward(in.ids, in.mask, in.decoder_ids);
    EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
    const auto expected = reference_array(m, "logits_hf_f32");
    EXPECT_LT(max_diff(logits, expected), 1e-5 * max_abs(expected));
  }
}

TEST(T5Parity, EncoderStatesMatchHf) {
  torch::NoGradGuard no_grad;
  for (const auto& m : kModels) {
    SCOPED_TRACE(m);
    const auto in = inputs(m);
    const auto expected = reference_array(m, "encoder_last_hidden_state_hf_f64");
    // HF's float64 run keeps the norm's variance and the softmax in float32.
    EXPECT_LT(max_diff(load(m, "fp64")->encode(in.ids, in.mask), expected), 1e-6 * max_abs(expected));
    EXPECT_LT(max_diff(load(m, "fp32")->encode(in.ids, in.mask), expected), 1e-5 * max_abs(expected));
  }
}

TEST(T5Parity, GreedyDecodingMatchesHf) {
  torch::NoGradGuard no_grad;
  for (const auto& m : kModels) {
    SCOPED_TRACE(m);
    const auto in = inputs(m);
    const auto want = ids_tensor(reference(m)["greedy"]["new_tokens_hf_f64_cache"]);  // [2, 1+8]
    const auto step_logits = reference_array(m, "greedy_step_logits_hf_f64");         // [2, 8, V]
    for (const std::string dtype : {"fp32", "fp64"}) {
      SCOPED_TRACE(dtype);
      auto model = load(m, dtype);
      const auto out = t5_greedy_decode(*model, in.ids, in.mask, want.size(1) - 1);
      EXPECT_TRUE(torch::equal(out.tokens, want)) << out.tokens;
      const double tolerance = dtype == "fp32" ? 1e-5 : 1e-6;
      EXPECT_LT(max_diff(out.step_logits, step_logits), tolerance * max_abs(step_logits));
      const auto uncached = t5_greedy_decode(*model, in.ids, in.mask, want.size(1) - 1, /*use_cache=*/false);
      EXPECT_TRUE(torch::equal(uncached.tokens, want));
      EXPECT_LT(max_diff(uncached.step_logits, out.step_logits), dtype == "fp32" ? 1e-5 : 1e-12);
    }
    // generate()'s float32 scores are the same per-step logits ([steps, B, V]).
    const auto generate_scores = reference_array(m, "greedy_scores_generate_f32").transpose(0, 1);
    EXPECT_LT(max_diff(generate_scores, step_logits), 1e-5 * max_abs(step_logits));
  }
}

TEST(T5Parity, CachedDecodingEqualsFullDecoding) {
  torch::NoGradGuard no_grad;
  for (const auto& m : kModels) {
    SCOPED_TRACE(m);
    auto model = load(m, "fp64");
    const auto in = inputs(m);
    const auto states = model->encode(in.ids, in.mask);
    const auto full = model->decode(in.decoder_ids, states, in.mask);
    // Prefill 3 positions, then one at a time.
    T5DecoderCache cache;
    std::vector<torch::Tensor> parts = {model->decode(in.decoder_ids.narrow(1, 0, 3), states, in.mask, &cache)};
    EXPECT_EQ(cache.length(), 3);
    const auto cross_keys = cache.cross_attention.keys[0];
    for (int64_t t = 3; t < in.decoder_ids.size(1); ++t)
      parts.push_back(model->decode(in.decoder_ids.narrow(1, t, 1), states, in.mask, &cache));
    EXPECT_EQ(cache.length(), in.decoder_ids.size(1));
    EXPECT_TRUE(cache.cross_attention.keys[0].is_same(cross_keys));  // computed once
    EXPECT_LT(max_diff(torch::cat(parts, 1), full), 1e-12);
    // Rows of a cache can be selected (beam search): row 1 alone.
    T5DecoderCache one;
    model->decode(in.decoder_ids.narrow(1, 0, 4), states, in.mask, &one);
    one.select_rows(torch::tensor({1}, torch::kLong));
    const auto next = model->decode(in.decoder_ids.narrow(1, 4, 1).narrow(0, 1, 1), states.narrow(0, 1, 1),
                                    in.mask.narrow(0, 1, 1), &one);
    EXPECT_LT(max_diff(next, full.narrow(0, 1, 1).narrow(1, 4, 1)), 1e-12);
  }
}

// --------------------------------------------------------- sequence logprobs
// The fixture's decoder inputs are [start] + y[:-1] for y = decoder_input_ids[1:] + [EOS]:
// the sum over t of log_softmax(HF's logits[t])[y_t] is an independent reference.
TEST(T5Logprobs, ListLogprobsMatchSumsOfHfLogits) {
  torch::NoGradGuard no_grad;
  for (const auto& m : kModels) {
    SCOPED_TRACE(m);
    const auto in = inputs(m);
    const auto ref_logits = reference_array(m, "logits_np_f64");
    auto model = load(m, "fp64");
    auto model32 = load(m, "fp32");
    for (int64_t row = 0; row < 2; ++row) {
      std::vector<int64_t> response;
      for (int64_t t = 1; t < in.decoder_ids.size(1); ++t) response.push_back(in.decoder_ids[row][t].item<int64_t>());
      response.push_back(1);
      const auto log_softmax = torch::log_softmax(ref_logits[row], -1);
      double want = 0;
      for (std::size_t t = 0; t < response.size(); ++t) want += log_softmax[t][response[t]].item<double>();
      // A second, shorter response shares the prompt's encoder pass.
      const std::vector<int64_t> prefix(response.begin(), response.begin() + 3);
      double want_prefix = 0;
      for (std::size_t t = 0; t < prefix.size(); ++t) want_prefix += log_softmax[t][prefix[t]].item<double>();

      const auto lp = list_logprobs(*model, prompt_of(in, row), {response, prefix});
      EXPECT_NEAR(lp.sums[0].item<double>(), want, 1e-9);
      EXPECT_NEAR(lp.sums[1].item<double>(), want_prefix, 1e-9);
      EXPECT_EQ(lp.token_counts[0].item<int64_t>(), 7);
      EXPECT_EQ(lp.token_counts[1].item<int64_t>(), 3);
      EXPECT_NEAR(lp.per_token[0][0].item<double>(), log_softmax[0][response[0]].item<double>(), 1e-9);
      EXPECT_EQ(lp.per_token[1][5].item<double>(), 0.0);  // past the count
      const auto lp32 = list_logprobs(*model32, prompt_of(in, row), {response});
      EXPECT_NEAR(lp32.sums[0].item<double>(), want, 1e-4);
    }
  }
}

TEST(T5Logprobs, BatchedRaggedListsEqualSeparateSequences) {
  torch::NoGradGuard no_grad;
  auto model = load("t5_tiny", "fp64");
  const std::vector<ListTokens> lists = {
      {{5, 6, 7, 1}, {{10, 11, 1}, {12, 1}, {13, 14, 15, 16, 1}}},
      {{8, 1}, {{20, 1}}},
      {{9, 30, 31, 32, 33, 1}, {{}, {40, 41, 1}}},  // an empty response scores 0
  };
  LogprobOptions small;
  small.max_sequences = 2;  // the 3-response list is decoded in two chunks of one encoder pass
  small.chunk_positions = 3;
  for (const auto& options : {LogprobOptions{}, small}) {
    const auto batch = batch_logprobs(*model, lists, options);
    ASSERT_EQ(batch.logps.sizes(), (std::vector<int64_t>{3, 3}));
    for (std::size_t b = 0; b < lists.size(); ++b) {
      for (std::size_t k = 0; k < 3; ++k) {
        const bool real = k < lists[b].response_ids.size();
        EXPECT_EQ(batch.mask[b][k].item<bool>(), real);
        if (!real) continue;
        // Separately: one prompt, one response, full logits.
        const auto& y = lists[b].response_ids[k];
        const auto single = list_logprobs(*model, lists[b].prompt_ids, {y});
        EXPECT_NEAR(batch.logps[b][k].item<double>(), single.sums[0].item<double>(), 1e-12);
        EXPECT_EQ(batch.token_counts[b][k].item<int64_t>(), static_cast<int64_t>(y.size()));
        if (y.empty()) {
          EXPECT_EQ(batch.logps[b][k].item<double>(), 0.0);
          continue;
        }
        std::vector<int64_t> decoder_input = {0};
        decoder_input.insert(decoder_input.end(), y.begin(), y.end() - 1);
        const auto prompt = torch::tensor(lists[b].prompt_ids, torch::kLong).unsqueeze(0);
        const auto logits = model->forward(prompt, torch::ones_like(prompt),
                                           torch::tensor(decoder_input, torch::kLong).unsqueeze(0))[0];
        const auto naive =
            torch::log_softmax(logits, -1).gather(1, torch::tensor(y, torch::kLong).unsqueeze(1)).sum().item<double>();
        EXPECT_NEAR(batch.logps[b][k].item<double>(), naive, 1e-12);
      }
    }
  }
  EXPECT_THROW(list_logprobs(*model, {}, {{1}}), lire::Error);
}

TEST(T5Logprobs, SharedPromptGivesTheGradientsOfSeparateEncodings) {
  for (const auto& m : kModels) {
    SCOPED_TRACE(m);
    auto model = load(m, "fp64");
    lire::config::LoraOptions options;
    options.r = 2;
    options.targets = {"q", "v", "wo"};
    apply_lora(*model, options, torch::kFloat64);
    {
      torch::NoGradGuard no_grad;  // nonzero B so that every adapter gets gradients
      for (auto& [name, p] : lora_parameters(*model)) p.normal_(0.0, 0.1);
    }
    const std::vector<int64_t> prompt = {5, 6, 7, 8, 1};
    const std::vector<std::vector<int64_t>> responses = {{10, 11, 1}, {12, 13, 14, 15, 1}, {16, 1}};
    const std::vector<double> weights = {0.3, -1.2, 0.7};

    auto grads = [&](bool shared) {
      model->zero_grad();
      torch::Tensor loss = torch::zeros({}, torch::kFloat64);
      if (shared) {
        const auto lp = batch_logprobs(*model, {{prompt, responses}});
        for (std::size_t k = 0; k < responses.size(); ++k) loss = loss + weights[k] * lp.logps[0][k];
      } else {
        for (std::size_t k = 0; k < responses.size(); ++k)
          loss = loss + weights[k] * list_logprobs(*model, prompt, {responses[k]}).sums[0];
      }
      loss.backward();
      std::vector<torch::Tensor> out;
      for (auto& [name, p] : lora_parameters(*model)) {
        EXPECT_TRUE(p.grad().defined()) << name;
        out.push_back(p.grad().clone());
      }
      return std::make_pair(loss.item<double>(), out);
    };
    const auto [shared_loss, shared_grads] = grads(true);
    const auto [separate_loss, separate_grads] = grads(false);
    EXPECT_NEAR(shared_loss, separate_loss, 1e-12);
    ASSERT_EQ(shared_grads.size(), separate_grads.size());
    ASSERT_EQ(shared_grads.size(), 2u * (2 * 2 + 2 * 4) + 2u * 4);  // q, v of 12 attentions; wo of 4 blocks
    for (std::size_t i = 0; i < shared_grads.size(); ++i) {
      EXPECT_GT(max_abs(shared_grads[i]), 0.0) << i;
      EXPECT_LT(max_diff(shared_grads[i], separate_grads[i]), 1e-10 * (1.0 + max_abs(separate_grads[i]))) << i;
    }
  }
}

// -------------------------------------------------------------------- LoRA
TEST(T5Lora, QvAdaptersAreIdentityAtZeroAndChangeTheOutput) {
  const auto in = inputs("t5_tiny");
  auto model = load("t5_tiny", "fp64");
  torch::Tensor base;
  {
    torch::NoGradGuard no_grad;
    base = model->forward(in.ids, in.mask, in.decoder_ids);
  }
  lire::config::LoraOptions options;
  options.r = 4;
  options.alpha = 8;
  options.targets = {"q", "v"};
  const auto adapted = apply_lora(*model, options, torch::kFloat64);
  // q and v of every attention: 2 encoder self, 2 decoder self, 2 decoder cross.
  ASSERT_EQ(adapted.size(), 12u);
  EXPECT_EQ(adapted.front(), "decoder.block.0.layer.0.SelfAttention.q");
  EXPECT_NE(std::find(adapted.begin(), adapted.end(), "decoder.block.1.layer.1.EncDecAttention.v"), adapted.end());
  EXPECT_NE(std::find(adapted.begin(), adapted.end(), "encoder.block.1.layer.0.SelfAttention.v"), adapted.end());
  for (const auto& p : model->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), p.key().find(".lora_") != std::string::npos) << p.key();

  const auto at_zero = model->forward(in.ids, in.mask, in.decoder_ids);
  EXPECT_EQ(max_diff(at_zero, base), 0.0);  // B = 0
  // Gradients reach the adapters (d/dB nonzero while B = 0) and no base weight.
  const auto lp = batch_logprobs(*model, {{{5, 6, 1}, {{7, 8, 1}, {9, 1}}}});
  lp.logps.masked_select(lp.mask).sum().backward();
  for (const auto& [name, p] : lora_parameters(*model)) {
    ASSERT_TRUE(p.grad().defined()) << name;
    if (name.find("lora_B") != std::string::npos) {
      EXPECT_GT(max_abs(p.grad()), 0.0) << name;
    }
  }
  EXPECT_FALSE(model->shared->weight.grad().defined());
  EXPECT_FALSE(model->lm_head->weight.grad().defined());

  torch::NoGradGuard no_grad;
  for (auto& [name, p] : lora_parameters(*model))
    if (name.find("lora_B") != std::string::npos) p.normal_(0.0, 0.2);
  const auto changed = model->forward(in.ids, in.mask, in.decoder_ids);
  EXPECT_GT(max_diff(changed, base), 1e-3);
  {
    AdaptersDisabled off(*model);
    EXPECT_EQ(max_diff(model->forward(in.ids, in.mask, in.decoder_ids), base), 0.0);
  }
}

TEST(T5Lora, PeftRoundTripAndMergeAtLoad) {
  torch::NoGradGuard no_grad;
  lire::testing::TempDir dir("t5_lora");
  const auto in = inputs("t5_tiny_orig");
  auto model = load("t5_tiny_orig", "fp64");
  lire::config::LoraOptions options;
  options.r = 2;
  options.alpha = 4;
  options.targets = {"q", "v", "wi"};
  apply_lora(*model, options, torch::kFloat64);
  for (auto& [name, p] : lora_parameters(*model)) p.normal_(0.0, 0.2);
  const auto adapted = model->forward(in.ids, in.mask, in.decoder_ids);
  const std::string folder = dir.file("adapter");
  save_lora_adapter(*model, folder, options, "t5_tiny_orig", "SEQ_2_SEQ_LM");

  // PEFT's names: base_model.model.<T5 module path>.lora_A.weight.
  const auto file = lire::io::SafetensorsFile::open(folder + "/adapter_model.safetensors");
  const auto names = file->names();
  EXPECT_NE(
      std::find(names.begin(), names.end(), "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight"),
      names.end());
  EXPECT_NE(
      std::find(names.begin(), names.end(), "base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight"),
      names.end());
  EXPECT_NE(
      std::find(names.begin(), names.end(), "base_model.model.decoder.block.0.layer.2.DenseReluDense.wi.lora_A.weight"),
      names.end());

  auto reloaded = load("t5_tiny_orig", "fp64");
  const auto read = load_lora_adapter(*reloaded, folder, torch::kFloat64);
  EXPECT_EQ(read.targets, (std::vector<std::string>{"q", "v", "wi"}));
  EXPECT_LT(max_diff(reloaded->forward(in.ids, in.mask, in.decoder_ids), adapted), 1e-12);

  auto merged = load_t5(kFixtures + "/t5_tiny_orig", lire::testing::cpu_load("fp64", folder));
  EXPECT_TRUE(lora_parameters(*merged).empty());
  EXPECT_LT(max_diff(merged->forward(in.ids, in.mask, in.decoder_ids), adapted), 1e-10);
}

// ---------------------------------------------------------------- variants
// Heads * d_kv != d_model, more decoder than encoder blocks, gated ReLU, fp32:
// cached greedy == uncached, left- and right-padded prompts agree.
TEST(T5Variants, RandomModelWithOddShapes) {
  torch::NoGradGuard no_grad;
  lire::io::T5Config c;
  c.vocab_size = 50;
  c.d_model = 24;
  c.d_kv = 8;
  c.num_heads = 5;  // inner size 40
  c.d_ff = 32;
  c.num_layers = 1;
  c.num_decoder_layers = 3;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 10;
  c.is_gated_act = true;
  c.dense_act_fn = "relu";
  c.tie_word_embeddings = true;
  auto model = random_t5(c, torch::kFloat64, 7);
  const auto right = torch::tensor({{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 1}, {3, 4, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0}});
  const auto right_mask = (torch::arange(12).unsqueeze(0) < torch::tensor({12, 4}).unsqueeze(1)).to(torch::kLong);
  const auto cached = t5_greedy_decode(*model, right, right_mask, 15);
  const auto uncached = t5_greedy_decode(*model, right, right_mask, 15, false);
  EXPECT_TRUE(torch::equal(cached.tokens, uncached.tokens));
  EXPECT_LT(max_diff(cached.step_logits, uncached.step_logits), 1e-12);
  // The short prompt alone gives the same decoding as in the padded batch.
  const auto alone = t5_greedy_decode(*model, right.narrow(0, 1, 1).narrow(1, 0, 4), {}, 15);
  EXPECT_LT(max_diff(alone.step_logits[0], cached.step_logits[1].narrow(0, 0, alone.step_logits.size(1))), 1e-12);
  // Relative positions only: padding on the left of the prompt changes nothing.
  const auto left = torch::tensor({{0, 0, 0, 0, 0, 0, 0, 0, 3, 4, 5, 1}});
  const auto left_mask = (torch::arange(12) >= 8).to(torch::kLong).unsqueeze(0);
  const auto from_left = t5_greedy_decode(*model, left, left_mask, 15);
  EXPECT_LT(max_diff(from_left.step_logits, alone.step_logits), 1e-12);
}

// A hand-built model whose next token is known: zero sub-layers but the
// cross-attention (uniform over the prompt, v = o = identity), one-hot
// embeddings, so the decoder sees e_input + 2.83 e_prompt. lm_head: token 2
// when the prompt is 4s; EOS when it is 5s.
TEST(T5Variants, RowsStopAtEosAndContinueWithPad) {
  torch::NoGradGuard no_grad;
  lire::io::T5Config c;
  c.vocab_size = 6;
  c.d_model = c.d_kv = 8;
  c.num_heads = 1;
  c.d_ff = 4;
  c.num_layers = c.num_decoder_layers = 1;
  c.tie_word_embeddings = false;
  auto model = random_t5(c, torch::kFloat32, 1);
  for (auto& p : model->named_parameters())
    p.value().fill_(p.key().find("layer_norm") != std::string::npos ? 1.0 : 0.0);
  for (int64_t t = 0; t < 6; ++t) model->shared->weight[t][t] = 1.0;
  auto& cross = model->decoder->block->ptr<T5BlockImpl>(0)->layer->ptr<T5LayerCrossAttentionImpl>(1)->EncDecAttention;
  cross->v->weight.copy_(torch::eye(8));
  cross->o->weight.copy_(torch::eye(8));
  model->lm_head->weight[2][4] = 1.0;
  model->lm_head->weight[1][5] = 1.0;

  const auto out = t5_greedy_decode(*model, torch::tensor({{4, 4}, {5, 5}}), {}, 4);
  EXPECT_TRUE(torch::equal(out.tokens, torch::tensor({{0, 2, 2, 2, 2}, {0, 1, 0, 0, 0}}))) << out.tokens;
  EXPECT_EQ(out.step_logits.sizes(), (std::vector<int64_t>{2, 4, 6}));
  // Every row done: decoding stops early.
  const auto done = t5_greedy_decode(*model, torch::tensor({{5, 5}, {5, 4}}), {}, 4);
  EXPECT_TRUE(torch::equal(done.tokens, torch::tensor({{0, 1}, {0, 1}}))) << done.tokens;
  EXPECT_EQ(t5_greedy_decode(*model, torch::tensor({{4}}), {}, 0).tokens.size(1), 1);
}

TEST(T5Variants, CheckpointQuirksAndErrors) {
  lire::testing::TempDir dir("t5_ckpt");
  auto write_variant = [&](const std::string& name, const std::function<void(json&)>& edit_config,
                           const std::function<void(std::vector<std::pair<std::string, torch::Tensor>>&)>& edit) {
    const std::string folder = dir.file(name);
    fs::create_directories(folder);
    std::ifstream config_in(kFixtures + "/t5_tiny_orig/config.json");
    json config = json::parse(config_in);
    edit_config(config);
    std::ofstream(folder + "/config.json") << config.dump(2);
    const auto file = lire::io::SafetensorsFile::open(kFixtures + "/t5_tiny_orig/model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& n : file->names()) tensors.emplace_back(n, file->tensor(n).clone());
    edit(tensors);
    lire::io::save_safetensors(folder + "/model.safetensors", tensors);
    return folder;
  };
  torch::NoGradGuard no_grad;
  const auto in = inputs("t5_tiny_orig");
  const auto want = load("t5_tiny_orig", "fp32")->forward(in.ids, in.mask, in.decoder_ids);
  // Old-style checkpoints: embed_tokens copies, lm_head of a tied model, cross-attention bias.
  const auto extra = write_variant(
      "extra", [](json&) {},
      [](auto& t) {
        torch::Tensor shared;
        for (const auto& [n, v] : t)
          if (n == "shared.weight") shared = v;
        t.emplace_back("encoder.embed_tokens.weight", shared);
        t.emplace_back("decoder.embed_tokens.weight", shared);
        t.emplace_back("lm_head.weight", shared);
        t.emplace_back("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight", torch::zeros({32, 4}));
      });
  auto model = load_t5(extra, lire::testing::cpu_load("fp32"));
  EXPECT_EQ(max_diff(model->forward(in.ids, in.mask, in.decoder_ids), want), 0.0);

  // bf16 weights load and convert.
  const auto bf16 = write_variant(
      "bf16", [](json& c) { c["torch_dtype"] = "bfloat16"; },
      [](auto& t) {
        for (auto& [n, v] : t) v = v.to(torch::kBFloat16);
      });
  const auto from_bf16 = load_t5(bf16, lire::testing::cpu_load("fp32"))->forward(in.ids, in.mask, in.decoder_ids);
  EXPECT_LT(max_diff(from_bf16, want), 0.05 * max_abs(want));

  // A missing tensor is named; so is a wrong shape.
  const auto missing = write_variant(
      "missing", [](json&) {},
      [](auto& t) {
        t.erase(
            std::remove_if(t.begin(), t.end(),
                           [](const auto& p) { return p.first == "encoder.block.1.layer.1.DenseReluDense.wo.weight"; }),
            t.end());
      });
  try {
    load_t5(missing, lire::testing::cpu_load("fp32"));
    ADD_FAILURE() << "no error";
  } catch (const lire::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'encoder.block.1.layer.1.DenseReluDense.wo.weight' is missing"));
  }
  // The v1.1 config over original weights: the gated FFN's tensors are missing.
  const auto gated = write_variant(
      "gated",
      [](json& c) {
        c["feed_forward_proj"] = "gated-gelu";
        c.erase("dense_act_fn");
        c.erase("is_gated_act");
      },
      [](auto&) {});
  try {
    load_t5(gated, lire::testing::cpu_load("fp32"));
    ADD_FAILURE() << "no error";
  } catch (const lire::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("DenseReluDense.wi_0.weight' is missing"));
  }
}

}  // namespace

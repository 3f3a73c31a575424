// The Llama decoder against Hugging Face transformers' outputs on the tiny
// fixtures (tests/fixtures/hf, see its README), and against itself on variants
// made here: tied embeddings, plain MHA, bf16 and sharded checkpoints, padding
// sides, batching, chunked log-probs vs the naive full log-softmax.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/io/hf_config.h"
#include "lire/io/safetensors.h"
#include "lire/models/llama.h"
#include "lire/models/sequence_logprobs.h"
#include "lire/models/weights.h"
#include "support/hf_fixtures.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lire::models;

const std::string kFixtures = lire::testing::kHfFixtures;
using lire::testing::ids_tensor;
using lire::testing::masked_max_diff;

nlohmann::json reference_json(const std::string& model) { return lire::testing::hf_reference(model); }
torch::Tensor reference_array(const std::string& model, const std::string& name) {
  return lire::testing::hf_reference_array(model, name);
}
LoadOptions cpu(const std::string& dtype, const std::string& adapter = "") {
  return lire::testing::cpu_load(dtype, adapter);
}

double max_abs(const torch::Tensor& a) { return a.abs().max().item<double>(); }

TEST(LlamaParity, Float64LogitsMatchExactReference) {
  torch::NoGradGuard no_grad;
  auto model = load_causal_lm(kFixtures + "/llama_tiny", cpu("fp64"));
  const auto ref = reference_json("llama_tiny");
  const auto ids = ids_tensor(ref["inputs"]["ids_right"]), mask = ids_tensor(ref["inputs"]["mask_right"]);
  const auto logits = model->logits(model->forward(ids, mask));
  EXPECT_LT(masked_max_diff(logits, reference_array("llama_tiny", "logits_np_f64"), mask), 1e-9);
  EXPECT_LT(masked_max_diff(logits, reference_array("llama_tiny", "logits_hf_f64"), mask), 1e-5);
}

TEST(LlamaParity, HiddenStatesMatchHf) {
  torch::NoGradGuard no_grad;
  auto model = load_causal_lm(kFixtures + "/llama_tiny", cpu("fp64"));
  const auto ref = reference_json("llama_tiny");
  const auto ids = ids_tensor(ref["inputs"]["ids_right"]), mask = ids_tensor(ref["inputs"]["mask_right"]);
  const auto expected = reference_array("llama_tiny", "hidden_states_hf_f64");  // [3,B,T,H]
  EXPECT_LT(masked_max_diff(model->model->embed_tokens(ids), expected[0], mask), 1e-12);
  EXPECT_LT(masked_max_diff(model->forward(ids, mask), expected[2], mask), 1e-5);
}

TEST(LlamaParity, Float32LogitsWithin1e5Relative) {
  torch::NoGradGuard no_grad;
  auto model = load_causal_lm(kFixtures + "/llama_tiny", cpu("fp32"));
  const auto ref = reference_json("llama_tiny");
  const auto ids = ids_tensor(ref["inputs"]["ids_right"]), mask = ids_tensor(ref["inputs"]["mask_right"]);
  const auto logits = model->logits(model->forward(ids, mask));
  const auto expected = reference_array("llama_tiny", "logits_hf_f32");
  EXPECT_LT(masked_max_diff(logits, expected, mask), 1e-5 * max_abs(expected));
}

// The same on LIRE_TEST_DEVICE (cpu unless set; scripts/gpu.sh sets cuda), in
// float32 and in bf16, where attention is the fused kernel on LibTorch 2.1+
// and RMSNorm/rotary/SwiGLU take their composed formulas on CUDA.
TEST(LlamaParity, LogitsMatchHfOnTheTestDevice) {
  const auto device = lire::testing::test_device();
  if (device.is_cuda() && !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::NoGradGuard no_grad;
  const auto ref = reference_json("llama_tiny");
  const auto ids = ids_tensor(ref["inputs"]["ids_right"]), mask = ids_tensor(ref["inputs"]["mask_right"]);
  const auto expected = reference_array("llama_tiny", "logits_hf_f32");
  // bf16 keeps 8 bits of mantissa: its logits carry errors of a few 1e-3 of their scale.
  for (const auto& [dtype, tol] : {std::pair<std::string, double>{"fp32", 1e-5}, {"bf16", 3e-2}}) {
    SCOPED_TRACE(dtype);
    auto options = cpu(dtype);
    options.device = device.str();
    auto model = load_causal_lm(kFixtures + "/llama_tiny", options);
    ASSERT_EQ(model->head_weight().device(), device);
    const auto logits = model->logits(model->forward(ids.to(device), mask.to(device))).to(torch::kCPU, torch::kFloat32);
    EXPECT_LT(masked_max_diff(logits, expected, mask), tol * max_abs(expected));
  }
}

TEST(LlamaParity, LeftPaddingMatchesHf) {
  torch::NoGradGuard no_grad;
  auto model = load_causal_lm(kFixtures + "/llama_tiny", cpu("fp64"));
  const auto ref = reference_json("llama_tiny");
  const auto ids = ids_tensor(ref["inputs"]["ids_left"]), mask = ids_tensor(ref["inputs"]["mask_left"]);
  const auto logits = model->logits(model->forward(ids, mask));  // default positions: cumsum(mask) - 1
  EXPECT_LT(masked_max_diff(logits, reference_array("llama_tiny", "logits_left_mask_pos_hf_f64"), mask), 1e-5);
  // Explicit 0..L-1 positions give HF's default-position logits (RoPE is shift-invariant).
  const auto pos = torch::arange(ids.size(1), torch::kLong).expand_as(ids).contiguous();
  const auto logits2 = model->logits(model->forward(ids, mask, pos));
  EXPECT_LT(masked_max_diff(logits2, reference_array("llama_tiny", "logits_left_default_pos_hf_f64"), mask), 1e-5);
}

TEST(LlamaParity, ContinuationLogprobsMatchHf) {
  torch::NoGradGuard no_grad;
  const auto ref = reference_json("llama_tiny");
  const auto& cont = ref["continuation_logprob"];
  const auto ids = ref["inputs"]["ids_right"], mask = ref["inputs"]["mask_right"];
  const int64_t prompt_len = ref["inputs"]["prompt_len"].get<int64_t>();
  for (const std::string dtype : {"fp32", "fp64"}) {
    SCOPED_TRACE(dtype);
    auto model = load_causal_lm(kFixtures + "/llama_tiny", cpu(dtype));
    for (std::size_t row = 0; row < ids.size(); ++row) {
      std::vector<int64_t> tokens;
      for (std::size_t t = 0; t < ids[row].size(); ++t)
        if (mask[row][t].get<int>() == 1) tokens.push_back(ids[row][t].get<int64_t>());
      const std::vector<int64_t> prompt(tokens.begin(), tokens.begin() + prompt_len);
      const std::vector<int64_t> response(tokens.begin() + prompt_len, tokens.end());
      const auto lp = list_logprobs(*model, prompt, {response});
      const double want = cont[dtype == "fp32" ? "sum_hf_f32" : "sum_np_f64"][row].get<double>();
      EXPECT_NEAR(lp.sums[0].item<double>(), want, dtype == "fp32" ? 1e-4 : 1e-9);
      EXPECT_EQ(lp.token_counts[0].item<int64_t>(), static_cast<int64_t>(response.size()));
      for (std::size_t t = 0; t < response.size(); ++t)
        EXPECT_NEAR(lp.per_token[0][t].item<double>(), cont["per_token_hf_f64"][row][t].get<double>(), 1e-4);
    }
  }
}

TEST(LlamaParity, GreedyWithKvCacheMatchesHf) {
  torch::NoGradGuard no_grad;
  auto model = load_causal_lm(kFixtures + "/llama_tiny", cpu("fp32"));
  const auto greedy = reference_json("llama_tiny")["greedy"];
  std::vector<int64_t> prompt = greedy["prompt"].get<std::vector<int64_t>>();
  KVCache cache;
  auto input = torch::tensor(prompt, torch::kLong).unsqueeze(0);
  const auto step_logits = reference_array("llama_tiny", "greedy_step_logits_hf_f64");
  std::vector<int64_t> generated;
  for (int step = 0; step < greedy["max_new_tokens"].get<int>(); ++step) {
    const auto mask = torch::ones({1, cache.length() + input.size(1)}, torch::kLong);
    const auto logits = model->logits(model->forward(input, mask, {}, &cache)).select(1, -1)[0];
    EXPECT_LT(max_abs(logits.to(torch::kFloat64) - step_logits[step]), 1e-4) << "step " << step;
    const int64_t next = logits.argmax().item<int64_t>();
    generated.push_back(next);
    input = torch::tensor({next}, torch::kLong).unsqueeze(0);
  }
  EXPECT_EQ(generated, greedy["new_tokens_hf_f32_cache"].get<std::vector<int64_t>>());
}

TEST(LlamaParity, MergedLoraAdapterMatchesPeft) {
  torch::NoGradGuard no_grad;
  auto model = load_causal_lm(kFixtures + "/llama_tiny", cpu("fp64", kFixtures + "/llama_tiny_lora"));
  const auto ref = reference_json("llama_tiny_lora");
  const auto ids = ids_tensor(ref["inputs"]["ids_right"]), mask = ids_tensor(ref["inputs"]["mask_right"]);
  const auto logits = model->logits(model->forward(ids, mask));
  EXPECT_LT(masked_max_diff(logits, reference_array("llama_tiny_lora", "logits_np_f64"), mask), 1e-9);
  // The adapter changes the logits (the test would pass vacuously otherwise).
  EXPECT_GT(masked_max_diff(logits, reference_array("llama_tiny", "logits_np_f64"), mask), 1e-3);
}

TEST(LlamaParity, RewardModelScoresMatchHf) {
  torch::NoGradGuard no_grad;
  const auto ref = reference_json("llama_rm_tiny");
  const auto ids = ids_tensor(ref["inputs"]["ids"]), mask = ids_tensor(ref["inputs"]["attention_mask"]);
  for (const std::string dtype : {"fp32", "fp64"}) {
    auto rm = load_sequence_classifier(kFixtures + "/llama_rm_tiny", cpu(dtype));
    const auto scores = rm->forward(ids, mask).squeeze(-1);
    const auto want = ref[dtype == "fp32" ? "score_hf_f32" : "score_hf_f64"];
    for (int64_t r = 0; r < scores.size(0); ++r)
      EXPECT_NEAR(scores[r].item<double>(), want[r].get<double>(), 1e-5) << dtype << " row " << r;
  }
  // Pooled positions follow HF's current rule (rightmost real token).
  const auto pooled = last_real_positions(mask);
  const auto want_index = ref["pooled_index_rule_hf_current"];
  for (int64_t r = 0; r < pooled.size(0); ++r) EXPECT_EQ(pooled[r].item<int64_t>(), want_index[r].get<int64_t>());
}

// ------------------------------------------------------------------ variants

// A random tiny Llama written as an HF folder (config.json + safetensors).
struct TinyModel {
  fs::path folder;
  lire::io::LlamaConfig config;
};

TinyModel make_tiny(const std::string& name, int64_t kv_heads, bool tied, const std::string& file_dtype = "F32",
                    bool write_lm_head_when_tied = false, std::size_t shard_bytes = 0) {
  TinyModel t;
  t.folder = fs::temp_directory_path() / ("lire_tiny_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(t.folder);
  fs::create_directories(t.folder);
  json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 96},
              {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
              {"num_attention_heads", 4}, {"num_key_value_heads", kv_heads}, {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0}, {"max_position_embeddings", 64}, {"tie_word_embeddings", tied},
              {"torch_dtype", file_dtype == "BF16" ? "bfloat16" : "float32"}};
  std::ofstream(t.folder / "config.json") << cfg.dump(2);
  t.config = lire::io::read_llama_config(t.folder.string());
  torch::manual_seed(7);
  LlamaForCausalLM model(t.config, torch::TensorOptions().dtype(torch::kFloat32));
  model->init_weights(0.2);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) {
    auto v = p.value().detach();
    if (file_dtype == "BF16") v = v.to(torch::kBFloat16);
    tensors.emplace_back(p.key(), v);
  }
  if (tied && write_lm_head_when_tied) tensors.emplace_back("lm_head.weight", model->head_weight().detach());
  if (shard_bytes)
    lire::io::save_sharded_safetensors(t.folder.string(), tensors, shard_bytes);
  else
    lire::io::save_safetensors((t.folder / "model.safetensors").string(), tensors);
  return t;
}

// Two prompts with ragged responses.
std::vector<ListTokens> sample_lists() {
  return {{{1, 5, 9, 13}, {{20, 21, 22}, {30}, {40, 41, 42, 43, 44}}},
          {{1, 7}, {{50, 51}, {60, 61, 62, 63}}}};
}

// Naive reference: full log_softmax over every position of each full sequence.
double naive_logprob(LlamaForCausalLMImpl& model, const std::vector<int64_t>& prompt,
                     const std::vector<int64_t>& response) {
  std::vector<int64_t> seq = prompt;
  seq.insert(seq.end(), response.begin(), response.end());
  const auto ids = torch::tensor(seq, torch::kLong).unsqueeze(0);
  const auto lp = torch::log_softmax(model.logits(model.forward(ids)).to(torch::kFloat64), -1)[0];
  double sum = 0;
  for (std::size_t t = prompt.size(); t < seq.size(); ++t) sum += lp[t - 1][seq[t]].item<double>();
  return sum;
}

TEST(LlamaVariants, ChunkedBatchedLogprobsEqualNaivePerSequence) {
  torch::NoGradGuard no_grad;
  for (int64_t kv : {4, 2, 1}) {  // MHA, GQA, MQA
    SCOPED_TRACE("kv_heads " + std::to_string(kv));
    const auto tiny = make_tiny("kv" + std::to_string(kv), kv, false);
    auto model = load_causal_lm(tiny.folder.string(), cpu("fp64"));
    const auto lists = sample_lists();
    LogprobOptions small;
    small.chunk_positions = 3;  // several chunks per batch
    small.max_sequences = 2;    // several forward passes, padding inside each
    const auto batch = batch_logprobs(*model, lists, small);
    const auto whole = batch_logprobs(*model, lists);  // one pass, one chunk
    EXPECT_LT(max_abs(batch.logps - whole.logps), 1e-10);
    ASSERT_EQ(batch.logps.sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_FALSE(batch.mask[1][2].item<bool>());
    for (std::size_t b = 0; b < lists.size(); ++b) {
      for (std::size_t k = 0; k < lists[b].response_ids.size(); ++k) {
        EXPECT_NEAR(batch.logps[b][k].item<double>(),
                    naive_logprob(*model, lists[b].prompt_ids, lists[b].response_ids[k]), 1e-10);
        EXPECT_EQ(batch.token_counts[b][k].item<int64_t>(), static_cast<int64_t>(lists[b].response_ids[k].size()));
        // A batch of one equals the batched value.
        const auto single = list_logprobs(*model, lists[b].prompt_ids, {lists[b].response_ids[k]});
        EXPECT_NEAR(single.sums[0].item<double>(), batch.logps[b][k].item<double>(), 1e-10);
      }
    }
    fs::remove_all(tiny.folder);
  }
}

TEST(LlamaVariants, LeftAndRightPaddingGiveTheSameSequences) {
  torch::NoGradGuard no_grad;
  const auto tiny = make_tiny("pad", 2, false);
  auto model = load_causal_lm(tiny.folder.string(), cpu("fp64"));
  const auto right = torch::tensor({1, 5, 9, 13, 17, 1, 6, 10, 0, 0}, torch::kLong).view({2, 5});
  const auto right_mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, torch::kLong).view({2, 5});
  const auto left = torch::tensor({1, 5, 9, 13, 17, 0, 0, 1, 6, 10}, torch::kLong).view({2, 5});
  const auto left_mask = torch::tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, torch::kLong).view({2, 5});
  const auto r = model->logits(model->forward(right, right_mask));
  const auto l = model->logits(model->forward(left, left_mask));
  EXPECT_LT(max_abs(r[0] - l[0]), 1e-10);
  EXPECT_LT(max_abs(r[1].narrow(0, 0, 3) - l[1].narrow(0, 2, 3)), 1e-10);
  // Alone, unpadded: the same again.
  const auto alone = model->logits(model->forward(torch::tensor({1, 6, 10}, torch::kLong).unsqueeze(0)));
  EXPECT_LT(max_abs(alone[0] - r[1].narrow(0, 0, 3)), 1e-10);
  fs::remove_all(tiny.folder);
}

TEST(LlamaVariants, TiedEmbeddingsWithAndWithoutLmHeadTensor) {
  torch::NoGradGuard no_grad;
  const auto without = make_tiny("tied", 2, true);
  const auto with = make_tiny("tied_head", 2, true, "F32", /*write_lm_head_when_tied=*/true);
  auto a = load_causal_lm(without.folder.string(), cpu("fp32"));
  auto b = load_causal_lm(with.folder.string(), cpu("fp32"));
  EXPECT_FALSE(a->lm_head);
  EXPECT_EQ(a->head_weight().data_ptr(), a->model->embed_tokens->weight.data_ptr());
  const auto ids = torch::tensor({1, 4, 8, 15}, torch::kLong).unsqueeze(0);
  const auto la = a->logits(a->forward(ids));
  EXPECT_LT(max_abs(la - b->logits(b->forward(ids))), 1e-6);
  // Tied head: logits are hidden @ embed^T.
  EXPECT_LT(max_abs(la - torch::matmul(a->forward(ids), a->model->embed_tokens->weight.t())), 1e-5);
  fs::remove_all(without.folder);
  fs::remove_all(with.folder);
}

TEST(LlamaVariants, Bf16CheckpointLoadsAndConverts) {
  torch::NoGradGuard no_grad;
  const auto f32 = make_tiny("f32", 2, false);
  const auto bf16 = make_tiny("bf16", 2, false, "BF16");
  auto a = load_causal_lm(f32.folder.string(), cpu("fp32"));
  auto b = load_causal_lm(bf16.folder.string(), cpu("fp32"));
  // Same weights up to bf16 rounding (relative 2^-8).
  const auto wa = a->model->layers->ptr<LlamaDecoderLayerImpl>(0)->self_attn->q_proj->weight;
  const auto wb = b->model->layers->ptr<LlamaDecoderLayerImpl>(0)->self_attn->q_proj->weight;
  EXPECT_EQ(wb.scalar_type(), torch::kFloat32);
  EXPECT_LT(max_abs(wa - wb), 4e-3 * max_abs(wa));
  EXPECT_TRUE(torch::equal(wb, wa.to(torch::kBFloat16).to(torch::kFloat32)));
  auto c = load_causal_lm(bf16.folder.string(), cpu("bf16"));  // compute in bf16
  EXPECT_EQ(c->head_weight().scalar_type(), torch::kBFloat16);
  const auto ids = torch::tensor({1, 4, 8, 15}, torch::kLong).unsqueeze(0);
  const auto lb = b->logits(b->forward(ids)), lc = c->logits(c->forward(ids)).to(torch::kFloat32);
  EXPECT_LT(max_abs(lb - lc), 4e-2 * max_abs(lb));
  fs::remove_all(f32.folder);
  fs::remove_all(bf16.folder);
}

TEST(LlamaVariants, ShardedCheckpointEqualsSingleFile) {
  torch::NoGradGuard no_grad;
  const auto single = make_tiny("single", 2, false);
  const auto sharded = make_tiny("sharded", 2, false, "F32", false, /*shard_bytes=*/20000);
  EXPECT_TRUE(fs::exists(sharded.folder / "model.safetensors.index.json"));
  auto a = load_causal_lm(single.folder.string(), cpu("fp32"));
  auto b = load_causal_lm(sharded.folder.string(), cpu("fp32"));
  const auto ids = torch::tensor({1, 4, 8, 15, 16}, torch::kLong).unsqueeze(0);
  EXPECT_EQ(max_abs(a->logits(a->forward(ids)) - b->logits(b->forward(ids))), 0.0);
  fs::remove_all(single.folder);
  fs::remove_all(sharded.folder);
}

TEST(LlamaVariants, MissingOrMisshapenTensorIsNamed) {
  const auto tiny = make_tiny("broken", 2, false);
  // Rewrite the checkpoint without one tensor, then with a wrong shape.
  auto file = lire::io::SafetensorsFile::open((tiny.folder / "model.safetensors").string());
  std::vector<std::pair<std::string, torch::Tensor>> kept, reshaped;
  for (const auto& name : file->names()) {
    const auto t = file->tensor(name).clone();
    if (name != "model.layers.1.mlp.up_proj.weight") kept.emplace_back(name, t);
    reshaped.emplace_back(name, name == "model.norm.weight" ? torch::ones({31}) : t);
  }
  file.reset();
  lire::io::save_safetensors((tiny.folder / "model.safetensors").string(), kept);
  try {
    load_causal_lm(tiny.folder.string(), cpu("fp32"));
    ADD_FAILURE() << "no error for a missing tensor";
  } catch (const lire::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'model.layers.1.mlp.up_proj.weight' is missing"), std::string::npos) << e.what();
  }
  lire::io::save_safetensors((tiny.folder / "model.safetensors").string(), reshaped);
  try {
    load_causal_lm(tiny.folder.string(), cpu("fp32"));
    ADD_FAILURE() << "no error for a wrong shape";
  } catch (const lire::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'model.norm.weight' has shape [31]"), std::string::npos) << e.what();
  }
  fs::remove_all(tiny.folder);
}

TEST(LlamaVariants, LogprobsAreDifferentiable) {
  const auto tiny = make_tiny("grad", 2, false);
  auto model = load_causal_lm(tiny.folder.string(), cpu("fp64"));
  const auto batch = batch_logprobs(*model, sample_lists());
  batch.logps.masked_select(batch.mask).sum().backward();
  const auto g = model->model->layers->ptr<LlamaDecoderLayerImpl>(1)->mlp->down_proj->weight.grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(max_abs(g), 0.0);
  fs::remove_all(tiny.folder);
}

TEST(LlamaVariants, SlidingWindowMasksDistantKeys) {
  torch::NoGradGuard no_grad;
  const auto tiny = make_tiny("window", 2, false);
  auto config = tiny.config;
  config.num_hidden_layers = 1;  // so that a position sees exactly the window (no deeper receptive field)
  torch::manual_seed(3);
  LlamaForCausalLM full(config, torch::TensorOptions().dtype(torch::kFloat64));
  full->init_weights(0.3);
  config.sliding_window = 3;
  LlamaForCausalLM windowed(config, torch::TensorOptions().dtype(torch::kFloat64));
  {
    auto src = full->named_parameters();
    for (auto& p : windowed->named_parameters()) p.value().copy_(src[p.key()]);
  }
  const auto ids = torch::tensor({1, 4, 8, 15, 16, 23, 42}, torch::kLong).unsqueeze(0);
  const auto a = full->logits(full->forward(ids)), b = windowed->logits(windowed->forward(ids));
  // Positions 0..2 see the same keys either way; later ones lose the distant keys.
  EXPECT_LT(max_abs(a.narrow(1, 0, 3) - b.narrow(1, 0, 3)), 1e-12);
  EXPECT_GT(max_abs(a.narrow(1, 3, 4) - b.narrow(1, 3, 4)), 1e-6);
  // The last position of the windowed model equals the full model run on the last
  // 3 tokens alone (at their own positions).
  const auto tail = ids.narrow(1, 4, 3);
  const auto c = full->logits(full->forward(tail, {}, torch::tensor({4, 5, 6}, torch::kLong).unsqueeze(0)));
  EXPECT_LT(max_abs(c.select(1, 2) - b.select(1, 6)), 1e-10);
  fs::remove_all(tiny.folder);
}

TEST(LlamaVariants, Fp16OnCpuIsAConfigError) {
  EXPECT_THROW(resolve_dtype("fp16", torch::Device(torch::kCPU)), lire::ConfigError);
  EXPECT_EQ(resolve_dtype("auto", torch::Device(torch::kCPU)), torch::kFloat32);
  EXPECT_THROW(resolve_dtype("float32", torch::Device(torch::kCPU)), lire::ConfigError);
}

// Rotary tables against independent formulas: cos/sin(p * theta^(-2i/D)).
torch::Tensor expected_cos(const std::vector<int64_t>& positions, int64_t dim, double base, double scale = 1.0) {
  auto out = torch::zeros({1, static_cast<int64_t>(positions.size()), dim}, torch::kFloat64);
  for (std::size_t t = 0; t < positions.size(); ++t)
    for (int64_t i = 0; i < dim / 2; ++i) {
      const double angle = positions[t] / scale * std::pow(base, -2.0 * i / dim);
      out[0][t][i] = std::cos(angle);
      out[0][t][i + dim / 2] = std::cos(angle);
    }
  return out;
}

TEST(LlamaRope, NoneLinearAndDynamicScaling) {
  lire::io::LlamaConfig c;
  c.head_dim = 8;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 16;
  const std::vector<int64_t> short_pos = {0, 3, 7, 15}, long_pos = {0, 5, 17, 31};
  const auto ids = [](const std::vector<int64_t>& p) { return torch::tensor(p, torch::kLong).unsqueeze(0); };

  RotaryEmbedding plain(c, torch::kFloat64);
  EXPECT_LT(max_abs(plain.tables(ids(long_pos), torch::kFloat64).first - expected_cos(long_pos, 8, 1e4)), 1e-12);

  c.rope_scaling.type = "linear";
  c.rope_scaling.factor = 2.0;
  RotaryEmbedding linear(c, torch::kFloat64);
  EXPECT_LT(max_abs(linear.tables(ids(long_pos), torch::kFloat64).first - expected_cos(long_pos, 8, 1e4, 2.0)), 1e-12);

  // Dynamic NTK: unchanged within the trained context; beyond it the base grows
  // to theta * (factor * L / max_pos - (factor - 1))^(D / (D - 2)), L = longest position + 1.
  c.rope_scaling.type = "dynamic";
  RotaryEmbedding dynamic(c, torch::kFloat64);
  EXPECT_LT(max_abs(dynamic.tables(ids(short_pos), torch::kFloat64).first - expected_cos(short_pos, 8, 1e4)), 1e-12);
  const double base = 1e4 * std::pow(2.0 * 32 / 16 - 1.0, 8.0 / 6.0);
  EXPECT_LT(max_abs(dynamic.tables(ids(long_pos), torch::kFloat64).first - expected_cos(long_pos, 8, base)), 1e-12);
}

}  // namespace

// LoRA adapters: identity at initialisation, PEFT's fixture adapter loaded as
// trainable adapters reproduces PEFT's logits, adapters switch off to the base,
// save/load round trip in PEFT's format, merging equals the adapted model, and
// gradients reach only the adapters.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/io/safetensors.h"
#include "lire/models/export.h"
#include "lire/models/lora.h"
#include "lire/models/weights.h"
#include "support/hf_fixtures.h"

namespace {

namespace fs = std::filesystem;
using namespace lire::models;
using nlohmann::json;

const std::string kHf = lire::testing::kHfFixtures;
using lire::testing::ids_tensor;
using lire::testing::masked_max_diff;

LoadOptions cpu(const std::string& dtype, const std::string& adapter = "") {
  return lire::testing::cpu_load(dtype, adapter);
}
json reference(const std::string& model) { return lire::testing::hf_reference(model); }
torch::Tensor fixture_logits(const std::string& model, const std::string& name) {
  return lire::testing::hf_reference_array(model, name);
}

struct Inputs {
  torch::Tensor ids, mask;
};
Inputs inputs() {
  const auto ref = reference("llama_tiny_lora");
  return {ids_tensor(ref["inputs"]["ids_right"]), ids_tensor(ref["inputs"]["mask_right"])};
}

fs::path temp_dir(const std::string& name) {
  const auto p = fs::temp_directory_path() / ("lire_lora_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

TEST(Lora, NewAdaptersAreTheIdentityAndOnlyAdaptersTrain) {
  auto model = load_causal_lm(kHf + "/llama_tiny", cpu("fp64"));
  const auto in = inputs();
  torch::Tensor before;
  {
    torch::NoGradGuard no_grad;
    before = model->logits(model->forward(in.ids, in.mask));
  }
  lire::config::LoraOptions options;
  options.r = 4;
  options.targets = {"q_proj", "v_proj", "down_proj"};
  const auto adapted = apply_lora(*model, options, torch::kFloat64);
  EXPECT_EQ(adapted.size(), 6u);  // 3 targets x 2 layers
  EXPECT_EQ(adapted.front(), "model.layers.0.mlp.down_proj");
  const auto params = lora_parameters(*model);
  EXPECT_EQ(params.size(), 12u);
  for (const auto& p : model->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), p.key().find(".lora_") != std::string::npos) << p.key();
  const auto after = model->logits(model->forward(in.ids, in.mask));
  EXPECT_EQ((after - before).abs().max().item<double>(), 0.0);  // B = 0
  after.sum().backward();
  for (const auto& [name, p] : params) {
    ASSERT_TRUE(p.grad().defined()) << name;
    // d/dB is nonzero (A is random); d/dA is zero while B is zero.
    if (name.find("lora_B") != std::string::npos) {
      EXPECT_GT(p.grad().abs().max().item<double>(), 0.0) << name;
    }
  }
  EXPECT_FALSE(model->model->embed_tokens->weight.grad().defined());
  // A's initial range is PEFT's: U(-1/sqrt(in), 1/sqrt(in)).
  const auto a = model->model->layers->ptr<LlamaDecoderLayerImpl>(0)->self_attn->q_proj->lora_A->weight;
  EXPECT_LE(a.abs().max().item<double>(), 1.0 / std::sqrt(64.0) + 1e-12);
  EXPECT_GT(a.abs().max().item<double>(), 0.5 / std::sqrt(64.0));
}

TEST(Lora, PeftFixtureAdapterLoadsAsTrainableAndSwitchesOff) {
  torch::NoGradGuard no_grad;
  auto model = load_causal_lm(kHf + "/llama_tiny", cpu("fp64"));
  const auto options = load_lora_adapter(*model, kHf + "/llama_tiny_lora", torch::kFloat64);
  EXPECT_EQ(options.r, 4);
  EXPECT_DOUBLE_EQ(options.scaling(), 2.0);
  EXPECT_EQ(lora_parameters(*model).size(), 4u);  // q_proj and v_proj of layer 0
  const auto in = inputs();
  const auto adapted = model->logits(model->forward(in.ids, in.mask));
  EXPECT_LT(masked_max_diff(adapted, fixture_logits("llama_tiny_lora", "logits_np_f64"), in.mask), 1e-9);
  {
    AdaptersDisabled off(*model);
    const auto base = model->logits(model->forward(in.ids, in.mask));
    EXPECT_LT(masked_max_diff(base, fixture_logits("llama_tiny", "logits_np_f64"), in.mask), 1e-9);
  }
  const auto again = model->logits(model->forward(in.ids, in.mask));
  EXPECT_EQ((again - adapted).abs().max().item<double>(), 0.0);
}

TEST(Lora, SaveLoadRoundTripInPeftFormatAndMerging) {
  torch::NoGradGuard no_grad;
  const auto in = inputs();
  auto model = load_causal_lm(kHf + "/llama_tiny", cpu("fp32"));
  lire::config::LoraOptions options;
  options.r = 2;
  options.alpha = 6;
  options.targets = {"all-linear"};
  apply_lora(*model, options);
  torch::manual_seed(11);
  for (auto& [name, p] : lora_parameters(*model)) p.normal_(0.0, 0.05);  // a trained-looking adapter
  const auto adapted = model->logits(model->forward(in.ids, in.mask));
  {
    AdaptersDisabled off(*model);
    EXPECT_GT(masked_max_diff(adapted, model->logits(model->forward(in.ids, in.mask)), in.mask), 1e-3);
  }
  const auto dir = temp_dir("roundtrip");
  save_lora_adapter(*model, dir.string(), options, "tests/fixtures/hf/llama_tiny");

  // The files are PEFT's: config fields and tensor names.
  std::ifstream config_in(dir / "adapter_config.json");
  const auto config = json::parse(config_in);
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 2);
  EXPECT_EQ(config["lora_alpha"], 6.0);
  EXPECT_EQ(config["target_modules"],
            (std::vector<std::string>{"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
  auto file = lire::io::SafetensorsFile::open((dir / "adapter_model.safetensors").string());
  EXPECT_TRUE(file->contains("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"));
  EXPECT_EQ(file->names().size(), 2u * 7 * 2);  // A and B, 7 Linears, 2 layers (lm_head excluded)
  file.reset();

  // Loaded as trainable adapters into a fresh model: identical logits.
  auto fresh = load_causal_lm(kHf + "/llama_tiny", cpu("fp32"));
  load_lora_adapter(*fresh, dir.string());
  EXPECT_EQ(masked_max_diff(fresh->logits(fresh->forward(in.ids, in.mask)), adapted, in.mask), 0.0);

  // Merged at load (model.adapter), and merged in place: the adapted logits.
  auto merged_at_load = load_causal_lm(kHf + "/llama_tiny", cpu("fp32", dir.string()));
  EXPECT_LT(masked_max_diff(merged_at_load->logits(merged_at_load->forward(in.ids, in.mask)), adapted, in.mask), 1e-5);
  merge_lora(*fresh);
  EXPECT_TRUE(lora_parameters(*fresh).empty());
  for (const auto& p : fresh->named_parameters()) EXPECT_EQ(p.key().find("lora"), std::string::npos) << p.key();
  EXPECT_LT(masked_max_diff(fresh->logits(fresh->forward(in.ids, in.mask)), adapted, in.mask), 1e-5);
  fs::remove_all(dir);
}

TEST(Lora, Errors) {
  auto model = load_causal_lm(kHf + "/llama_tiny", cpu("fp32"));
  lire::config::LoraOptions options;
  options.targets = {"qkv_proj"};
  try {
    apply_lora(*model, options);
    ADD_FAILURE() << "no error";
  } catch (const lire::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("match no Linear module"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("q_proj"), std::string::npos) << e.what();
  }
  auto other = load_causal_lm(kHf + "/llama_tiny", cpu("fp32"));
  EXPECT_THROW(save_lora_adapter(*other, temp_dir("none").string(), options, "x"), lire::Error);
}

}  // namespace

namespace {

TEST(LoraExport, MergedFolderLoadsAndMatchesTheAdaptedModel) {
  torch::NoGradGuard no_grad;
  const auto out = temp_dir("merged");
  lire::models::ExportOptions options;
  options.max_shard_bytes = 200'000;  // force shards for the tiny model
  lire::models::merge_adapter_to_folder(kHf + "/llama_tiny", kHf + "/llama_tiny_lora", out.string(), options);
  for (const char* f : {"config.json", "model.safetensors.index.json", "tokenizer.model", "tokenizer_config.json",
                        "generation_config.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  auto merged = load_causal_lm(out.string(), cpu("fp32"));
  const auto in = inputs();
  EXPECT_LT(masked_max_diff(merged->logits(merged->forward(in.ids, in.mask)),
                            fixture_logits("llama_tiny_lora", "logits_hf_f32"), in.mask),
            1e-5 * fixture_logits("llama_tiny_lora", "logits_hf_f32").abs().max().item<double>());
  // A non-empty output folder is refused unless overwriting; no temp folder is left.
  EXPECT_THROW(lire::models::merge_adapter_to_folder(kHf + "/llama_tiny", kHf + "/llama_tiny_lora", out.string()),
               lire::Error);
  options.overwrite = true;
  options.max_shard_bytes = 5'000'000'000ull;
  lire::models::merge_adapter_to_folder(kHf + "/llama_tiny", kHf + "/llama_tiny_lora", out.string(), options);
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors.index.json"));
  for (const auto& e : fs::directory_iterator(out.parent_path()))
    EXPECT_EQ(e.path().filename().string().find(out.filename().string() + ".tmp."), std::string::npos);
  fs::remove_all(out);
}

}  // namespace

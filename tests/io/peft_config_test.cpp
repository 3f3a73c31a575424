// adapter_config.json parsing and PEFT's matching rules: the fixture adapter,
// scaling (plain and rsLoRA), targets() for lists, regexes, all-linear and
// layers_to_transform, rank/alpha patterns, and the unsupported variants.
#include "lire/io/peft_config.h"

#include <cmath>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "support/error_message.h"

namespace lire::io {
namespace {

using json = nlohmann::ordered_json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kAdapter = std::string(LIRE_TEST_FIXTURES) + "/hf/llama_tiny_lora";

template <typename Fn>
std::string config_error(Fn&& fn) {
  return lire::testing::error_message<ConfigError>(std::forward<Fn>(fn));
}

// A LORA config with the given extra keys (a JSON object's inner text).
PeftLoraConfig lora(const std::string& keys) {
  return parse_peft_config(json::parse(R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16)" +
                                       (keys.empty() ? "" : ", " + keys) + "}"),
                           "a/adapter_config.json");
}
std::string lora_error(const std::string& keys) {
  return config_error([&] { lora(keys); });
}

std::string q(int layer) { return "model.layers." + std::to_string(layer) + ".self_attn.q_proj"; }
std::string k(int layer) { return "model.layers." + std::to_string(layer) + ".self_attn.k_proj"; }
std::string v(int layer) { return "model.layers." + std::to_string(layer) + ".self_attn.v_proj"; }
std::string down(int layer) { return "model.layers." + std::to_string(layer) + ".mlp.down_proj"; }

TEST(PeftConfig, ReadsFixtureAdapter) {
  const PeftLoraConfig c = read_peft_config(kAdapter);
  EXPECT_EQ(c.file, kAdapter + "/adapter_config.json");
  EXPECT_EQ(c.peft_type, "LORA");
  EXPECT_EQ(c.base_model_name_or_path, "../llama_tiny");
  EXPECT_EQ(c.task_type, "CAUSAL_LM");
  EXPECT_EQ(c.r, 4);
  EXPECT_DOUBLE_EQ(c.lora_alpha, 8.0);
  EXPECT_DOUBLE_EQ(c.lora_dropout, 0.0);
  EXPECT_FALSE(c.use_rslora);
  EXPECT_THAT(c.target_modules, ElementsAre("q_proj", "v_proj"));
  EXPECT_THAT(c.layers_to_transform, ElementsAre(0));
  EXPECT_TRUE(c.layers_pattern.empty());
  EXPECT_TRUE(c.rank_pattern.empty());
  EXPECT_TRUE(c.alpha_pattern.empty());
  EXPECT_EQ(c.bias, "none");
  EXPECT_FALSE(c.fan_in_fan_out);

  EXPECT_EQ(c.rank(q(0)), 4);
  EXPECT_DOUBLE_EQ(c.scaling(q(0)), 2.0);
  // q_proj and v_proj of layer 0 only (layers_to_transform: [0]).
  EXPECT_TRUE(c.targets(q(0)));
  EXPECT_TRUE(c.targets(v(0)));
  EXPECT_FALSE(c.targets(k(0)));
  EXPECT_FALSE(c.targets(q(1)));
  EXPECT_FALSE(c.targets(v(1)));
  EXPECT_FALSE(c.targets(down(0)));
  EXPECT_FALSE(c.targets("lm_head"));
  // The file path works as well as the folder.
  EXPECT_EQ(read_peft_config(kAdapter + "/adapter_config.json").r, 4);
}

TEST(PeftConfig, Defaults) {
  const PeftLoraConfig c = parse_peft_config(json::parse(R"({"peft_type": "LORA"})"));
  EXPECT_EQ(c.r, 8);
  EXPECT_DOUBLE_EQ(c.lora_alpha, 8.0);
  EXPECT_THAT(c.target_modules, ElementsAre("q_proj", "v_proj"));  // PEFT's Llama default
  EXPECT_TRUE(c.layers_to_transform.empty());
  EXPECT_TRUE(c.targets(q(5)));
  EXPECT_FALSE(c.targets(k(5)));
  EXPECT_DOUBLE_EQ(c.scaling(q(5)), 1.0);
}

TEST(PeftConfig, Scaling) {
  EXPECT_DOUBLE_EQ(lora("").scaling(q(0)), 2.0);
  EXPECT_DOUBLE_EQ(lora(R"("use_rslora": true)").scaling(q(0)), 16.0 / std::sqrt(8.0));
  EXPECT_DOUBLE_EQ(lora(R"("use_rslora": true, "r": 16)").scaling(q(0)), 4.0);
}

TEST(PeftConfig, ListTargetsMatchNameOrSuffix) {
  const PeftLoraConfig c = lora(R"("target_modules": ["q_proj", "mlp.down_proj"])");
  EXPECT_TRUE(c.targets(q(3)));
  EXPECT_TRUE(c.targets(down(3)));
  EXPECT_TRUE(c.targets("q_proj"));  // equal to the name
  EXPECT_FALSE(c.targets(k(3)));
  EXPECT_FALSE(c.targets("model.layers.3.self_attn.xq_proj"));  // suffix must start at a '.'
  EXPECT_FALSE(c.targets("model.layers.3.mlp.down_proj.extra"));
}

TEST(PeftConfig, LayersToTransform) {
  const PeftLoraConfig c = lora(R"("target_modules": ["q_proj", "v_proj"], "layers_to_transform": [1, 3])");
  EXPECT_FALSE(c.targets(q(0)));
  EXPECT_TRUE(c.targets(q(1)));
  EXPECT_FALSE(c.targets(v(2)));
  EXPECT_TRUE(c.targets(v(3)));
  EXPECT_FALSE(c.targets(q(13)));
  EXPECT_FALSE(c.targets("q_proj.x.q_proj"));  // no layer index -> not targeted

  // An int is a single layer; a path equal to a listed name bypasses the layer filter (as in PEFT).
  const PeftLoraConfig one = lora(R"("target_modules": ["q_proj", "model.layers.5.self_attn.v_proj"],
                                     "layers_to_transform": 2)");
  EXPECT_THAT(one.layers_to_transform, ElementsAre(2));
  EXPECT_TRUE(one.targets(q(2)));
  EXPECT_FALSE(one.targets(q(5)));
  EXPECT_TRUE(one.targets(v(5)));

  // An empty list is no restriction.
  EXPECT_TRUE(lora(R"("layers_to_transform": [])").targets(q(7)));
}

TEST(PeftConfig, LayersPattern) {
  const PeftLoraConfig c = lora(R"("target_modules": ["q_proj"], "layers_to_transform": [0],
                                   "layers_pattern": "layers")");
  EXPECT_THAT(c.layers_pattern, ElementsAre("layers"));
  EXPECT_TRUE(c.targets(q(0)));
  EXPECT_FALSE(c.targets(q(1)));
  EXPECT_FALSE(c.targets("model.blocks.0.attn.q_proj"));

  const PeftLoraConfig list = lora(R"("target_modules": ["q_proj"], "layers_to_transform": [0],
                                      "layers_pattern": ["h", "blocks"])");
  EXPECT_TRUE(list.targets("model.blocks.0.attn.q_proj"));
  EXPECT_FALSE(list.targets(q(0)));

  // Without a pattern the index is the number in the last ".<word>.<n>.".
  const PeftLoraConfig any = lora(R"("target_modules": ["q_proj"], "layers_to_transform": [2])");
  EXPECT_TRUE(any.targets("model.encoder.0.layers.2.attn.q_proj"));
  EXPECT_FALSE(any.targets("model.encoder.2.layers.0.attn.q_proj"));
}

TEST(PeftConfig, RegexTargetsFullMatch) {
  const PeftLoraConfig c = lora(R"j("target_modules": ".*\\.(q_proj|v_proj)")j");
  EXPECT_TRUE(c.target_modules.empty());
  EXPECT_EQ(c.target_modules_regex, R"(.*\.(q_proj|v_proj))");
  EXPECT_TRUE(c.targets(q(0)));
  EXPECT_TRUE(c.targets(v(31)));
  EXPECT_FALSE(c.targets(k(0)));
  EXPECT_FALSE(c.targets("q_proj"));  // no leading '.'
  EXPECT_FALSE(c.targets(q(0) + ".lora_A"));  // full match, not search

  const PeftLoraConfig layer = lora(R"j("target_modules": "model\\.layers\\.[01]\\.self_attn\\.(q|k)_proj")j");
  EXPECT_TRUE(layer.targets(k(1)));
  EXPECT_FALSE(layer.targets(k(2)));
  EXPECT_FALSE(layer.targets(v(0)));

  EXPECT_THAT(lora_error(R"("target_modules": "(q_proj")"),
              HasSubstr("a/adapter_config.json: target_modules: '(q_proj' is not a regular expression lire can read"));
  EXPECT_THAT(lora_error(R"("target_modules": ".*q_proj", "layers_to_transform": [0])"),
              HasSubstr("layers_to_transform: cannot be used when target_modules is a string"));
  EXPECT_THAT(lora_error(R"("target_modules": ".*q_proj", "layers_pattern": "layers")"),
              HasSubstr("layers_pattern: cannot be used when target_modules is a string"));
}

TEST(PeftConfig, AllLinear) {
  const PeftLoraConfig c = lora(R"("target_modules": "ALL-linear")");
  EXPECT_TRUE(c.target_all_linear);
  EXPECT_TRUE(c.targets(q(0)));
  EXPECT_TRUE(c.targets(down(9)));
  EXPECT_FALSE(c.targets("lm_head"));
  EXPECT_FALSE(c.targets("score"));
}

TEST(PeftConfig, ExcludeModules) {
  const PeftLoraConfig list = lora(R"("target_modules": ["q_proj", "v_proj"], "exclude_modules": ["layers.0.self_attn.q_proj"])");
  EXPECT_FALSE(list.targets(q(0)));
  EXPECT_TRUE(list.targets(q(1)));
  const PeftLoraConfig regex = lora(R"("target_modules": ["q_proj", "v_proj"], "exclude_modules": ".*\\.layers\\.1\\..*")");
  EXPECT_TRUE(regex.targets(v(0)));
  EXPECT_FALSE(regex.targets(v(1)));
}

TEST(PeftConfig, RankAndAlphaPatterns) {
  const PeftLoraConfig c = lora(R"("target_modules": ["q_proj", "v_proj", "down_proj"],
      "rank_pattern": {"layers.1.self_attn.q_proj": 2, "v_proj": 4, "mlp\\..*": 32},
      "alpha_pattern": {"q_proj": 1, "layers\\.[0-9]+\\.self_attn\\.v_proj": 32})");
  EXPECT_EQ(c.rank(q(1)), 2);
  EXPECT_EQ(c.rank(q(11)), 8);  // "layers.1..." must match whole components: 11 is not 1
  EXPECT_EQ(c.rank(v(0)), 4);
  EXPECT_EQ(c.rank(down(0)), 32);
  EXPECT_EQ(c.rank(k(0)), 8);
  EXPECT_DOUBLE_EQ(c.alpha(q(1)), 1.0);
  EXPECT_DOUBLE_EQ(c.alpha(v(3)), 32.0);
  EXPECT_DOUBLE_EQ(c.alpha(down(0)), 16.0);
  // Rank and alpha are looked up independently.
  EXPECT_DOUBLE_EQ(c.scaling(q(1)), 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(c.scaling(q(0)), 1.0 / 8.0);
  EXPECT_DOUBLE_EQ(c.scaling(v(0)), 32.0 / 4.0);
  EXPECT_DOUBLE_EQ(c.scaling(down(0)), 16.0 / 32.0);

  // The first key in file order wins.
  const PeftLoraConfig order = lora(R"("rank_pattern": {"q_proj": 2, ".*q_proj": 4})");
  EXPECT_EQ(order.rank(q(0)), 2);
  const PeftLoraConfig reversed = lora(R"("rank_pattern": {".*q_proj": 4, "q_proj": 2})");
  EXPECT_EQ(reversed.rank(q(0)), 4);

  const PeftLoraConfig rs = lora(R"("use_rslora": true, "rank_pattern": {"q_proj": 4})");
  EXPECT_DOUBLE_EQ(rs.scaling(q(0)), 16.0 / 2.0);

  EXPECT_THAT(lora_error(R"("rank_pattern": {"q_proj": 0})"),
              HasSubstr("rank_pattern.q_proj: must be a positive integer, got 0"));
  EXPECT_THAT(lora_error(R"("alpha_pattern": {"q_proj": "x"})"),
              HasSubstr("alpha_pattern.q_proj: expected a number"));
  EXPECT_THAT(lora_error(R"("rank_pattern": [1])"), HasSubstr("rank_pattern: expected an object, got a list"));
}

TEST(PeftConfig, UnsupportedVariants) {
  EXPECT_THAT(lora_error(R"("use_dora": true)"), HasSubstr("a/adapter_config.json: use_dora: DoRA adapters"));
  EXPECT_THAT(lora_error(R"("modules_to_save": ["score"])"),
              HasSubstr("a/adapter_config.json: modules_to_save: modules_to_save is not supported"));
  EXPECT_THAT(lora_error(R"("bias": "all")"), HasSubstr("bias: 'all' is not supported (supported: none)"));
  EXPECT_THAT(lora_error(R"("bias": "lora_only")"), HasSubstr("bias: 'lora_only' is not supported"));
  EXPECT_THAT(lora_error(R"("fan_in_fan_out": true)"), HasSubstr("fan_in_fan_out: true is not supported"));
  EXPECT_THAT(lora_error(R"("lora_bias": true)"), HasSubstr("lora_bias: "));
  EXPECT_THAT(lora_error(R"("layer_replication": [[0, 2]])"), HasSubstr("layer_replication is not supported"));
  // Null / empty / false versions of the same keys are fine.
  EXPECT_NO_THROW(lora(R"("use_dora": false, "modules_to_save": null, "bias": "none", "lora_bias": false,
                          "layer_replication": null, "init_lora_weights": "gaussian")"));
  EXPECT_NO_THROW(lora(R"("modules_to_save": [])"));
}

TEST(PeftConfig, Errors) {
  EXPECT_THAT(config_error([] { parse_peft_config(json::parse(R"({"peft_type": "IA3"})")); }),
              HasSubstr("adapter_config.json: peft_type: 'IA3' is not supported (supported: LORA)"));
  EXPECT_THAT(config_error([] { parse_peft_config(json::parse(R"({"r": 8})")); }),
              HasSubstr("peft_type: missing"));
  EXPECT_THAT(lora_error(R"("r": 0)"), HasSubstr("r: must be a positive integer, got 0"));
  EXPECT_THAT(lora_error(R"("r": 4.5)"), HasSubstr("r: expected an integer, got number 4.5"));
  EXPECT_THAT(lora_error(R"("lora_alpha": "8")"), HasSubstr("lora_alpha: expected a number"));
  EXPECT_THAT(lora_error(R"("lora_dropout": 1.0)"), HasSubstr("lora_dropout: must be in [0, 1)"));
  EXPECT_THAT(lora_error(R"("use_rslora": 1)"), HasSubstr("use_rslora: expected true or false, got integer 1"));
  EXPECT_THAT(lora_error(R"("target_modules": [])"), HasSubstr("target_modules: is an empty list"));
  EXPECT_THAT(lora_error(R"("target_modules": ["q_proj", 3])"),
              HasSubstr("target_modules: item 1: expected a string, got integer 3"));
  EXPECT_THAT(lora_error(R"("target_modules": 3)"),
              HasSubstr("target_modules: expected a list of module names or a regex string"));
  EXPECT_THAT(lora_error(R"("layers_to_transform": "0")"),
              HasSubstr("layers_to_transform: expected null, an integer or a list of integers"));
  EXPECT_THAT(lora_error(R"("layers_to_transform": [0, "1"])"),
              HasSubstr("layers_to_transform[1]: expected an integer, got string \"1\""));
  EXPECT_THAT(config_error([] { read_peft_config("/nonexistent/adapter"); }),
              StartsWith("/nonexistent/adapter: no such folder (expected a folder holding adapter_config.json)"));
}

}  // namespace
}  // namespace lire::io

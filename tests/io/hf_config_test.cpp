// config.json parsing: the fixtures, HF's Llama/Mistral defaults, rope
// scaling, every validation error, model_family and tokenizer discovery.
#include "lire/io/hf_config.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "support/error_message.h"

namespace lire::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kHf = std::string(LIRE_TEST_FIXTURES) + "/hf";

template <typename Fn>
std::string config_error(Fn&& fn) {
  return lire::testing::error_message<ConfigError>(std::forward<Fn>(fn));
}

LlamaConfig parse(const std::string& text) { return parse_llama_config(json::parse(text), "m/config.json"); }
std::string parse_error(const std::string& text) {
  return config_error([&] { parse(text); });
}

// A fresh empty directory under the system temp folder, removed at the end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("lire_hf_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

// ------------------------------------------------------------- fixtures

TEST(HfConfig, ReadsLlamaTinyFixture) {
  const LlamaConfig c = read_llama_config(kHf + "/llama_tiny");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_FALSE(c.sequence_classification());
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 176);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e4);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_scaling.type, "none");
  EXPECT_EQ(c.max_position_embeddings, 256);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));
  EXPECT_FALSE(c.pad_token_id.has_value());
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(HfConfig, ReadsConfigFilePathToo) {
  const LlamaConfig c = read_llama_config(kHf + "/llama_tiny/config.json");
  EXPECT_EQ(c.hidden_size, 64);
}

TEST(HfConfig, ReadsRewardModelFixture) {
  const LlamaConfig c = read_llama_config(kHf + "/llama_rm_tiny");
  EXPECT_EQ(c.architecture, "LlamaForSequenceClassification");
  EXPECT_TRUE(c.sequence_classification());
  EXPECT_EQ(c.num_labels, 1);  // from id2label
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.hidden_size, 64);
}

TEST(HfConfig, T5FixtureIsNotALlama) {
  const std::string message = config_error([] { read_llama_config(kHf + "/t5_tiny"); });
  EXPECT_THAT(message, AllOf(StartsWith(kHf + "/t5_tiny/config.json: architectures: "),
                             HasSubstr("'T5ForConditionalGeneration' is not supported"),
                             HasSubstr("LlamaForCausalLM, LlamaForSequenceClassification, MistralForCausalLM, "
                                       "MistralForSequenceClassification"),
                             HasSubstr("T5ForConditionalGeneration as a policy or t5-pairwise ranker")));
}

TEST(HfConfig, ModelFamily) {
  EXPECT_EQ(model_family(kHf + "/llama_tiny"), "llama");
  EXPECT_EQ(model_family(kHf + "/llama_rm_tiny/config.json"), "llama");
  EXPECT_EQ(model_family(kHf + "/t5_tiny"), "t5");

  TempDir dir;
  dir.write("config.json", R"({"model_type": "mistral"})");
  EXPECT_EQ(model_family(dir.path()), "llama");
  dir.write("config.json", R"({"model_type": "t5"})");
  EXPECT_EQ(model_family(dir.path()), "t5");
  dir.write("config.json", R"({"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox"})");
  EXPECT_THAT(config_error([&] { model_family(dir.path()); }),
              AllOf(HasSubstr("config.json: architectures: 'GPTNeoXForCausalLM' is not supported"),
                    HasSubstr("MistralForSequenceClassification, T5ForConditionalGeneration")));
  dir.write("config.json", R"({"model_type": "gpt2"})");
  EXPECT_THAT(config_error([&] { model_family(dir.path()); }),
              HasSubstr("model_type: 'gpt2' is not supported (supported: llama, mistral, t5)"));
  dir.write("config.json", R"({})");
  EXPECT_THAT(config_error([&] { model_family(dir.path()); }), HasSubstr("architectures: missing"));
}

TEST(HfConfig, FileErrors) {
  TempDir dir;
  EXPECT_THAT(config_error([&] { read_llama_config(dir.path()); }),
              AllOf(StartsWith(dir.path() + "/config.json: cannot open"), HasSubstr("no such file")));
  dir.write("config.json", "{\"hidden_size\": 64,");
  EXPECT_THAT(config_error([&] { read_llama_config(dir.path()); }),
              StartsWith(dir.path() + "/config.json: not valid JSON: "));
  dir.write("config.json", "[1, 2]");
  EXPECT_THAT(config_error([&] { read_llama_config(dir.path()); }),
              HasSubstr("config.json: expected a JSON object at the top level, got a list"));
}

// ------------------------------------------------------------- defaults

TEST(HfConfig, LlamaDefaultsWhenKeysAreMissing) {
  const LlamaConfig c = parse(R"({"architectures": ["LlamaForCausalLM"]})");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, "none");
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));
  EXPECT_FALSE(c.pad_token_id.has_value());
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(HfConfig, DerivedDefaultsFollowGivenSizes) {
  // kv heads default to the heads, head_dim to hidden / heads.
  const LlamaConfig c = parse(R"({"model_type": "llama", "hidden_size": 96, "num_attention_heads": 6,
                                  "num_key_value_heads": null, "head_dim": null})");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.num_key_value_heads, 6);
  EXPECT_EQ(c.head_dim, 16);
}

TEST(HfConfig, ExplicitHeadDimNeedNotDivideHidden) {
  const LlamaConfig c = parse(R"({"architectures": ["MistralForCausalLM"], "hidden_size": 5120,
                                  "num_attention_heads": 32, "head_dim": 128})");
  EXPECT_EQ(c.head_dim, 128);
}

TEST(HfConfig, MistralDefaults) {
  const LlamaConfig c = parse(R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral"})");
  EXPECT_EQ(c.model_type, "mistral");
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position_embeddings, 4096 * 32);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));

  // model_type is derived from the architecture; null window = none; null kv = heads.
  const LlamaConfig d = parse(R"({"architectures": ["MistralForSequenceClassification"],
                                  "sliding_window": null, "num_key_value_heads": null})");
  EXPECT_EQ(d.model_type, "mistral");
  EXPECT_FALSE(d.sliding_window.has_value());
  EXPECT_EQ(d.num_key_value_heads, 32);
  EXPECT_EQ(d.num_labels, 2);  // HF's default without num_labels / id2label
}

TEST(HfConfig, MistralIgnoresBiasKeys) {
  const LlamaConfig c = parse(R"({"model_type": "mistral", "attention_bias": true, "mlp_bias": true})");
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  const LlamaConfig l = parse(R"({"model_type": "llama", "attention_bias": true, "mlp_bias": true})");
  EXPECT_TRUE(l.attention_bias);
  EXPECT_TRUE(l.mlp_bias);
}

// ------------------------------------------------------------- tokens, dtype, labels

TEST(HfConfig, SpecialTokens) {
  const LlamaConfig c = parse(R"({"model_type": "llama", "vocab_size": 128256, "bos_token_id": 128000,
                                  "eos_token_id": [128001, 128008, 128009], "pad_token_id": null})");
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_FALSE(c.pad_token_id.has_value());

  const LlamaConfig d = parse(R"({"model_type": "llama", "bos_token_id": null, "eos_token_id": null,
                                  "pad_token_id": -1})");
  EXPECT_FALSE(d.bos_token_id.has_value());
  EXPECT_TRUE(d.eos_token_ids.empty());
  EXPECT_FALSE(d.pad_token_id.has_value());  // -1 = none (early Llama conversions)

  EXPECT_THAT(parse_error(R"({"model_type": "llama", "vocab_size": 100, "pad_token_id": 100})"),
              HasSubstr("m/config.json: pad_token_id: token id 100 is outside [0, vocab_size 100)"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "eos_token_id": "2"})"),
              HasSubstr("eos_token_id: expected an integer, a list of integers or null, got string \"2\""));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "eos_token_id": [2, 2.5]})"),
              HasSubstr("eos_token_id[1]: expected an integer, got number 2.5"));
}

TEST(HfConfig, TorchDtype) {
  EXPECT_EQ(parse(R"({"model_type": "llama", "torch_dtype": "bfloat16"})").torch_dtype, "bfloat16");
  EXPECT_EQ(parse(R"({"model_type": "llama", "torch_dtype": "float16"})").torch_dtype, "float16");
  EXPECT_EQ(parse(R"({"model_type": "llama", "torch_dtype": null})").torch_dtype, "float32");
  EXPECT_EQ(parse(R"({"model_type": "llama", "dtype": "bfloat16"})").torch_dtype, "bfloat16");
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "torch_dtype": "float64"})"),
              HasSubstr("torch_dtype: 'float64' is not supported (supported: float32, float16, bfloat16)"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "torch_dtype": "int8"})"),
              HasSubstr("torch_dtype: 'int8' is not supported"));
}

TEST(HfConfig, NumLabels) {
  const std::string rm = R"({"architectures": ["LlamaForSequenceClassification"], )";
  EXPECT_EQ(parse(rm + R"("num_labels": 3})").num_labels, 3);
  EXPECT_EQ(parse(rm + R"("id2label": {"0": "bad", "1": "good"}})").num_labels, 2);
  EXPECT_EQ(parse(rm + R"("id2label": {"0": "LABEL_0"}, "num_labels": 1})").num_labels, 1);
  EXPECT_EQ(parse(rm + R"("model_type": "llama"})").num_labels, 2);
  EXPECT_THAT(parse_error(rm + R"("id2label": {"0": "a"}, "num_labels": 2})"),
              HasSubstr("num_labels: 2 disagrees with id2label (1 labels)"));
  EXPECT_THAT(parse_error(rm + R"("id2label": {}})"), HasSubstr("id2label: must name at least one label"));
  EXPECT_THAT(parse_error(rm + R"("id2label": {"x": "a"}})"), HasSubstr("id2label: key 'x' is not a label index"));
  EXPECT_THAT(parse_error(rm + R"("num_labels": 0})"), HasSubstr("num_labels: must be a positive integer, got 0"));
  // Causal LMs do not read it.
  EXPECT_EQ(parse(R"({"model_type": "llama", "num_labels": 5})").num_labels, 1);
}

// ------------------------------------------------------------- rope scaling

TEST(HfConfig, RopeScalingLinearAndDynamic) {
  const LlamaConfig linear = parse(R"({"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 4.0}})");
  EXPECT_EQ(linear.rope_scaling.type, "linear");
  EXPECT_DOUBLE_EQ(linear.rope_scaling.factor, 4.0);

  const LlamaConfig dynamic = parse(R"({"model_type": "llama", "max_position_embeddings": 4096,
                                        "rope_scaling": {"rope_type": "dynamic", "factor": 2}})");
  EXPECT_EQ(dynamic.rope_scaling.type, "dynamic");
  EXPECT_DOUBLE_EQ(dynamic.rope_scaling.factor, 2.0);
  EXPECT_EQ(dynamic.rope_scaling.original_max_position_embeddings, 4096);

  // rope_type wins over the legacy "type" (HF's standardisation).
  const LlamaConfig both = parse(R"({"model_type": "llama",
                                     "rope_scaling": {"type": "dynamic", "rope_type": "linear", "factor": 2}})");
  EXPECT_EQ(both.rope_scaling.type, "linear");

  const LlamaConfig def = parse(R"({"model_type": "llama", "rope_scaling": {"rope_type": "default"}})");
  EXPECT_EQ(def.rope_scaling.type, "none");
}

TEST(HfConfig, RopeScalingLlama3) {
  const LlamaConfig c = parse(R"({"model_type": "llama", "rope_theta": 500000.0, "rope_scaling": {
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);

  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})"),
              HasSubstr("rope_scaling.low_freq_factor: missing (required for rope type 'llama3')"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 4.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})"),
              HasSubstr("rope_scaling.high_freq_factor: must be greater than low_freq_factor"));
}

TEST(HfConfig, RopeParametersOfTransformersV5) {
  const LlamaConfig c = parse(R"({"model_type": "llama", "rope_parameters":
      {"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0}})");
  EXPECT_EQ(c.rope_scaling.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  const LlamaConfig d = parse(R"({"model_type": "llama", "rope_parameters":
      {"rope_type": "default", "rope_theta": 1000000.0}})");
  EXPECT_EQ(d.rope_scaling.type, "none");
  EXPECT_DOUBLE_EQ(d.rope_theta, 1e6);
}

TEST(HfConfig, RopeScalingErrors) {
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})"),
              HasSubstr("m/config.json: rope_scaling type 'yarn' is not supported (supported: linear, dynamic, llama3)"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"type": "su", "factor": 4.0}})"),
              HasSubstr("rope_scaling type 'su' is not supported"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"type": "longrope"}})"),
              HasSubstr("rope_scaling type 'longrope' is not supported"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"factor": 4.0}})"),
              HasSubstr("rope_scaling: missing 'rope_type' (or 'type')"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"type": "linear"}})"),
              HasSubstr("rope_scaling.factor: missing (required for rope type 'linear')"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 0}})"),
              HasSubstr("rope_scaling.factor: must be > 0, got 0"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": {"type": "linear", "factor": "2"}})"),
              HasSubstr("rope_scaling.factor: expected a number, got string \"2\""));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_scaling": "linear"})"),
              HasSubstr("rope_scaling: expected an object or null, got string \"linear\""));
}

// ------------------------------------------------------------- errors

TEST(HfConfig, UnsupportedArchitectureListsSupported) {
  const std::string message =
      parse_error(R"({"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox"})");
  EXPECT_THAT(message, AllOf(StartsWith("m/config.json: architectures: 'GPTNeoXForCausalLM' is not supported"),
                             HasSubstr("(supported: LlamaForCausalLM, LlamaForSequenceClassification, "
                                       "MistralForCausalLM, MistralForSequenceClassification; "
                                       "T5ForConditionalGeneration as a policy or t5-pairwise ranker)")));
  EXPECT_THAT(parse_error(R"({"architectures": ["LlamaForCausalLm"]})"),
              HasSubstr("did you mean LlamaForCausalLM?"));
  EXPECT_THAT(parse_error(R"({"architectures": ["LlamaForCausalLM"], "model_type": "qwen2"})"),
              HasSubstr("model_type: 'qwen2' is not supported with LlamaForCausalLM (supported: llama, mistral)"));
  EXPECT_THAT(parse_error(R"({"model_type": "gemma"})"),
              HasSubstr("model_type: 'gemma' is not supported (supported: llama, mistral)"));
  EXPECT_THAT(parse_error(R"({})"), HasSubstr("architectures: missing, and no model_type either"));
  EXPECT_THAT(parse_error(R"({"architectures": "LlamaForCausalLM"})"),
              HasSubstr("architectures: expected a list of strings, got string"));
}

TEST(HfConfig, WrongTypesNameTheKey) {
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "hidden_size": "64"})"),
              HasSubstr("m/config.json: hidden_size: expected an integer, got string \"64\""));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "num_hidden_layers": 2.5})"),
              HasSubstr("num_hidden_layers: expected an integer, got number 2.5"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "vocab_size": 512.0})"),
              HasSubstr("vocab_size: expected an integer, got number 512.0"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "vocab_size": null})"),
              HasSubstr("vocab_size: expected an integer, got null"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "tie_word_embeddings": "false"})"),
              HasSubstr("tie_word_embeddings: expected true or false, got string \"false\""));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rms_norm_eps": "1e-6"})"),
              HasSubstr("rms_norm_eps: expected a number, got string"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "hidden_act": 1})"),
              HasSubstr("hidden_act: expected a string, got integer 1"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "vocab_size": 99999999999999999999})"),
              HasSubstr("vocab_size: "));
  EXPECT_THAT(parse_error(R"({"model_type": 7})"), HasSubstr("model_type: expected a string or null, got integer 7"));
}

TEST(HfConfig, InconsistentSizes) {
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "num_attention_heads": 4, "num_key_value_heads": 3})"),
              HasSubstr("num_key_value_heads: 3 does not divide num_attention_heads (4)"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "num_attention_heads": 4, "num_key_value_heads": 8})"),
              HasSubstr("num_key_value_heads: 8 does not divide num_attention_heads (4)"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "hidden_size": 100, "num_attention_heads": 3})"),
              HasSubstr("hidden_size: 100 is not divisible by num_attention_heads (3) and no head_dim is given"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "hidden_size": 0})"),
              HasSubstr("hidden_size: must be a positive integer, got 0"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "num_hidden_layers": -2})"),
              HasSubstr("num_hidden_layers: must be a positive integer, got -2"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "head_dim": 15})"),
              HasSubstr("head_dim: must be even for rotary embeddings, got 15"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rms_norm_eps": 0})"), HasSubstr("rms_norm_eps: must be > 0"));
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "rope_theta": -1})"), HasSubstr("rope_theta: must be > 0"));
  EXPECT_THAT(parse_error(R"({"model_type": "mistral", "sliding_window": 0})"),
              HasSubstr("sliding_window: must be a positive integer, got 0"));
}

TEST(HfConfig, UnsupportedNumerics) {
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "pretraining_tp": 2})"),
              HasSubstr("m/config.json: pretraining_tp: 2 is not supported"));
  EXPECT_EQ(parse(R"({"model_type": "llama", "pretraining_tp": 1})").num_hidden_layers, 32);
  EXPECT_THAT(parse_error(R"({"model_type": "llama", "hidden_act": "gelu"})"),
              HasSubstr("m/config.json: hidden_act: 'gelu' is not supported (supported: silu)"));
}

TEST(HfConfig, UnknownKeysAreFine) {
  const LlamaConfig c = parse(R"({"model_type": "llama", "use_cache": true, "initializer_range": 0.02,
                                  "quantization_config": {"x": 1}, "some_future_key": [1, 2]})");
  EXPECT_EQ(c.hidden_size, 4096);
}

// ------------------------------------------------------------- tokenizer

TEST(HfConfigTokenizer, FindsSentencepieceModel) {
  TempDir dir;
  dir.write("spiece.model", "x");
  EXPECT_EQ(find_tokenizer_model(dir.path()), dir.path() + "/spiece.model");
  dir.write("tokenizer.model", "x");
  dir.write("tokenizer.json", "{}");
  EXPECT_EQ(find_tokenizer_model(dir.path()), dir.path() + "/tokenizer.model");
}

TEST(HfConfigTokenizer, TokenizerJsonOnlyIsAnError) {
  TempDir dir;
  dir.write("tokenizer.json", "{}");
  EXPECT_EQ(config_error([&] { find_tokenizer_model(dir.path()); }),
            dir.path() + ": only tokenizer.json found; lire reads sentencepiece tokenizers "
                         "(tokenizer.model / spiece.model)");
}

TEST(HfConfigTokenizer, NoTokenizerOrNoFolder) {
  TempDir dir;
  EXPECT_THAT(config_error([&] { find_tokenizer_model(dir.path()); }),
              AllOf(StartsWith(dir.path() + ": no tokenizer found"), HasSubstr("tokenizer.model / spiece.model")));
  EXPECT_THAT(config_error([&] { find_tokenizer_model(dir.path() + "/missing"); }),
              HasSubstr("missing: not a model folder"));
}

}  // namespace
}  // namespace lire::io

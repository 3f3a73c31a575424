// config.json of a Hugging Face model folder to LlamaConfig or T5Config.
// Defaults are those of transformers' LlamaConfig / MistralConfig (chosen by
// model_type, else by the architecture) and T5Config; only the keys lire reads
// are validated, the many other keys HF configs carry are left alone.
#include "lire/io/hf_config.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "json_fields.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"

namespace lire::io {
namespace {

using json = nlohmann::json;
using Fields = detail::JsonFields<json>;

const std::vector<std::string> kLlamaArchitectures = {
    "LlamaForCausalLM", "LlamaForSequenceClassification", "MistralForCausalLM",
    "MistralForSequenceClassification"};
const std::vector<std::string> kT5Architectures = {"T5ForConditionalGeneration"};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

std::vector<std::string> all_architectures() {
  std::vector<std::string> all = kLlamaArchitectures;
  all.insert(all.end(), kT5Architectures.begin(), kT5Architectures.end());
  return all;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// architectures[0], or "" when the key is absent, null or an empty list.
std::string first_architecture(const Fields& fields) {
  const json* v = fields.find("architectures");
  if (!v || v->is_null() || (v->is_array() && v->empty())) return "";
  if (!v->is_array() || !(*v)[0].is_string())
    fields.fail("architectures", str("expected a list of strings, got ", detail::describe_json(*v)));
  return (*v)[0].get<std::string>();
}

// model_type, or "" when absent.
std::string model_type_of(const Fields& fields) { return fields.optional_string("model_type").value_or(""); }

// rope_scaling (or transformers v5's rope_parameters) -> RopeScaling.
RopeScaling parse_rope_scaling(const json& node, const std::string& file, const std::string& key,
                               std::int64_t max_position_embeddings) {
  RopeScaling rope;
  if (node.is_null()) return rope;
  auto fail = [&](const std::string& reason) { throw ConfigError(str(file, ": ", key, reason)); };
  if (!node.is_object()) fail(str(": expected an object or null, got ", detail::describe_json(node)));
  const Fields fields(node, file, key + ".");
  // HF: rope_type wins; the legacy key "type" is used when rope_type is absent.
  std::string type;
  if (fields.has("rope_type"))
    type = fields.string("rope_type", "");
  else if (fields.has("type"))
    type = fields.string("type", "");
  else
    fail(": missing 'rope_type' (or 'type')");

  const std::vector<std::string> supported = {"linear", "dynamic", "llama3"};
  if (type == "default") return rope;
  if (!contains(supported, type))
    fail(str(" type '", type, "' is not supported (supported: ", join(supported), ")"));
  rope.type = type;
  if (!fields.has("factor")) fields.fail("factor", str("missing (required for rope type '", type, "')"));
  rope.factor = fields.positive_number("factor", 1.0);
  if (type == "dynamic") {
    rope.original_max_position_embeddings = max_position_embeddings;
  } else if (type == "llama3") {
    // HF's _validate_llama3_parameters requires all three keys.
    for (const char* required : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!fields.has(required)) fields.fail(required, "missing (required for rope type 'llama3')");
    rope.low_freq_factor = fields.positive_number("low_freq_factor", 1.0);
    rope.high_freq_factor = fields.positive_number("high_freq_factor", 4.0);
    if (!(rope.high_freq_factor > rope.low_freq_factor))
      fields.fail("high_freq_factor", str("must be greater than low_freq_factor (", rope.low_freq_factor,
                                          "), got ", rope.high_freq_factor));
    rope.original_max_position_embeddings = fields.positive_integer("original_max_position_embeddings", 8192);
  }
  return rope;
}

// A token id, checked to be inside the vocabulary.
std::int64_t checked_token_id(const Fields& fields, const std::string& key, std::int64_t id, std::int64_t vocab) {
  if (id < 0 || id >= vocab) fields.fail(key, str("token id ", id, " is outside [0, vocab_size ", vocab, ")"));
  return id;
}

}  // namespace

bool LlamaConfig::sequence_classification() const {
  const std::string suffix = "ForSequenceClassification";
  return architecture.size() >= suffix.size() &&
         architecture.compare(architecture.size() - suffix.size(), suffix.size(), suffix) == 0;
}

LlamaConfig parse_llama_config(const json& config, const std::string& file) {
  if (!config.is_object())
    throw ConfigError(str(file, ": expected a JSON object at the top level, got ", detail::describe_json(config)));
  const Fields f(config, file);
  LlamaConfig c;

  // --- architecture and model_type (which defaults apply)
  std::string architecture = first_architecture(f);
  std::string model_type = model_type_of(f);
  if (architecture.empty()) {
    if (model_type == "llama") architecture = "LlamaForCausalLM";
    else if (model_type == "mistral") architecture = "MistralForCausalLM";
    else if (model_type.empty()) f.fail("architectures", str("missing, and no model_type either (supported: ", join(kLlamaArchitectures), ")"));
    else f.fail("model_type", str("'", model_type, "' is not supported (supported: llama, mistral)"));
  }
  if (!contains(kLlamaArchitectures, architecture)) {
    f.fail("architectures", str("'", architecture, "' is not supported (supported: ", join(kLlamaArchitectures),
                                "; T5ForConditionalGeneration as a policy or t5-pairwise ranker)",
                                did_you_mean(architecture, kLlamaArchitectures)));
  }
  if (model_type.empty()) model_type = architecture.rfind("Mistral", 0) == 0 ? "mistral" : "llama";
  if (model_type != "llama" && model_type != "mistral")
    f.fail("model_type", str("'", model_type, "' is not supported with ", architecture, " (supported: llama, mistral)"));
  const bool mistral = model_type == "mistral";
  c.architecture = architecture;
  c.model_type = model_type;

  // --- sizes
  c.vocab_size = f.positive_integer("vocab_size", 32000);
  c.hidden_size = f.positive_integer("hidden_size", 4096);
  c.intermediate_size = f.positive_integer("intermediate_size", mistral ? 14336 : 11008);
  c.num_hidden_layers = f.positive_integer("num_hidden_layers", 32);
  c.num_attention_heads = f.positive_integer("num_attention_heads", 32);
  // Llama: None -> num_attention_heads; Mistral: 8.
  if (f.has("num_key_value_heads"))
    c.num_key_value_heads = f.positive_integer("num_key_value_heads", 0);
  else
    c.num_key_value_heads = mistral && !f.find("num_key_value_heads") ? 8 : c.num_attention_heads;
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    f.fail("num_key_value_heads", str(c.num_key_value_heads, " does not divide num_attention_heads (",
                                      c.num_attention_heads, ")"));
  if (f.has("head_dim")) {
    c.head_dim = f.positive_integer("head_dim", 0);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      f.fail("hidden_size", str(c.hidden_size, " is not divisible by num_attention_heads (", c.num_attention_heads,
                                ") and no head_dim is given"));
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0)
    f.fail("head_dim", str("must be even for rotary embeddings, got ", c.head_dim));
  c.max_position_embeddings = f.positive_integer("max_position_embeddings", mistral ? 4096 * 32 : 2048);

  // --- numerics
  c.rms_norm_eps = f.positive_number("rms_norm_eps", 1e-6);
  c.hidden_act = f.string("hidden_act", "silu");
  if (c.hidden_act != "silu") f.fail("hidden_act", str("'", c.hidden_act, "' is not supported (supported: silu)"));
  const std::int64_t pretraining_tp = f.integer("pretraining_tp", 1);
  if (pretraining_tp != 1)
    f.fail("pretraining_tp", str(pretraining_tp, " is not supported (only 1: HF's tensor-parallel slicing changes the numerics)"));

  // rope: transformers >= 5 writes rope_parameters {rope_type, rope_theta, ...};
  // older versions rope_theta and rope_scaling at the top level.
  const json* rope_parameters = f.find("rope_parameters");
  if (rope_parameters && !rope_parameters->is_null()) {
    if (!rope_parameters->is_object())
      f.fail("rope_parameters", str("expected an object, got ", detail::describe_json(*rope_parameters)));
    const Fields rp(*rope_parameters, file, "rope_parameters.");
    c.rope_theta = rp.positive_number("rope_theta", f.positive_number("rope_theta", 10000.0));
    c.rope_scaling = parse_rope_scaling(*rope_parameters, file, "rope_parameters", c.max_position_embeddings);
  } else {
    c.rope_theta = f.positive_number("rope_theta", 10000.0);
    const json* rope = f.find("rope_scaling");
    if (rope) c.rope_scaling = parse_rope_scaling(*rope, file, "rope_scaling", c.max_position_embeddings);
  }

  // --- structure flags. MistralConfig has no attention_bias / mlp_bias (its
  // layers never have biases), so those keys are not read for Mistral.
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.attention_bias = mistral ? false : f.boolean("attention_bias", false);
  c.mlp_bias = mistral ? false : f.boolean("mlp_bias", false);
  if (mistral) {
    const json* window = f.find("sliding_window");
    if (!window) c.sliding_window = 4096;
    else if (!window->is_null()) c.sliding_window = f.positive_integer("sliding_window", 4096);
  }

  // --- special tokens
  const json* bos = f.find("bos_token_id");
  if (!bos) c.bos_token_id = 1;
  else c.bos_token_id = f.optional_integer("bos_token_id");
  if (c.bos_token_id) checked_token_id(f, "bos_token_id", *c.bos_token_id, c.vocab_size);

  const json* eos = f.find("eos_token_id");
  c.eos_token_ids.clear();
  if (!eos) {
    c.eos_token_ids = {2};
  } else if (eos->is_array()) {
    for (std::size_t i = 0; i < eos->size(); ++i) {
      const std::string key = str("eos_token_id[", i, "]");
      c.eos_token_ids.push_back(f.integer_value(key, (*eos)[i]));
    }
  } else if (!eos->is_null()) {
    if (!eos->is_number_integer() && !eos->is_number_unsigned())
      f.fail("eos_token_id", str("expected an integer, a list of integers or null, got ", detail::describe_json(*eos)));
    c.eos_token_ids.push_back(f.integer_value("eos_token_id", *eos));
  }
  for (std::int64_t id : c.eos_token_ids) checked_token_id(f, "eos_token_id", id, c.vocab_size);

  // A negative pad id (-1 in some early Llama conversions) means none.
  c.pad_token_id = f.optional_integer("pad_token_id");
  if (c.pad_token_id && *c.pad_token_id < 0) c.pad_token_id.reset();
  if (c.pad_token_id) checked_token_id(f, "pad_token_id", *c.pad_token_id, c.vocab_size);

  // --- dtype of the stored weights (transformers >= 4.56 also writes "dtype").
  const std::vector<std::string> dtypes = {"float32", "float16", "bfloat16"};
  const std::string dtype_key = f.has("torch_dtype") || !f.has("dtype") ? "torch_dtype" : "dtype";
  const std::optional<std::string> dtype = f.optional_string(dtype_key);
  c.torch_dtype = dtype.value_or("float32");
  if (!contains(dtypes, c.torch_dtype))
    f.fail(dtype_key, str("'", c.torch_dtype, "' is not supported (supported: ", join(dtypes), ")",
                          did_you_mean(c.torch_dtype, dtypes)));

  // --- classification head size (HF: num_labels, else len(id2label), else 2)
  if (c.sequence_classification()) {
    std::optional<std::int64_t> from_id2label;
    const json* id2label = f.find("id2label");
    if (id2label && !id2label->is_null()) {
      if (!id2label->is_object())
        f.fail("id2label", str("expected an object, got ", detail::describe_json(*id2label)));
      for (const auto& item : id2label->items()) {
        const std::string& k = item.key();
        if (k.empty() || !std::all_of(k.begin(), k.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
          f.fail("id2label", str("key '", k, "' is not a label index"));
      }
      from_id2label = static_cast<std::int64_t>(id2label->size());
    }
    if (f.has("num_labels")) {
      c.num_labels = f.positive_integer("num_labels", 1);
      if (from_id2label && *from_id2label != c.num_labels)
        f.fail("num_labels", str(c.num_labels, " disagrees with id2label (", *from_id2label, " labels)"));
    } else {
      c.num_labels = from_id2label.value_or(2);
    }
    if (c.num_labels <= 0) f.fail("id2label", "must name at least one label");
  }
  return c;
}

LlamaConfig read_llama_config(const std::string& folder_or_file) {
  const std::string file = detail::file_in_folder(folder_or_file, "config.json");
  return parse_llama_config(detail::read_json_object<json>(file), file);
}

T5Config parse_t5_config(const json& config, const std::string& file) {
  if (!config.is_object())
    throw ConfigError(str(file, ": expected a JSON object at the top level, got ", detail::describe_json(config)));
  const Fields f(config, file);
  T5Config c;

  // --- architecture
  const std::string architecture = first_architecture(f);
  const std::string model_type = model_type_of(f);
  if (architecture.empty() && model_type.empty())
    f.fail("architectures", str("missing, and no model_type either (supported: ", join(kT5Architectures), ")"));
  if (!architecture.empty() && !contains(kT5Architectures, architecture))
    f.fail("architectures", str("'", architecture, "' is not a T5 model (supported: ", join(kT5Architectures), ")",
                                did_you_mean(architecture, kT5Architectures)));
  if (!model_type.empty() && model_type != "t5")
    f.fail("model_type", str("'", model_type, "' is not supported with T5 (supported: t5)"));

  // --- sizes
  c.vocab_size = f.positive_integer("vocab_size", 32128);
  c.d_model = f.positive_integer("d_model", 512);
  c.d_kv = f.positive_integer("d_kv", 64);
  c.d_ff = f.positive_integer("d_ff", 2048);
  c.num_layers = f.positive_integer("num_layers", 6);
  // HF: num_decoder_layers None -> num_layers.
  c.num_decoder_layers = f.has("num_decoder_layers") ? f.positive_integer("num_decoder_layers", 0) : c.num_layers;
  c.num_heads = f.positive_integer("num_heads", 8);
  c.relative_attention_num_buckets = f.positive_integer("relative_attention_num_buckets", 32);
  c.relative_attention_max_distance = f.positive_integer("relative_attention_max_distance", 128);
  // The bucket function puts half the buckets (a quarter in the encoder) on
  // exact offsets and spreads the rest logarithmically up to max_distance.
  if (c.relative_attention_num_buckets < 4)
    f.fail("relative_attention_num_buckets", str("must be at least 4, got ", c.relative_attention_num_buckets));
  if (c.relative_attention_max_distance <= c.relative_attention_num_buckets / 2)
    f.fail("relative_attention_max_distance",
           str(c.relative_attention_max_distance, " must exceed relative_attention_num_buckets / 2 (",
               c.relative_attention_num_buckets / 2, ") for logarithmic buckets"));

  // --- numerics
  c.layer_norm_epsilon = f.positive_number("layer_norm_epsilon", 1e-6);
  // HF T5Config: "ACT" or "gated-ACT"; "gated-gelu" means gelu_new.
  c.feed_forward_proj = f.string("feed_forward_proj", "relu");
  const std::string& proj = c.feed_forward_proj;
  const std::size_t dash = proj.find('-');
  if (dash == std::string::npos) {
    c.dense_act_fn = proj;
    c.is_gated_act = false;
  } else {
    if (proj.compare(0, dash, "gated") != 0 || proj.find('-', dash + 1) != std::string::npos)
      f.fail("feed_forward_proj", str("'", proj, "' is not of the form ACT or gated-ACT (e.g. relu, gated-gelu)"));
    c.dense_act_fn = proj.substr(dash + 1);
    c.is_gated_act = true;
  }
  if (proj == "gated-gelu") c.dense_act_fn = "gelu_new";
  // Keys HF writes next to feed_forward_proj; when present they win (PretrainedConfig sets them last).
  c.dense_act_fn = f.string("dense_act_fn", c.dense_act_fn);
  c.is_gated_act = f.boolean("is_gated_act", c.is_gated_act);
  const std::vector<std::string> activations = {"relu", "gelu", "gelu_new", "silu"};
  if (!contains(activations, c.dense_act_fn)) {
    const std::string key = f.has("dense_act_fn") ? "dense_act_fn" : "feed_forward_proj";
    f.fail(key, str("activation '", c.dense_act_fn, "' is not supported (supported: ", join(activations), ")",
                    did_you_mean(c.dense_act_fn, activations)));
  }
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", true);

  // --- special tokens
  c.pad_token_id = checked_token_id(f, "pad_token_id", f.integer("pad_token_id", 0), c.vocab_size);
  c.eos_token_id = checked_token_id(f, "eos_token_id", f.integer("eos_token_id", 1), c.vocab_size);
  const std::optional<std::int64_t> start = f.optional_integer("decoder_start_token_id");
  c.decoder_start_token_id = checked_token_id(f, "decoder_start_token_id", start.value_or(c.pad_token_id), c.vocab_size);

  // --- dtype of the stored weights
  const std::vector<std::string> dtypes = {"float32", "float16", "bfloat16"};
  const std::string dtype_key = f.has("torch_dtype") || !f.has("dtype") ? "torch_dtype" : "dtype";
  c.torch_dtype = f.optional_string(dtype_key).value_or("float32");
  if (!contains(dtypes, c.torch_dtype))
    f.fail(dtype_key, str("'", c.torch_dtype, "' is not supported (supported: ", join(dtypes), ")",
                          did_you_mean(c.torch_dtype, dtypes)));
  return c;
}

T5Config read_t5_config(const std::string& folder_or_file) {
  const std::string file = detail::file_in_folder(folder_or_file, "config.json");
  return parse_t5_config(detail::read_json_object<json>(file), file);
}

std::string model_family(const std::string& folder_or_file) {
  const std::string file = detail::file_in_folder(folder_or_file, "config.json");
  const json config = detail::read_json_object<json>(file);
  const Fields f(config, file);
  const std::string architecture = first_architecture(f);
  const std::vector<std::string> supported = all_architectures();
  if (!architecture.empty()) {
    if (contains(kLlamaArchitectures, architecture)) return "llama";
    if (contains(kT5Architectures, architecture)) return "t5";
    f.fail("architectures", str("'", architecture, "' is not supported (supported: ", join(supported), ")",
                                did_you_mean(architecture, supported)));
  }
  const std::string model_type = model_type_of(f);
  if (model_type == "llama" || model_type == "mistral") return "llama";
  if (model_type == "t5") return "t5";
  if (model_type.empty())
    f.fail("architectures", str("missing, and no model_type either (supported: ", join(supported), ")"));
  f.fail("model_type", str("'", model_type, "' is not supported (supported: llama, mistral, t5)"));
}

std::string find_tokenizer_model(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw ConfigError(str(folder, ": not a model folder (no such directory)"));
  for (const char* name : {"tokenizer.model", "spiece.model"}) {
    const fs::path path = fs::path(folder) / name;
    if (fs::is_regular_file(path, ec)) return path.string();
  }
  if (fs::exists(fs::path(folder) / "tokenizer.json", ec))
    throw ConfigError(str(folder, ": only tokenizer.json found; lire reads sentencepiece tokenizers (tokenizer.model / spiece.model)"));
  throw ConfigError(str(folder, ": no tokenizer found; lire reads sentencepiece tokenizers (tokenizer.model / spiece.model)"));
}

}  // namespace lire::io

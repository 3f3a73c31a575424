// adapter_config.json to PeftLoraConfig, and PEFT's module matching rules
// (peft.tuners.tuners_utils.check_target_module_exists, get_pattern_key).
// Regexes are Python `re` patterns in PEFT; lire compiles them with
// std::regex (ECMAScript), which reads the common subset ('.', '*', '\d',
// classes, groups, alternation); a pattern it cannot read is a ConfigError.
#include "lire/io/peft_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <regex>

#include "json_fields.h"
#include "lire/core/error.h"

namespace lire::io {
namespace {

using json = nlohmann::ordered_json;
using Fields = detail::JsonFields<json>;

std::regex compile(const std::string& pattern) { return std::regex(pattern, std::regex::ECMAScript); }

// Checks at parse time that `pattern` compiles, so that matching never throws.
void check_regex(const Fields& fields, const std::string& key, const std::string& pattern) {
  try {
    compile(pattern);
  } catch (const std::regex_error& e) {
    fields.fail(key, str("'", pattern, "' is not a regular expression lire can read (", e.what(), ")"));
  }
}

bool ends_with_component(const std::string& path, const std::string& name) {
  return path.size() > name.size() && path.compare(path.size() - name.size(), name.size(), name) == 0 &&
         path[path.size() - name.size() - 1] == '.';
}

// exact name, or ".name" suffix
bool matches_name_list(const std::string& path, const std::vector<std::string>& names) {
  for (const std::string& name : names)
    if (path == name || ends_with_component(path, name)) return true;
  return false;
}

// A string (one-element list) or a list of strings; null/absent -> empty.
std::vector<std::string> string_list(const Fields& fields, const std::string& key) {
  std::vector<std::string> out;
  const json* v = fields.find(key);
  if (!v || v->is_null()) return out;
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) fields.fail(key, str("expected a list of strings, got ", detail::describe_json(*v)));
  for (std::size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string())
      fields.fail(key, str("item ", i, ": expected a string, got ", detail::describe_json((*v)[i])));
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

// Null, false, or an empty list/object/string: the feature is not used.
bool unused(const json* v) {
  if (!v || v->is_null()) return true;
  if (v->is_boolean()) return !v->get<bool>();
  if (v->is_array() || v->is_object() || v->is_string()) return v->empty();
  return false;
}

// The layer index of `path` per PEFT (re.match of ".*\.[^.]*\.(\d+)\." or
// ".*\.<pattern>\.(\d+)\."), or nullopt.
std::optional<std::int64_t> layer_index(const std::string& path, const std::vector<std::string>& patterns) {
  std::vector<std::string> regexes;
  if (patterns.empty()) regexes.push_back(R"(.*\.[^.]*\.(\d+)\..*)");
  for (const std::string& p : patterns) regexes.push_back(str(R"(.*\.)", p, R"(\.(\d+)\..*)"));
  for (const std::string& r : regexes) {
    std::smatch m;
    if (std::regex_match(path, m, compile(r))) {
      const std::string digits = m[1].str();
      if (digits.size() > 18) return std::nullopt;  // no such layer
      return std::stoll(digits);
    }
  }
  return std::nullopt;
}

// PEFT's get_pattern_key: the first key K with re.match(rf"(.*\.)?({K})$", path).
template <typename T>
const std::pair<std::string, T>* pattern_entry(const std::vector<std::pair<std::string, T>>& patterns,
                                               const std::string& path) {
  for (const auto& entry : patterns)
    if (std::regex_match(path, compile(str(R"((.*\.)?()", entry.first, ")")))) return &entry;
  return nullptr;
}

}  // namespace

bool PeftLoraConfig::targets(const std::string& path) const {
  if (!exclude_modules_regex.empty() && std::regex_match(path, compile(exclude_modules_regex))) return false;
  if (matches_name_list(path, exclude_modules)) return false;

  if (!target_modules_regex.empty()) return std::regex_match(path, compile(target_modules_regex));
  bool found;
  if (target_all_linear) {
    found = !(path == "lm_head" || path == "score" || ends_with_component(path, "lm_head") ||
              ends_with_component(path, "score"));
  } else {
    if (std::find(target_modules.begin(), target_modules.end(), path) != target_modules.end()) return true;
    found = false;
    for (const std::string& name : target_modules) found = found || ends_with_component(path, name);
  }
  if (found && !layers_to_transform.empty()) {
    const std::optional<std::int64_t> index = layer_index(path, layers_pattern);
    found = index && std::find(layers_to_transform.begin(), layers_to_transform.end(), *index) !=
                         layers_to_transform.end();
  }
  return found;
}

std::int64_t PeftLoraConfig::rank(const std::string& path) const {
  const auto* entry = pattern_entry(rank_pattern, path);
  return entry ? entry->second : r;
}

double PeftLoraConfig::alpha(const std::string& path) const {
  const auto* entry = pattern_entry(alpha_pattern, path);
  return entry ? entry->second : lora_alpha;
}

double PeftLoraConfig::scaling(const std::string& path) const {
  const double n = static_cast<double>(rank(path));
  return use_rslora ? alpha(path) / std::sqrt(n) : alpha(path) / n;
}

PeftLoraConfig parse_peft_config(const json& config, const std::string& file) {
  if (!config.is_object())
    throw ConfigError(str(file, ": expected a JSON object at the top level, got ", detail::describe_json(config)));
  const Fields f(config, file);
  PeftLoraConfig c;
  c.file = file;

  if (!f.find("peft_type")) f.fail("peft_type", "missing (expected \"LORA\")");
  c.peft_type = f.string("peft_type", "LORA");
  if (c.peft_type != "LORA")
    f.fail("peft_type", str("'", c.peft_type, "' is not supported (supported: LORA)"));
  c.base_model_name_or_path = f.optional_string("base_model_name_or_path").value_or("");
  c.task_type = f.optional_string("task_type").value_or("");

  c.r = f.positive_integer("r", 8);
  c.lora_alpha = f.positive_number("lora_alpha", 8.0);
  c.lora_dropout = f.number("lora_dropout", 0.0);
  if (c.lora_dropout < 0.0 || c.lora_dropout >= 1.0) f.fail("lora_dropout", str("must be in [0, 1), got ", c.lora_dropout));
  c.use_rslora = f.boolean("use_rslora", false);

  // --- target_modules / exclude_modules
  const json* targets = f.find("target_modules");
  if (targets && targets->is_string()) {
    const std::string value = targets->get<std::string>();
    std::string lower = value;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    c.target_modules.clear();
    if (lower == "all-linear") {
      c.target_all_linear = true;
    } else {
      if (value.empty()) f.fail("target_modules", "is an empty string");
      check_regex(f, "target_modules", value);
      c.target_modules_regex = value;
    }
  } else if (targets && !targets->is_null()) {
    if (!targets->is_array())
      f.fail("target_modules", str("expected a list of module names or a regex string, got ", detail::describe_json(*targets)));
    c.target_modules = string_list(f, "target_modules");
    if (c.target_modules.empty()) f.fail("target_modules", "is an empty list (the adapter would target nothing)");
  }
  const json* excludes = f.find("exclude_modules");
  if (excludes && excludes->is_string()) {
    c.exclude_modules_regex = excludes->get<std::string>();
    if (!c.exclude_modules_regex.empty()) check_regex(f, "exclude_modules", c.exclude_modules_regex);
  } else {
    c.exclude_modules = string_list(f, "exclude_modules");
  }

  // --- layers_to_transform / layers_pattern
  const json* layers = f.find("layers_to_transform");
  if (layers && !layers->is_null()) {
    if (layers->is_array()) {
      for (std::size_t i = 0; i < layers->size(); ++i)
        c.layers_to_transform.push_back(f.integer_value(str("layers_to_transform[", i, "]"), (*layers)[i]));
    } else if (layers->is_number_integer() || layers->is_number_unsigned()) {
      c.layers_to_transform.push_back(f.integer_value("layers_to_transform", *layers));
    } else {
      f.fail("layers_to_transform", str("expected null, an integer or a list of integers, got ", detail::describe_json(*layers)));
    }
  }
  c.layers_pattern = string_list(f, "layers_pattern");
  for (const std::string& p : c.layers_pattern) check_regex(f, "layers_pattern", p);
  const bool target_is_string = c.target_all_linear || !c.target_modules_regex.empty();
  if (target_is_string && layers && !layers->is_null())  // as LoraConfig.__post_init__
    f.fail("layers_to_transform", "cannot be used when target_modules is a string");
  if (target_is_string && !c.layers_pattern.empty())
    f.fail("layers_pattern", "cannot be used when target_modules is a string");

  // --- rank_pattern / alpha_pattern (file order matters: the first match wins)
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    const json* patterns = f.find(key);
    if (!patterns || patterns->is_null()) continue;
    if (!patterns->is_object()) f.fail(key, str("expected an object, got ", detail::describe_json(*patterns)));
    const Fields pf(*patterns, file, str(key, "."));
    for (const auto& item : patterns->items()) {
      check_regex(f, key, str("(.*\\.)?(", item.key(), ")"));
      if (std::string(key) == "rank_pattern")
        c.rank_pattern.emplace_back(item.key(), pf.positive_integer(item.key(), 1));
      else
        c.alpha_pattern.emplace_back(item.key(), pf.positive_number(item.key(), 1.0));
    }
  }

  // --- what lire does not implement
  c.fan_in_fan_out = f.boolean("fan_in_fan_out", false);
  if (c.fan_in_fan_out)
    f.fail("fan_in_fan_out", "true is not supported (Llama-family linear layers store [out, in] weights)");
  c.bias = f.string("bias", "none");
  if (c.bias != "none") f.fail("bias", str("'", c.bias, "' is not supported (supported: none)"));
  if (!unused(f.find("modules_to_save")))
    f.fail("modules_to_save", "modules_to_save is not supported (only LoRA A/B matrices are loaded)");
  if (f.boolean("use_dora", false)) f.fail("use_dora", "DoRA adapters (use_dora: true) are not supported");
  const std::vector<std::pair<std::string, std::string>> unsupported = {
      {"lora_bias", "LoRA biases (lora_bias: true) are not supported"},
      {"layer_replication", "layer_replication is not supported"},
      {"use_qalora", "QALoRA (use_qalora: true) is not supported"},
      {"target_parameters", "target_parameters is not supported"},
      {"trainable_token_indices", "trainable_token_indices is not supported"},
      {"alora_invocation_tokens", "activated LoRA (alora_invocation_tokens) is not supported"}};
  for (const auto& [key, reason] : unsupported)
    if (!unused(f.find(key))) f.fail(key, reason);
  return c;
}

PeftLoraConfig read_peft_config(const std::string& adapter_folder) {
  const std::string file = detail::file_in_folder(adapter_folder, "adapter_config.json");
  return parse_peft_config(detail::read_json_object<json>(file), file);
}

}  // namespace lire::io

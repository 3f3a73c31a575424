// A PEFT LoRA adapter's adapter_config.json as typed options, with PEFT's
// rules for which modules an adapter targets (check_target_module_exists),
// their rank and alpha (rank_pattern / alpha_pattern) and the scaling of
// B @ A. Variants that change the computation in ways lire does not
// implement (DoRA, modules_to_save, LoRA biases, fan_in_fan_out, ...) are a
// ConfigError naming the file and key, never ignored.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lire::io {

struct PeftLoraConfig {
  std::string file = "adapter_config.json";  // where it was read from (for messages)
  std::string peft_type = "LORA";            // only "LORA" is supported
  std::string base_model_name_or_path;       // as written; "" when null/absent
  std::int64_t r = 8;                        // rank of A [r, in] and B [out, r]
  double lora_alpha = 8.0;                   // scaling numerator
  double lora_dropout = 0.0;                 // dropout on the LoRA input while training, in [0, 1)
  bool use_rslora = false;                   // rsLoRA: scaling alpha/sqrt(r) instead of alpha/r

  // target_modules: PEFT takes a list of names, a regex string (full match on
  // the module path) or "all-linear" (every linear layer but the output head).
  // null means PEFT's Llama/Mistral default, {q_proj, v_proj}.
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};  // list form
  std::string target_modules_regex;          // string form ("" when a list)
  bool target_all_linear = false;            // "all-linear" (any case)

  // exclude_modules (PEFT >= 0.14): list (exact or ".name" suffix) or regex string.
  std::vector<std::string> exclude_modules;  // list form
  std::string exclude_modules_regex;         // string form ("" when none)

  std::vector<std::int64_t> layers_to_transform;  // null/[] = every layer; an int = {int}
  std::vector<std::string> layers_pattern;        // regexes naming the layer list ("layers"); empty = any
  std::vector<std::pair<std::string, std::int64_t>> rank_pattern;  // regex key -> r, in file order
  std::vector<std::pair<std::string, double>> alpha_pattern;       // regex key -> alpha, in file order

  bool fan_in_fan_out = false;  // must be false (true is for GPT-2's Conv1D weights)
  std::string bias = "none";    // only "none" is supported
  std::string task_type;        // "CAUSAL_LM", "SEQ_CLS", ... as written; "" when null
  // modules_to_save, use_dora, lora_bias, layer_replication, use_qalora,
  // target_parameters, trainable_token_indices, alora_invocation_tokens: must
  // be null/false/empty (rejected otherwise). init_lora_weights: ignored
  // (it only affects freshly initialised adapters).

  // PEFT's check_target_module_exists for a module path relative to the base
  // model ("model.layers.0.self_attn.q_proj"):
  //  - excluded (exclude_modules) -> false;
  //  - regex form: std::regex full match of the path (layers_to_transform does not apply);
  //  - list form: the path equals a name (layers_to_transform does not apply),
  //    or ends with "." + name and, when layers_to_transform is set, its layer
  //    index is listed. The index is the number in the last ".<word>.<n>."
  //    of the path, or in ".<layers_pattern>.<n>." when a pattern is given;
  //  - all-linear: every path except the output heads lm_head and score, with
  //    layers_to_transform applied as for a list.
  bool targets(const std::string& module_path) const;

  // The rank / alpha of a module: the first rank_pattern (alpha_pattern) key K
  // such that the path matches "(.*\.)?(K)" entirely (PEFT's get_pattern_key),
  // else r (lora_alpha).
  std::int64_t rank(const std::string& module_path) const;
  double alpha(const std::string& module_path) const;

  // alpha/rank, or alpha/sqrt(rank) with use_rslora, for this module.
  double scaling(const std::string& module_path) const;
};

// Reads `<adapter_folder>/adapter_config.json` (or that file's path). Errors:
// "<file>: <key>: <reason>".
PeftLoraConfig read_peft_config(const std::string& adapter_folder);
PeftLoraConfig parse_peft_config(const nlohmann::ordered_json& config,
                                 const std::string& file = "adapter_config.json");

}  // namespace lire::io

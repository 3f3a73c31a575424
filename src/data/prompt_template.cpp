#include "lire/data/prompt_template.h"

#include <functional>
#include <map>

#include "lire/core/error.h"
#include "lire/core/suggest.h"

namespace lire::data {

const char* const kVicunaSystemPrompt =
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.";

namespace {

struct Template {
  bool takes_input;
  bool takes_system;
  std::function<std::string(const std::string& prompt, const std::string& input, const std::string& system)>
      apply;
};

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Python's str.strip(): removes ASCII whitespace at both ends.
std::string strip(const std::string& text) {
  const char* space = " \t\n\r\f\v";
  const auto first = text.find_first_not_of(space);
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(space);
  return text.substr(first, last - first + 1);
}

std::string alpaca(const std::string& prompt, const std::string& input, const std::string&) {
  if (input.empty())
    return "Below is an instruction that describes a task. "
           "Write a response that appropriately completes the request.\n\n"
           "### Instruction:\n" +
           prompt + "\n\n### Response:";
  return "Below is an instruction that describes a task, paired with an input that provides further context. "
         "Write a response that appropriately completes the request.\n\n"
         "### Instruction:\n" +
         prompt + "\n\n### Input:\n" + input + "\n\n### Response:";
}

std::string hh(const std::string& prompt, const std::string&, const std::string&) {
  std::string dialogue;
  if (starts_with(prompt, "\n\nHuman:")) {
    dialogue = prompt;
  } else if (starts_with(prompt, "Human:")) {
    dialogue = "\n\n" + prompt;
  } else {
    return "\n\nHuman: " + prompt + "\n\nAssistant:";
  }
  if (!ends_with(dialogue, "\n\nAssistant:") && !ends_with(dialogue, "\n\nAssistant: ")) dialogue += "\n\nAssistant:";
  return dialogue;
}

std::string llama2_chat(const std::string& prompt, const std::string&, const std::string& system) {
  std::string content = prompt;
  if (!system.empty()) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + prompt;
  return "[INST] " + strip(content) + " [/INST]";
}

std::string vicuna(const std::string& prompt, const std::string&, const std::string& system) {
  return (system.empty() ? std::string(kVicunaSystemPrompt) : system) + " USER: " + prompt + " ASSISTANT:";
}

const std::map<std::string, Template>& registry() {
  static const std::map<std::string, Template> templates = {
      {"raw", {false, false, [](const std::string& p, const std::string&, const std::string&) { return p; }}},
      {"alpaca", {true, false, alpaca}},
      {"hh", {false, false, hh}},
      {"llama2-chat", {false, true, llama2_chat}},
      {"vicuna", {false, true, vicuna}},
  };
  return templates;
}

const Template& find(const std::string& name) {
  const auto& templates = registry();
  const auto it = templates.find(name);
  if (it == templates.end()) {
    const auto names = template_names();
    throw ConfigError(str("unknown prompt template '", name, "'", did_you_mean(name, names),
                          " (valid: ", join_sorted(names), ")"));
  }
  return it->second;
}

}  // namespace

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  for (const auto& [name, unused] : registry()) names.push_back(name);
  return names;  // std::map keeps them sorted
}

void check_template_name(const std::string& name) { find(name); }

std::string apply_template(const std::string& name, const std::string& prompt, const std::string& input,
                           const std::string& system) {
  const Template& t = find(name);
  if (!input.empty() && !t.takes_input)
    throw ConfigError(str("prompt template '", name, "' takes no separate input (only 'alpaca' does); "
                          "put it into the prompt or use data.prompt_template: alpaca"));
  if (!system.empty() && !t.takes_system)
    throw ConfigError(str("prompt template '", name, "' takes no system prompt (llama2-chat and vicuna do)"));
  return t.apply(prompt, input, system);
}

}  // namespace lire::data

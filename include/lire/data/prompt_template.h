// Prompt templates: how a record's prompt text becomes the text the policy
// sees before its response, by the name users write in YAML
// (data.prompt_template). The templates are the published ones, character for
// character; none adds BOS (the tokenizer does, per add_bos_token) and none
// ends with a space (the response is encoded separately and sentencepiece's
// dummy prefix supplies the space between prompt and response).
//
//   raw          the prompt as is
//   alpaca       Stanford Alpaca (tatsu-lab/stanford_alpaca train.py PROMPT_DICT):
//                  without input: "Below is an instruction that describes a task. Write a
//                  response that appropriately completes the request.\n\n### Instruction:\n
//                  {prompt}\n\n### Response:"
//                  with input: "Below is an instruction that describes a task, paired with
//                  an input that provides further context. Write a response that
//                  appropriately completes the request.\n\n### Instruction:\n{prompt}\n\n
//                  ### Input:\n{input}\n\n### Response:"
//   hh           Anthropic HH: a prompt starting with "\n\nHuman:" is a dialogue
//                  and is used as is ("Human:" at the very start gets the "\n\n"
//                  put in front); "\n\nAssistant:" is appended when the dialogue
//                  does not end with an assistant cue. Any other prompt becomes
//                  "\n\nHuman: {prompt}\n\nAssistant:".
//   llama2-chat  Meta's Llama 2 chat format: "[INST] {prompt} [/INST]", with a
//                  system prompt "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{prompt} [/INST]";
//                  the text between "[INST] " and " [/INST]" is stripped of outer
//                  whitespace as Meta's chat_completion does.
//   vicuna       FastChat's vicuna_v1.1: "{system} USER: {prompt} ASSISTANT:" with the
//                  default system "A chat between a curious user and an artificial
//                  intelligence assistant. The assistant gives helpful, detailed, and
//                  polite answers to the user's questions."
//
// `input` is accepted by alpaca only and `system` by llama2-chat and vicuna; a
// non-empty one given to another template is a ConfigError (never dropped).
#pragma once

#include <string>
#include <vector>

namespace lire::data {

// The prompt text for template `name`. Throws ConfigError for an unknown name
// (with a did-you-mean suggestion and the valid names) or an unsupported
// input/system.
std::string apply_template(const std::string& name, const std::string& prompt, const std::string& input = "",
                           const std::string& system = "");

// Registered template names, sorted.
std::vector<std::string> template_names();

// Throws ConfigError unless `name` is a registered template (for validating
// configs before any data is read).
void check_template_name(const std::string& name);

// The default system prompt of `vicuna` v1.1.
extern const char* const kVicunaSystemPrompt;

}  // namespace lire::data

// Prompt templates: each published template character for character, and the
// registry's errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "lire/data/prompt_template.h"

namespace {

using ::testing::HasSubstr;
using lire::data::apply_template;

std::string error_of(const std::string& name, const std::string& input = "", const std::string& system = "") {
  try {
    apply_template(name, "p", input, system);
  } catch (const lire::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(PromptTemplate, Names) {
  EXPECT_EQ(lire::data::template_names(),
            (std::vector<std::string>{"alpaca", "hh", "llama2-chat", "raw", "vicuna"}));
}

TEST(PromptTemplate, Raw) { EXPECT_EQ(apply_template("raw", "  Say hi.\n"), "  Say hi.\n"); }

TEST(PromptTemplate, AlpacaWithoutAndWithInput) {
  EXPECT_EQ(apply_template("alpaca", "Give three tips for staying healthy."),
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nGive three tips for staying healthy.\n\n### Response:");
  EXPECT_EQ(apply_template("alpaca", "Translate to French.", "Good morning"),
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate to "
            "French.\n\n### Input:\nGood morning\n\n### Response:");
}

TEST(PromptTemplate, AnthropicHH) {
  // A dialogue is used as is.
  const std::string dialogue = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant:";
  EXPECT_EQ(apply_template("hh", dialogue), dialogue);
  // Any other prompt becomes one Human turn followed by the Assistant cue.
  EXPECT_EQ(apply_template("hh", "What is 2+2?"), "\n\nHuman: What is 2+2?\n\nAssistant:");
  // A dialogue without the final cue gets it; "Human:" at the start gets its "\n\n".
  EXPECT_EQ(apply_template("hh", "\n\nHuman: Hi"), "\n\nHuman: Hi\n\nAssistant:");
  EXPECT_EQ(apply_template("hh", "Human: Hi\n\nAssistant:"), "\n\nHuman: Hi\n\nAssistant:");
  EXPECT_EQ(apply_template("hh", "\n\nHuman: Hi\n\nAssistant: "), "\n\nHuman: Hi\n\nAssistant: ");
}

TEST(PromptTemplate, Llama2Chat) {
  EXPECT_EQ(apply_template("llama2-chat", "What is 2+2?"), "[INST] What is 2+2? [/INST]");
  EXPECT_EQ(apply_template("llama2-chat", "  What is 2+2?\n"), "[INST] What is 2+2? [/INST]");
  EXPECT_EQ(apply_template("llama2-chat", "What is 2+2?", "", "You are terse."),
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is 2+2? [/INST]");
}

TEST(PromptTemplate, VicunaV11) {
  EXPECT_EQ(apply_template("vicuna", "What is 2+2?"),
            "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
            "detailed, and polite answers to the user's questions. USER: What is 2+2? ASSISTANT:");
  EXPECT_EQ(apply_template("vicuna", "Hi", "", "Be brief."), "Be brief. USER: Hi ASSISTANT:");
}

TEST(PromptTemplate, UnknownNameSuggestsAndListsNames) {
  const std::string message = error_of("alpca");
  EXPECT_THAT(message, HasSubstr("unknown prompt template 'alpca'"));
  EXPECT_THAT(message, HasSubstr("did you mean alpaca?"));
  EXPECT_THAT(message, HasSubstr("alpaca, hh, llama2-chat, raw, vicuna"));
  EXPECT_THAT(error_of("llama2_chat"), HasSubstr("did you mean llama2-chat?"));
  EXPECT_THROW(lire::data::check_template_name("chatml"), lire::ConfigError);
  EXPECT_NO_THROW(lire::data::check_template_name("vicuna"));
}

TEST(PromptTemplate, InputAndSystemOnlyWhereTheTemplateHasAPlace) {
  EXPECT_THAT(error_of("raw", "an input"), HasSubstr("takes no separate input"));
  EXPECT_THAT(error_of("vicuna", "an input"), HasSubstr("takes no separate input"));
  EXPECT_THAT(error_of("alpaca", "", "a system"), HasSubstr("takes no system prompt"));
  EXPECT_THAT(error_of("hh", "", "a system"), HasSubstr("takes no system prompt"));
}

}  // namespace

// resolve() and load(): sections, runtime options, end-to-end messages.
#include "lire/config/config.h"

#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/config/section_reader.h"
#include "lire/core/error.h"
#include "support/error_message.h"
#include "lire/version.h"

namespace lire::config {
namespace {

using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

template <typename Fn>
std::string config_error(Fn&& fn) {
  return lire::testing::error_message<ConfigError>(std::forward<Fn>(fn));
}

Config resolve_yaml(const std::string& yaml) { return resolve(ConfigTree::from_string(yaml, "run.yaml")); }

TEST(Config, SectionNamesFollowTheDesign) {
  EXPECT_EQ(section_names(), (std::vector<std::string>{"model", "lora", "data", "loss", "train", "eval", "sample",
                                                       "rewards", "evolve", "output", "runtime"}));
}

TEST(Config, EmptyTreeGivesDefaults) {
  const Config cfg = resolve(ConfigTree());
  EXPECT_EQ(cfg.loss.name, "lire");
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 2.0);
  EXPECT_EQ(cfg.runtime.threads, 0);
  EXPECT_EQ(cfg.runtime.device, "auto");
  EXPECT_EQ(cfg.runtime.seed, 1234);
  EXPECT_EQ(cfg.tree.root(), json::object());
}

TEST(Config, ReadsLossAndRuntime) {
  const Config cfg = resolve_yaml(
      "model:\n"
      "loss: {name: lire, temperature: 3}\n"
      "runtime:\n"
      "  threads: 4\n"
      "  device: cuda:1\n"
      "  seed: 42\n");
  EXPECT_EQ(cfg.loss.name, "lire");
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 3.0);
  EXPECT_EQ(cfg.runtime.threads, 4);
  EXPECT_EQ(cfg.runtime.device, "cuda:1");
  EXPECT_EQ(cfg.runtime.seed, 42);
  EXPECT_EQ(cfg.tree.root()["loss"]["temperature"], json(3));
}

TEST(Config, UnknownSectionWithSuggestion) {
  const std::string message = config_error([] { resolve_yaml("loss: {name: lire}\nmodle:\n  path: x\n"); });
  EXPECT_THAT(message, StartsWith("run.yaml:2: unknown section 'modle'; did you mean model?"));
  EXPECT_THAT(message, HasSubstr("(sections: "));
  EXPECT_THAT(message, HasSubstr("runtime"));
  EXPECT_THAT(message, HasSubstr("evolve"));
}

TEST(Config, UnknownSectionFromOverride) {
  ConfigTree tree;
  tree.apply_override("runtme.threads=2");
  EXPECT_THAT(config_error([&] { resolve(tree); }),
              StartsWith("override 'runtme.threads=2': unknown section 'runtme'; did you mean runtime?"));
}

TEST(Config, KeysInSectionsNotImplementedYet) {
  const std::string message = config_error([] { resolve_yaml("sample:\n  top_p: 0.9\n"); });
  EXPECT_EQ(message, std::string("run.yaml:2: unknown key sample.top_p (section 'sample' takes no keys in lire ") +
                         LIRE_VERSION + ")");
  for (const char* section : {"sample", "rewards", "evolve"}) {
    ConfigTree tree;
    tree.apply_override(std::string(section) + ".x=1");
    EXPECT_THAT(config_error([&] { resolve(tree); }),
                AllOf(HasSubstr(std::string("unknown key ") + section + ".x"), HasSubstr("takes no keys")))
        << section;
  }
  // An empty or null section is fine; a non-mapping one is not.
  EXPECT_NO_THROW(resolve_yaml("model: {}\nlora:\n"));
  EXPECT_EQ(config_error([] { resolve_yaml("model: /models/llama\n"); }),
            "run.yaml:1: model: expected a mapping, got string \"/models/llama\"");
}

TEST(Config, LoraSection) {
  const Config cfg = resolve_yaml("lora:\n  r: 4\n  alpha: 8\n  targets: [q_proj, k_proj, v_proj]\n  rslora: true\n");
  EXPECT_EQ(cfg.lora.r, 4);
  EXPECT_DOUBLE_EQ(cfg.lora.scaling(), 8.0 / 2.0);  // rsLoRA: alpha / sqrt(r)
  EXPECT_EQ(cfg.lora.targets, (std::vector<std::string>{"q_proj", "k_proj", "v_proj"}));
  const Config d = resolve_yaml("lora:\n  targets: all-linear\n");
  EXPECT_TRUE(d.lora.enabled);
  EXPECT_DOUBLE_EQ(d.lora.scaling(), 16.0 / 8.0);
  EXPECT_EQ(d.lora.targets, (std::vector<std::string>{"all-linear"}));
  EXPECT_THAT(config_error([] { resolve_yaml("lora:\n  r: 0\n"); }), HasSubstr("lora.r"));
  EXPECT_THAT(config_error([] { resolve_yaml("lora:\n  dropout: 1.0\n"); }), HasSubstr("lora.dropout"));
  EXPECT_THAT(config_error([] { resolve_yaml("lora:\n  targets: []\n"); }), HasSubstr("lora.targets"));
  EXPECT_THAT(config_error([] { resolve_yaml("lora:\n  rank: 8\n"); }), HasSubstr("unknown key lora.rank"));
}

TEST(Config, ModelAndDataSections) {
  const Config cfg = resolve_yaml(
      "model:\n  path: /models/llama\n  dtype: bf16\n  adapter: /adapters/a\n"
      "data:\n  prompt_template: alpaca\n  append_eos: false\n  max_prompt_length: 256\n");
  EXPECT_EQ(cfg.model.path, "/models/llama");
  EXPECT_EQ(cfg.model.dtype, "bf16");
  EXPECT_EQ(cfg.model.adapter, "/adapters/a");
  EXPECT_EQ(cfg.data.prompt_template, "alpaca");
  EXPECT_FALSE(cfg.data.append_eos);
  EXPECT_EQ(cfg.data.max_prompt_length, 256);
  EXPECT_EQ(cfg.data.max_response_length, 0);
  // Defaults: auto dtype, raw template, EOS appended.
  const Config d = resolve_yaml("{}\n");
  EXPECT_EQ(d.model.dtype, "auto");
  EXPECT_EQ(d.data.prompt_template, "raw");
  EXPECT_TRUE(d.data.append_eos);
  EXPECT_THAT(config_error([] { resolve_yaml("model:\n  dtype: float32\n"); }),
              AllOf(StartsWith("run.yaml:2: "), HasSubstr("model.dtype"), HasSubstr("fp32")));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  prompt_template: alpacca\n"); }),
              HasSubstr("did you mean alpaca"));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  max_prompt_length: -1\n"); }),
              HasSubstr("data.max_prompt_length"));
  EXPECT_THAT(config_error([] { resolve_yaml("model:\n  pth: x\n"); }), HasSubstr("did you mean model.path"));
}

TEST(Config, UnknownLossKeyWithSuggestion) {
  EXPECT_THAT(config_error([] { resolve_yaml("loss:\n  name: lire\n  temprature: 3\n"); }),
              AllOf(StartsWith("run.yaml:3: "), HasSubstr("loss.temprature"), HasSubstr("loss.temperature")));
}

TEST(Config, LossTypeErrorFromOverride) {
  ConfigTree tree = ConfigTree::from_string("loss: {name: lire, temperature: 3}\n", "run.yaml");
  tree.apply_override("loss.temperature=-1");
  EXPECT_EQ(config_error([&] { resolve(tree); }),
            "override 'loss.temperature=-1': loss.temperature: must be > 0, got -1");
}

TEST(Config, RuntimeDeviceValidation) {
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:12"}) {
    ConfigTree tree;
    tree.set("runtime.device", ok);
    EXPECT_EQ(resolve(tree).runtime.device, ok);
  }
  for (const char* bad : {"gpu", "CPU", "cuda:", "cuda:-1", "cuda:x", "cuda:01", "cuda:1.0", "cuda0", "", "mps"}) {
    ConfigTree tree;
    tree.set("runtime.device", bad);
    EXPECT_THAT(config_error([&] { resolve(tree); }),
                AllOf(HasSubstr("runtime.device: must be auto, cpu, cuda or cuda:N"),
                      HasSubstr(std::string("got '") + bad + "'")))
        << bad;
  }
  EXPECT_THAT(config_error([] { resolve_yaml("runtime:\n  device: cudda\n"); }),
              AllOf(StartsWith("run.yaml:2: runtime.device: "), HasSubstr("did you mean cuda?")));
  EXPECT_THAT(config_error([] { resolve_yaml("runtime:\n  device: 0\n"); }),
              HasSubstr("runtime.device: expected a string, got integer 0"));
}

TEST(Config, RuntimeThreadsAndSeed) {
  EXPECT_EQ(config_error([] { resolve_yaml("runtime:\n  threads: -1\n"); }),
            "run.yaml:2: runtime.threads: must be in [0, 2147483647], got -1");
  EXPECT_THAT(config_error([] { resolve_yaml("runtime:\n  threads: 1.5\n"); }),
              HasSubstr("runtime.threads: expected an integer, got number 1.5"));
  EXPECT_EQ(resolve_yaml("runtime:\n  threads: 2.0\n  seed: -3\n").runtime.threads, 2);
  EXPECT_EQ(resolve_yaml("runtime:\n  seed: -3\n").runtime.seed, -3);
  EXPECT_THAT(config_error([] { resolve_yaml("runtime:\n  seed: abc\n"); }),
              HasSubstr("runtime.seed: expected an integer"));
  EXPECT_THAT(config_error([] { resolve_yaml("runtime:\n  thread: 2\n"); }),
              HasSubstr("unknown key runtime.thread; did you mean runtime.threads?"));
}

TEST(Config, ReadRuntimeOptionsDirectly) {
  const json node = {{"threads", 3}, {"device", "cpu"}};
  SectionReader reader(node, "runtime");
  const RuntimeOptions o = read_runtime_options(reader);
  EXPECT_EQ(o.threads, 3);
  EXPECT_EQ(o.device, "cpu");
  EXPECT_EQ(o.seed, 1234);
}

TEST(Config, LoadFileThenOverrides) {
  std::string dir = ::testing::TempDir() + "lire_load_XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/run.yaml";
  {
    std::ofstream out(path);
    out << "loss:\n  name: lire\n  temperature: 3\nruntime:\n  seed: 1\n";
  }
  const ConfigTree tree = load(path, {"runtime.seed=9", "runtime.threads=2"});
  const Config cfg = resolve(tree);
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 3.0);
  EXPECT_EQ(cfg.runtime.seed, 9);
  EXPECT_EQ(cfg.runtime.threads, 2);
  EXPECT_EQ(tree.location("loss.temperature").to_string(), path + ":3");
  EXPECT_EQ(tree.location("runtime.seed").to_string(), "override 'runtime.seed=9'");
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());

  EXPECT_EQ(config_error([] { load("no/such/config.yaml", {}); }), "config file 'no/such/config.yaml' not found");
  const ConfigTree only_overrides = load("", {"runtime.device=cpu"});
  EXPECT_EQ(resolve(only_overrides).runtime.device, "cpu");
}

TEST(Config, ResolvedTreeRoundTripsThroughYaml) {
  ConfigTree tree = ConfigTree::from_string("loss: {name: lire, temperature: 3.0}\nruntime: {device: cpu}\n");
  tree.apply_override("runtime.seed=5");
  const Config cfg = resolve(tree);
  const ConfigTree back = ConfigTree::from_string(cfg.tree.to_yaml(), "resolved.yaml");
  EXPECT_EQ(back.root(), tree.root());
  const Config again = resolve(back);
  EXPECT_DOUBLE_EQ(again.loss.temperature, 3.0);
  EXPECT_EQ(again.runtime.seed, 5);
}

}  // namespace
}  // namespace lire::config

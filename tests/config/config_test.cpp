// resolve() and load(): sections, runtime options, end-to-end messages.
#include "lire/config/config.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <utility>

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
using ::testing::Eq;
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
  EXPECT_DOUBLE_EQ(cfg.runtime.dist_timeout_s, 600.0);
  EXPECT_EQ(cfg.tree.root(), json::object());
}

TEST(Config, ReadsLossAndRuntime) {
  const Config cfg = resolve_yaml(
      "model:\n"
      "loss: {name: lire, temperature: 3}\n"
      "runtime:\n"
      "  threads: 4\n"
      "  device: cuda:1\n"
      "  seed: 42\n"
      "  dist_timeout_s: 30\n");
  EXPECT_EQ(cfg.loss.name, "lire");
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 3.0);
  EXPECT_EQ(cfg.runtime.threads, 4);
  EXPECT_EQ(cfg.runtime.device, "cuda:1");
  EXPECT_EQ(cfg.runtime.seed, 42);
  EXPECT_DOUBLE_EQ(cfg.runtime.dist_timeout_s, 30.0);
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

TEST(Config, EmptyAndNonMappingSections) {
  // An empty or null section is fine; a non-mapping one is not.
  EXPECT_NO_THROW(resolve_yaml("model: {}\nlora:\nevolve: {}\n"));
  EXPECT_EQ(config_error([] { resolve_yaml("model: /models/llama\n"); }),
            "run.yaml:1: model: expected a mapping, got string \"/models/llama\"");
}

TEST(Config, EvolveSection) {
  const Config off = resolve_yaml("loss: {name: lire}\n");
  EXPECT_EQ(off.evolve.steps, 0);
  const Config cfg = resolve_yaml(
      "rewards:\n  rule: {type: length, max_chars: 10}\n"
      "evolve:\n  steps: 3\n  iterate: 2\n  samples: 6\n  keep_human: true\n  rewards: rule\n"
      "  eval_prompts: held.jsonl\n  eval_samples: 2\n");
  EXPECT_EQ(cfg.evolve.steps, 3);
  EXPECT_EQ(cfg.evolve.iterate, 2);
  EXPECT_EQ(cfg.evolve.samples, 6);
  EXPECT_TRUE(cfg.evolve.keep_human);
  EXPECT_EQ(cfg.evolve.rewards, std::vector<std::string>{"rule"});
  EXPECT_EQ(cfg.evolve.eval_prompts, "held.jsonl");
  EXPECT_EQ(cfg.evolve.eval_samples, 2);

  EXPECT_EQ(config_error([] { resolve_yaml("evolve:\n  steps: 2\n"); }),
            "run.yaml:1: evolve.rewards: name the reward sources (of the rewards section) that score each "
            "Evolve step's pool");
  EXPECT_THAT(config_error([] { resolve_yaml("rewards:\n  rule: {type: length}\nevolve:\n  steps: 1\n  rewards: [rul]\n"); }),
              AllOf(StartsWith("run.yaml:5: evolve.rewards: 'rul' is not a reward source"), HasSubstr("did you mean rule")));
  EXPECT_THAT(config_error([] { resolve_yaml("evolve:\n  step: 2\n"); }),
              AllOf(StartsWith("run.yaml:2: unknown key evolve.step"), HasSubstr("did you mean evolve.steps")));
  EXPECT_THAT(config_error([] { resolve_yaml("evolve:\n  iterate: 0\n"); }), StartsWith("run.yaml:2: evolve.iterate"));
  // The pool's M responses must fit the sample section's decoding (beam: M <= num_beams).
  EXPECT_THAT(config_error([] {
                resolve_yaml("rewards:\n  rule: {type: length}\nsample:\n  strategy: beam\n  num_beams: 2\n"
                             "evolve:\n  steps: 1\n  samples: 4\n  rewards: rule\n");
              }),
              AllOf(StartsWith("run.yaml:8: evolve.samples 4 does not fit the sample section"), HasSubstr("num_beams")));
}

TEST(Config, SampleSection) {
  const Config cfg = resolve_yaml(
      "sample:\n  strategy: diverse-beam\n  num_samples: 3\n  num_beams: 4\n  num_beam_groups: 2\n"
      "  temperature: 0.7\n  top_k: 40\n  seed: 7\n  stop: \"\\n\\nHuman:\"\n  keep_human: true\n"
      "  rewards: [rm]\nrewards:\n  rm: {type: length, max_chars: 10}\n");
  EXPECT_EQ(cfg.sample.generate.strategy, "diverse-beam");
  EXPECT_EQ(cfg.sample.generate.num_samples, 3);
  EXPECT_EQ(cfg.sample.generate.num_beams, 4);
  EXPECT_DOUBLE_EQ(cfg.sample.generate.temperature, 0.7);
  EXPECT_EQ(cfg.sample.generate.top_k, 40);
  EXPECT_EQ(cfg.sample.generate.seed, 7u);
  EXPECT_EQ(cfg.sample.stop, std::vector<std::string>{"\n\nHuman:"});
  EXPECT_TRUE(cfg.sample.keep_human);
  EXPECT_EQ(cfg.sample.rewards, std::vector<std::string>{"rm"});
  // Defaults are the generation engine's.
  const Config plain = resolve_yaml("sample: {}\n");
  EXPECT_EQ(plain.sample.generate.strategy, "sample");
  EXPECT_EQ(plain.sample.generate.num_samples, 1);
  EXPECT_FALSE(plain.sample.keep_human);
  // Errors name the file, line and key, including the checks between keys.
  EXPECT_EQ(config_error([] { resolve_yaml("sample:\n  strategy: nucleus\n"); }).substr(0, 29),
            "run.yaml:2: sample.strategy: ");
  EXPECT_THAT(config_error([] { resolve_yaml("sample:\n  strategy: beam\n  num_beams: 2\n  num_samples: 3\n"); }),
              HasSubstr("sample.num_samples: 3 responses need at least as many beams"));
  EXPECT_THAT(config_error([] { resolve_yaml("sample:\n  strategy: diverse-beam\n  num_beams: 4\n  num_beam_groups: 3\n"); }),
              AllOf(HasSubstr("run.yaml:4: sample.num_beam_groups"), HasSubstr("dividing")));
  EXPECT_THAT(config_error([] { resolve_yaml("sample:\n  top_p: 0\n"); }), HasSubstr("sample.top_p"));
  EXPECT_THAT(config_error([] { resolve_yaml("sample:\n  stop: [\"\"]\n"); }), HasSubstr("must not be empty"));
  EXPECT_THAT(config_error([] { resolve_yaml("sample:\n  temprature: 0.5\n"); }),
              AllOf(HasSubstr("sample.temprature"), HasSubstr("temperature")));
  // Reward names must exist in the rewards section.
  EXPECT_EQ(config_error([] { resolve_yaml("sample:\n  rewards: [rn]\nrewards:\n  rm: {type: length}\n"); }),
            "run.yaml:2: sample.rewards: 'rn' is not a reward source of the rewards section; did you mean rm?");
  EXPECT_THAT(config_error([] { resolve_yaml("eval:\n  rewards: x\n"); }), HasSubstr("eval.rewards: 'x' is not a reward source of the rewards section (it has none)"));
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

TEST(Config, DataSectionFilesSplitAndSubsampling) {
  const Config d = resolve(ConfigTree());
  EXPECT_EQ(d.data.train, "");
  EXPECT_EQ(d.data.eval, "");
  EXPECT_DOUBLE_EQ(d.data.eval_fraction, 0.0);
  EXPECT_EQ(d.data.on_error, "fail");
  EXPECT_EQ(d.data.max_responses, 0);
  EXPECT_TRUE(d.data.shuffle);
  EXPECT_TRUE(d.data.fields.empty());
  EXPECT_EQ(d.data.max_length, 0);
  EXPECT_EQ(d.data.max_prompt_length, 0);
  EXPECT_EQ(d.data.max_response_length, 0);

  const Config cfg = resolve_yaml(
      "data:\n"
      "  train: lists/train.jsonl\n"
      "  eval_fraction: 0.05\n"
      "  on_error: skip\n"
      "  max_responses: 4\n"
      "  shuffle: false\n"
      "  fields: {question: prompt, answers: responses}\n"
      "  max_length: 450\n"
      "  max_prompt_length: 256\n"
      "  max_response_length: 128\n");
  EXPECT_EQ(cfg.data.train, "lists/train.jsonl");
  EXPECT_DOUBLE_EQ(cfg.data.eval_fraction, 0.05);
  EXPECT_EQ(cfg.data.on_error, "skip");
  EXPECT_EQ(cfg.data.max_responses, 4);
  EXPECT_FALSE(cfg.data.shuffle);
  EXPECT_EQ(cfg.data.fields,
            (std::map<std::string, std::string>{{"question", "prompt"}, {"answers", "responses"}}));
  EXPECT_EQ(cfg.data.max_length, 450);
  EXPECT_EQ(cfg.data.max_prompt_length, 256);
  EXPECT_EQ(cfg.data.max_response_length, 128);
  EXPECT_EQ(resolve_yaml("data:\n  eval: lists/test.jsonl\n").data.eval, "lists/test.jsonl");

  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  max_length: 100\n  max_prompt_length: 100\n"); }),
              AllOf(StartsWith("run.yaml:3: data.max_prompt_length: "), HasSubstr("data.max_length (100)")));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  max_length: 100\n  max_prompt_length: 150\n"); }),
              HasSubstr("data.max_prompt_length"));
  // Without max_length the prompt limit stands alone.
  EXPECT_EQ(resolve_yaml("data:\n  max_prompt_length: 1024\n").data.max_prompt_length, 1024);
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  fields: [prompt]\n"); }),
              AllOf(StartsWith("run.yaml:2: data.fields: "), HasSubstr("must be a mapping")));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  fields: question\n"); }), HasSubstr("data.fields"));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  fields: {question: 3}\n"); }),
              AllOf(HasSubstr("data.fields"), HasSubstr("'question'")));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  eval_fraction: 1.0\n"); }), HasSubstr("data.eval_fraction"));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  eval_fraction: -0.1\n"); }), HasSubstr("data.eval_fraction"));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  eval: test.jsonl\n  eval_fraction: 0.1\n"); }),
              AllOf(HasSubstr("data.eval_fraction"), HasSubstr("not both")));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  on_error: ignore\n"); }),
              AllOf(HasSubstr("data.on_error"), HasSubstr("fail, skip")));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  max_responses: 1\n"); }),
              AllOf(HasSubstr("data.max_responses"), HasSubstr("at least 2")));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  max_responses: -2\n"); }), HasSubstr("data.max_responses"));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  shuffle: yes\n"); }), HasSubstr("data.shuffle"));
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  max_response_length: -1\n"); }),
              HasSubstr("data.max_response_length"));
  // The old names are gone.
  EXPECT_THAT(config_error([] { resolve_yaml("data:\n  max_prompt_tokens: 10\n"); }),
              HasSubstr("unknown key data.max_prompt_tokens"));
}

TEST(Config, LossSftTarget) {
  EXPECT_EQ(resolve(ConfigTree()).loss.sft_target, "auto");
  for (const char* target : {"auto", "best", "human"}) {
    ConfigTree tree;
    tree.set("loss.sft_target", target);
    EXPECT_EQ(resolve(tree).loss.sft_target, target);
  }
  EXPECT_EQ(resolve_yaml("loss: {name: sft, sft_target: best}\n").loss.sft_target, "best");
  EXPECT_EQ(resolve_yaml("loss: {name: lipo, sft_weight: 0.1, sft_target: human}\n").loss.sft_target, "human");
  EXPECT_THAT(config_error([] { resolve_yaml("loss:\n  sft_target: chosen\n"); }),
              AllOf(StartsWith("run.yaml:2: loss.sft_target: "), HasSubstr("auto, best, human")));
}

TEST(Config, TrainSectionDefaults) {
  const TrainOptions t = resolve(ConfigTree()).train;
  EXPECT_EQ(t.batch_size, 8);
  EXPECT_EQ(t.grad_accum, 1);
  EXPECT_EQ(t.epochs, 1);
  EXPECT_EQ(t.max_steps, 0);
  EXPECT_DOUBLE_EQ(t.lr, 1e-5);
  EXPECT_EQ(t.lr_schedule, "cosine");
  EXPECT_EQ(t.warmup_steps, 0);
  EXPECT_DOUBLE_EQ(t.warmup_ratio, 0.0);
  EXPECT_DOUBLE_EQ(t.min_lr_ratio, 0.0);
  EXPECT_DOUBLE_EQ(t.weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(t.adam_beta1, 0.9);
  EXPECT_DOUBLE_EQ(t.adam_beta2, 0.999);
  EXPECT_DOUBLE_EQ(t.adam_eps, 1e-8);
  EXPECT_DOUBLE_EQ(t.max_grad_norm, 1.0);
  EXPECT_EQ(t.reference, "auto");
  EXPECT_EQ(t.max_sequences, 16);
  EXPECT_EQ(t.max_nonfinite_steps, 5);
  EXPECT_EQ(t.log_every, 1);
}

TEST(Config, TrainSectionValues) {
  const Config cfg = resolve_yaml(
      "train:\n"
      "  batch_size: 2\n  grad_accum: 16\n  epochs: 3\n  max_steps: 100\n"
      "  lr: 2e-5\n  lr_schedule: linear\n  warmup_ratio: 0.1\n  min_lr_ratio: 0.1\n"
      "  weight_decay: 0.01\n  adam_beta1: 0.8\n  adam_beta2: 0.95\n  adam_eps: 1e-6\n"
      "  max_grad_norm: 0\n  reference: frozen-copy\n  max_sequences: 4\n"
      "  max_nonfinite_steps: 2\n  log_every: 10\n");
  const TrainOptions& t = cfg.train;
  EXPECT_EQ(t.batch_size, 2);
  EXPECT_EQ(t.grad_accum, 16);
  EXPECT_EQ(t.epochs, 3);
  EXPECT_EQ(t.max_steps, 100);
  EXPECT_DOUBLE_EQ(t.lr, 2e-5);
  EXPECT_EQ(t.lr_schedule, "linear");
  EXPECT_DOUBLE_EQ(t.warmup_ratio, 0.1);
  EXPECT_DOUBLE_EQ(t.min_lr_ratio, 0.1);
  EXPECT_DOUBLE_EQ(t.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(t.adam_beta1, 0.8);
  EXPECT_DOUBLE_EQ(t.adam_beta2, 0.95);
  EXPECT_DOUBLE_EQ(t.adam_eps, 1e-6);
  EXPECT_DOUBLE_EQ(t.max_grad_norm, 0.0);
  EXPECT_EQ(t.reference, "frozen-copy");
  EXPECT_EQ(t.max_sequences, 4);
  EXPECT_EQ(t.max_nonfinite_steps, 2);
  EXPECT_EQ(t.log_every, 10);
  for (const char* mode : {"auto", "adapter-off", "frozen-copy", "precomputed", "none"}) {
    ConfigTree tree;
    tree.set("train.reference", mode);
    EXPECT_EQ(resolve(tree).train.reference, mode);
  }
  EXPECT_EQ(resolve_yaml("train:\n  warmup_steps: 150\n").train.warmup_steps, 150);
}

TEST(Config, TrainSectionErrorsNameTheKey) {
  EXPECT_EQ(config_error([] { resolve_yaml("train:\n  grad_accum: 0\n"); }),
            "run.yaml:2: train.grad_accum: must be >= 1, got 0");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train:\n  batch_size: 0\n", "train.batch_size"},
      {"train:\n  epochs: 0\n", "train.epochs"},
      {"train:\n  max_steps: -1\n", "train.max_steps"},
      {"train:\n  lr: 0\n", "train.lr"},
      {"train:\n  lr: -1e-5\n", "train.lr"},
      {"train:\n  lr_schedule: cosin\n", "train.lr_schedule"},
      {"train:\n  warmup_steps: -1\n", "train.warmup_steps"},
      {"train:\n  warmup_ratio: 1.5\n", "train.warmup_ratio"},
      {"train:\n  min_lr_ratio: 2\n", "train.min_lr_ratio"},
      {"train:\n  weight_decay: -0.1\n", "train.weight_decay"},
      {"train:\n  adam_beta1: 1.0\n", "train.adam_beta1"},
      {"train:\n  adam_beta2: -0.1\n", "train.adam_beta2"},
      {"train:\n  adam_eps: 0\n", "train.adam_eps"},
      {"train:\n  max_grad_norm: -1\n", "train.max_grad_norm"},
      {"train:\n  reference: reference-model\n", "train.reference"},
      {"train:\n  max_sequences: 0\n", "train.max_sequences"},
      {"train:\n  max_nonfinite_steps: 0\n", "train.max_nonfinite_steps"},
      {"train:\n  log_every: 0\n", "train.log_every"},
      {"train:\n  batch_size: 2.5\n", "train.batch_size"},
      {"train:\n  learning_rate: 1e-5\n", "unknown key train.learning_rate"},
  };
  for (const auto& [yaml, key] : cases)
    EXPECT_THAT(config_error([&] { resolve_yaml(yaml); }), AllOf(StartsWith("run.yaml:2: "), HasSubstr(key)))
        << yaml;
  EXPECT_THAT(config_error([] { resolve_yaml("train:\n  lr_schedule: cosin\n"); }), HasSubstr("did you mean cosine"));
  EXPECT_THAT(config_error([] { resolve_yaml("train:\n  warmup_steps: 10\n  warmup_ratio: 0.1\n"); }),
              AllOf(StartsWith("run.yaml:3: train.warmup_ratio: "), HasSubstr("train.warmup_steps"),
                    HasSubstr("not both")));
  // Zero for either one is "not given".
  EXPECT_NO_THROW(resolve_yaml("train:\n  warmup_steps: 0\n  warmup_ratio: 0.1\n"));
  EXPECT_NO_THROW(resolve_yaml("train:\n  warmup_steps: 10\n  warmup_ratio: 0\n"));
  ConfigTree tree;
  tree.apply_override("train.grad_accum=0");
  EXPECT_THAT(config_error([&] { resolve(tree); }),
              Eq("override 'train.grad_accum=0': train.grad_accum: must be >= 1, got 0"));
}

TEST(Config, EvalSection) {
  const EvalOptions d = resolve(ConfigTree()).eval;
  EXPECT_EQ(d.every, 0);
  EXPECT_TRUE(d.at_start);
  EXPECT_EQ(d.batch_size, 8);
  EXPECT_EQ(d.max_lists, 0);
  const EvalOptions e = resolve_yaml("eval:\n  every: 200\n  at_start: false\n  batch_size: 4\n  max_lists: 500\n").eval;
  EXPECT_EQ(e.every, 200);
  EXPECT_FALSE(e.at_start);
  EXPECT_EQ(e.batch_size, 4);
  EXPECT_EQ(e.max_lists, 500);
  EXPECT_THAT(config_error([] { resolve_yaml("eval:\n  every: -1\n"); }),
              Eq("run.yaml:2: eval.every: must be >= 0, got -1"));
  EXPECT_THAT(config_error([] { resolve_yaml("eval:\n  batch_size: 0\n"); }), HasSubstr("eval.batch_size"));
  EXPECT_THAT(config_error([] { resolve_yaml("eval:\n  max_lists: -5\n"); }), HasSubstr("eval.max_lists"));
  EXPECT_THAT(config_error([] { resolve_yaml("eval:\n  at_start: 1\n"); }), HasSubstr("eval.at_start"));
  EXPECT_THAT(config_error([] { resolve_yaml("eval:\n  evry: 10\n"); }),
              HasSubstr("unknown key eval.evry; did you mean eval.every?"));
}

TEST(Config, OutputSection) {
  const OutputOptions d = resolve(ConfigTree()).output;
  EXPECT_EQ(d.save_every, 0);
  EXPECT_EQ(d.keep_last, 2);
  EXPECT_EQ(d.keep_best, "");
  EXPECT_EQ(d.keep_best_mode, "auto");
  EXPECT_FALSE(d.merge);
  EXPECT_EQ(d.dtype, "auto");
  const OutputOptions o = resolve_yaml(
                              "output:\n  save_every: 100\n  keep_last: 0\n  keep_best: eval/pair_accuracy\n"
                              "  keep_best_mode: max\n  merge: true\n  dtype: bf16\n")
                              .output;
  EXPECT_EQ(o.save_every, 100);
  EXPECT_EQ(o.keep_last, 0);
  EXPECT_EQ(o.keep_best, "eval/pair_accuracy");
  EXPECT_EQ(o.keep_best_mode, "max");
  EXPECT_TRUE(o.merge);
  EXPECT_EQ(o.dtype, "bf16");
  EXPECT_THAT(config_error([] { resolve_yaml("output:\n  keep_best: loss\n"); }),
              AllOf(StartsWith("run.yaml:2: output.keep_best: "), HasSubstr("eval metric"), HasSubstr("'loss'")));
  EXPECT_THAT(config_error([] { resolve_yaml("output:\n  keep_best: train/loss\n"); }),
              HasSubstr("output.keep_best"));
  EXPECT_THAT(config_error([] { resolve_yaml("output:\n  keep_best_mode: maximum\n"); }),
              HasSubstr("output.keep_best_mode"));
  EXPECT_THAT(config_error([] { resolve_yaml("output:\n  save_every: -1\n"); }), HasSubstr("output.save_every"));
  EXPECT_THAT(config_error([] { resolve_yaml("output:\n  keep_last: -1\n"); }), HasSubstr("output.keep_last"));
  EXPECT_THAT(config_error([] { resolve_yaml("output:\n  dtype: float16\n"); }),
              AllOf(HasSubstr("output.dtype"), HasSubstr("fp16")));
  EXPECT_THAT(config_error([] { resolve_yaml("output:\n  merge: yes\n"); }), HasSubstr("output.merge"));
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

// key=null unsets a key, also one the section no longer takes: switching
// loss.name away from lire in a config that sets loss.temperature.
TEST(Config, NullUnsetsKeysTheSectionNoLongerTakes) {
  ConfigTree tree = ConfigTree::from_string("loss:\n  name: lire\n  temperature: 1\n", "run.yaml");
  tree.apply_overrides({"loss.name=dpo"});
  EXPECT_THAT(config_error([&] { resolve(tree); }), HasSubstr("loss.temperature: not an option of loss 'dpo'"));
  tree.apply_overrides({"loss.temperature=null"});
  const Config cfg = resolve(tree);
  EXPECT_EQ(cfg.loss.name, "dpo");
  EXPECT_DOUBLE_EQ(cfg.loss.beta, 0.1);
}

}  // namespace
}  // namespace lire::config

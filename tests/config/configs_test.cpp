// The shipped configs/*.yaml: every one resolves, and the paper configs keep
// the values their comments attribute to the LIRE and LiPO papers.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lire/config/config.h"
#include "lire/core/error.h"

namespace lire::config {
namespace {

namespace fs = std::filesystem;

// tests/fixtures -> the repository's configs/.
const fs::path kConfigDir = fs::path(LIRE_TEST_FIXTURES) / ".." / ".." / "configs";

Config resolve_config(const std::string& name) {
  return resolve(load((kConfigDir / name).string(), {}));
}

std::vector<fs::path> shipped_configs() {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(kConfigDir))
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  return paths;
}

TEST(ShippedConfigs, EveryConfigResolves) {
  const auto paths = shipped_configs();
  std::vector<std::string> names;
  for (const auto& p : paths) names.push_back(p.filename().string());
  for (const char* expected : {"lire.yaml", "lipo.yaml", "hh4.yaml", "hh4-evolve.yaml", "hh.yaml", "tldr.yaml",
                               "lipo-tldr8.yaml", "dpo.yaml"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected << " missing in configs/";
  for (const auto& p : paths) {
    try {
      resolve(load(p.string(), {}));
    } catch (const Error& e) {
      ADD_FAILURE() << p.filename().string() << ": " << e.what();
    }
  }
}

// configs/demo/: the embedded demo's configs (docs/demo.md).
TEST(ShippedConfigs, DemoConfigsResolve) {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(kConfigDir / "demo"))
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") paths.push_back(entry.path());
  EXPECT_FALSE(paths.empty());
  for (const auto& p : paths) {
    try {
      resolve(load(p.string(), {}));
    } catch (const Error& e) {
      ADD_FAILURE() << "demo/" << p.filename().string() << ": " << e.what();
    }
  }
  const Config sft = resolve_config("demo/sft.yaml");
  EXPECT_EQ(sft.loss.name, "sft");
  EXPECT_FALSE(sft.lora.enabled);
}

TEST(ShippedConfigs, OverridesApplyOnTopOfAPaperConfig) {
  const Config cfg = resolve(load((kConfigDir / "hh4.yaml").string(), {"train.lr=1e-5", "loss.temperature=5"}));
  EXPECT_DOUBLE_EQ(cfg.train.lr, 1e-5);
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 5.0);
  EXPECT_EQ(cfg.train.grad_accum, 16);
}

// LIRE Sec. 4.2, 4.4, 4.6 (Table 4), A.4.
TEST(ShippedConfigs, Hh4KeepsTheLirePaperSettings) {
  const Config cfg = resolve_config("hh4.yaml");
  EXPECT_EQ(cfg.loss.name, "lire");
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 2.0);
  EXPECT_EQ(cfg.loss.reward_transform, "softmax");
  EXPECT_DOUBLE_EQ(cfg.loss.sft_weight, 0.02);
  EXPECT_EQ(cfg.loss.sft_target, "human");
  EXPECT_DOUBLE_EQ(cfg.train.lr, 2e-5);
  EXPECT_EQ(cfg.train.lr_schedule, "cosine");
  EXPECT_EQ(cfg.train.epochs, 3);
  EXPECT_EQ(cfg.train.grad_accum, 16);
  EXPECT_EQ(cfg.train.reference, "auto");
  EXPECT_EQ(cfg.data.max_length, 450);
  EXPECT_EQ(cfg.data.max_responses, 4);
  EXPECT_EQ(cfg.data.prompt_template, "hh");
  EXPECT_LT(cfg.data.max_prompt_length, cfg.data.max_length);
  EXPECT_TRUE(cfg.lora.enabled);
}

// LIRE Sec. 4.7, Table 6 (E(3)I(1)-HH4): hh4.yaml's training plus Algorithm 1.
TEST(ShippedConfigs, Hh4EvolveIsTable6sSetting) {
  const Config cfg = resolve_config("hh4-evolve.yaml");
  const Config base = resolve_config("hh4.yaml");
  EXPECT_EQ(cfg.evolve.steps, 3);
  EXPECT_EQ(cfg.evolve.iterate, 1);
  EXPECT_EQ(cfg.evolve.samples, 2);
  EXPECT_TRUE(cfg.evolve.keep_human);
  EXPECT_EQ(cfg.evolve.rewards, std::vector<std::string>{"rm"});
  ASSERT_NE(cfg.rewards.find("rm"), nullptr);
  EXPECT_EQ(cfg.rewards.find("rm")->type, "hf-seq-cls");
  // The pool is the 2 human responses + M = 2 samples: HH-4.
  EXPECT_EQ(cfg.evolve.samples + 2, cfg.data.max_responses);
  EXPECT_EQ(cfg.loss.name, base.loss.name);
  EXPECT_DOUBLE_EQ(cfg.loss.sft_weight, base.loss.sft_weight);
  EXPECT_EQ(cfg.loss.sft_target, "human");
  EXPECT_DOUBLE_EQ(cfg.train.lr, base.train.lr);
  EXPECT_EQ(cfg.data.max_length, base.data.max_length);
}

// LIRE Sec. 4.2-4.3 (Table 2), pairwise HH.
TEST(ShippedConfigs, HhKeepsTheLirePaperSettings) {
  const Config cfg = resolve_config("hh.yaml");
  EXPECT_EQ(cfg.loss.name, "lire");
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 2.0);
  EXPECT_DOUBLE_EQ(cfg.train.lr, 2e-5);
  EXPECT_EQ(cfg.train.lr_schedule, "cosine");
  EXPECT_EQ(cfg.train.epochs, 3);
  EXPECT_EQ(cfg.train.grad_accum, 16);
  EXPECT_EQ(cfg.data.max_length, 450);
  EXPECT_EQ(cfg.data.prompt_template, "hh");
  EXPECT_TRUE(cfg.lora.enabled);
}

// LIRE Sec. 4.2: summarization lr 1e-5, 2 epochs, max length 720.
TEST(ShippedConfigs, TldrKeepsTheLirePaperSettings) {
  const Config cfg = resolve_config("tldr.yaml");
  EXPECT_EQ(cfg.loss.name, "lire");
  EXPECT_DOUBLE_EQ(cfg.loss.temperature, 2.0);
  EXPECT_DOUBLE_EQ(cfg.train.lr, 1e-5);
  EXPECT_EQ(cfg.train.lr_schedule, "cosine");
  EXPECT_EQ(cfg.train.epochs, 2);
  EXPECT_EQ(cfg.train.grad_accum, 16);
  EXPECT_EQ(cfg.data.max_length, 720);
  EXPECT_LT(cfg.data.max_prompt_length, cfg.data.max_length);
  EXPECT_TRUE(cfg.lora.enabled);
}

// LiPO Sec. 5: LiPO-lambda, K = 8, beta 0.05, lr 2e-5, batch 32.
TEST(ShippedConfigs, LipoTldr8KeepsTheLipoPaperSettings) {
  const Config cfg = resolve_config("lipo-tldr8.yaml");
  EXPECT_EQ(cfg.loss.name, "lipo");
  EXPECT_DOUBLE_EQ(cfg.loss.beta, 0.05);
  EXPECT_EQ(cfg.loss.lambda_weight, "dcg");
  EXPECT_EQ(cfg.loss.label_transform, "bt-winrate");
  EXPECT_EQ(cfg.loss.reduction, "rax");
  EXPECT_EQ(cfg.data.max_responses, 8);
  EXPECT_DOUBLE_EQ(cfg.train.lr, 2e-5);
  EXPECT_EQ(cfg.train.batch_size * cfg.train.grad_accum, 32);
  EXPECT_EQ(cfg.train.reference, "auto");
  EXPECT_FALSE(cfg.lora.enabled);
}

// DPO baseline: beta 0.1 (DPO's repo), HH max length 450 (LIRE Sec. 4.2).
TEST(ShippedConfigs, DpoBaseline) {
  const Config cfg = resolve_config("dpo.yaml");
  EXPECT_EQ(cfg.loss.name, "dpo");
  EXPECT_DOUBLE_EQ(cfg.loss.beta, 0.1);
  EXPECT_DOUBLE_EQ(cfg.train.lr, 5e-7);
  EXPECT_EQ(cfg.train.warmup_steps, 150);
  EXPECT_EQ(cfg.train.batch_size * cfg.train.grad_accum, 64);
  EXPECT_EQ(cfg.data.max_length, 450);
  EXPECT_EQ(cfg.data.max_prompt_length, 256);
  EXPECT_EQ(cfg.data.prompt_template, "hh");
  EXPECT_FALSE(cfg.lora.enabled);
}

}  // namespace
}  // namespace lire::config

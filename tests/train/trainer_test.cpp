// lire-train's trainer end to end on the tiny Llama fixture and the tiny
// synthetic lists of configs/data/tiny (a response's reward is its number of
// "good" words): learning, exact resume, gradient accumulation, reference
// modes, non-finite steps, run-directory rules and data errors.
#include "lire/train/trainer.h"

#include <filesystem>
#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/data/candidate_list.h"
#include "lire/io/safetensors.h"
#include "lire/models/language_model.h"
#include "lire/models/sequence_logprobs.h"
#include "lire/models/weights.h"
#include "lire/train/checkpoint.h"
#include "support/error_message.h"
#include "support/hf_fixtures.h"
#include "support/temp_dir.h"

namespace lire::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using lire::testing::TempDir;

const std::string kModel = LIRE_TEST_FIXTURES "/hf/llama_tiny";
const std::string kData = LIRE_TEST_FIXTURES "/../../configs/data/tiny";

config::Config make_config(const std::vector<std::string>& overrides) {
  std::vector<std::string> all = {"model.path=" + kModel,
                                  "model.dtype=fp32",
                                  "data.train=" + kData + "/train.jsonl",
                                  "data.eval=" + kData + "/eval.jsonl",
                                  "lora.targets=all-linear",
                                  "train.batch_size=8",
                                  "train.lr=5e-3",
                                  "train.lr_schedule=constant",
                                  "train.log_every=1",
                                  "eval.max_lists=32",
                                  "output.keep_last=0",
                                  "runtime.seed=1"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  config::ConfigTree tree;
  tree.apply_overrides(all);
  return config::resolve(tree);
}

TrainResult run(const config::Config& cfg, const std::string& output, bool resume = false) {
  TrainJob job;
  job.config = cfg;
  job.output = output;
  job.resume = resume;
  job.progress = false;
  return train(job);
}

std::vector<json> read_metrics(const std::string& run_dir) {
  std::vector<json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

// Every tensor of a safetensors file, by name.
std::map<std::string, torch::Tensor> tensors_of(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  const auto file = io::SafetensorsFile::open(path);
  for (const auto& name : file->names()) out[name] = file->tensor(name).clone();
  return out;
}

// The trained weights of a run's newest checkpoint (adapter or full model).
std::map<std::string, torch::Tensor> final_weights(const std::string& run_dir) {
  const std::string ckpt = latest_checkpoint(run_dir);
  if (fs::exists(ckpt + "/adapter")) return tensors_of(ckpt + "/adapter/adapter_model.safetensors");
  return tensors_of(ckpt + "/model/model.safetensors");
}

double max_abs_diff(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    if (it == b.end()) {
      ADD_FAILURE() << "missing tensor " << name;
      continue;
    }
    m = std::max(m, (t.to(torch::kFloat64) - it->second.to(torch::kFloat64)).abs().max().item<double>());
  }
  return m;
}

bool bitwise_equal(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    if (it == b.end() || !torch::equal(t, it->second)) return false;
  }
  return true;
}

// Rewrites the tiny lists with 2, 3 or 4 responses (ragged K) and returns the path.
std::string ragged_lists(const TempDir& dir, std::size_t n) {
  std::ifstream in(kData + "/train.jsonl");
  const std::string path = dir.file("ragged.jsonl");
  std::ofstream out(path);
  std::string line;
  for (std::size_t i = 0; i < n && std::getline(in, line); ++i) {
    auto rec = json::parse(line);
    const std::size_t k = 2 + i % 3;
    rec["responses"] = std::vector<std::string>(rec["responses"].begin(), rec["responses"].begin() + k);
    rec["rewards"] = std::vector<double>(rec["rewards"].begin(), rec["rewards"].begin() + k);
    out << rec.dump() << "\n";
  }
  return path;
}

// ------------------------------------------------------------------ learning

class LearnsOrdering : public ::testing::TestWithParam<std::string> {};

TEST_P(LearnsOrdering, HeldOutPairAccuracyRisesAndLossFalls) {
  TempDir dir("lire_train");
  const std::string out = dir.file("run");
  std::vector<std::string> o = {"loss.name=" + GetParam(), "train.max_steps=12", "eval.every=6",
                                "output.keep_best=eval/pair_accuracy", "output.keep_last=1"};
  if (GetParam() == "lire") o.push_back("loss.temperature=1");
  run(make_config(o), out);

  std::vector<double> acc, loss;
  for (const auto& m : read_metrics(out)) {
    if (m.contains("eval/pair_accuracy")) acc.push_back(m["eval/pair_accuracy"].get<double>());
    if (m.contains("train/loss")) loss.push_back(m["train/loss"].get<double>());
  }
  ASSERT_EQ(acc.size(), 3u);  // steps 0, 6 and 12
  ASSERT_EQ(loss.size(), 12u);
  EXPECT_LT(acc.front(), 0.65) << "an untrained random policy orders the lists near chance";
  EXPECT_GT(acc.back(), acc.front() + 0.25) << GetParam();
  const double first = (loss[0] + loss[1] + loss[2]) / 3, last = (loss[9] + loss[10] + loss[11]) / 3;
  EXPECT_LT(last, first) << GetParam();

  // keep_last 1 plus the best: at most two checkpoints, the newest among them.
  const auto ckpts = list_checkpoints(out);
  ASSERT_GE(ckpts.size(), 1u);
  ASSERT_LE(ckpts.size(), 2u);
  EXPECT_EQ(ckpts.back().first, 12);
  std::ifstream state_in(ckpts.back().second + "/trainer_state.json");
  const auto state = json::parse(state_in);
  const auto best = std::max_element(acc.begin(), acc.end());
  EXPECT_DOUBLE_EQ(state["best_value"].get<double>(), *best);
  EXPECT_TRUE(fs::exists(checkpoint_path(out, state["best_step"].get<std::int64_t>())));
  // The run directory.
  for (const char* f : {"config.yaml", "run.json", "metrics.jsonl", "final/adapter/adapter_config.json",
                        "final/adapter/adapter_model.safetensors"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
}

INSTANTIATE_TEST_SUITE_P(Losses, LearnsOrdering, ::testing::Values("lire", "lipo", "dpo"));

TEST(Trainer, SftRaisesTheBestResponsesLikelihood) {
  TempDir dir("lire_train");
  const std::string out = dir.file("run");
  run(make_config({"loss.name=sft", "train.max_steps=8", "train.lr=1e-2"}), out);
  std::vector<double> best;
  for (const auto& m : read_metrics(out))
    if (m.contains("eval/best_logp")) best.push_back(m["eval/best_logp"].get<double>());
  ASSERT_EQ(best.size(), 2u);
  EXPECT_GT(best.back(), best.front() + 10.0);  // log pi(best) of a 5-word response, in nats
}

// ------------------------------------------------------------------ T5

// A T5 policy folder: the tiny T5 v1.1 fixture with the tiny Llama fixture's
// sentencepiece model as its spiece.model (T5Tokenizer flags: no BOS, EOS
// after the prompt and every response; config.json's EOS id 1).
std::string t5_policy(const TempDir& dir) {
  const std::string folder = dir.file("t5");
  fs::create_directories(folder);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(LIRE_TEST_FIXTURES "/hf/t5_tiny/" + std::string(f), folder + "/" + f);
  fs::copy_file(kModel + "/tokenizer.model", folder + "/spiece.model");
  std::ofstream(folder + "/tokenizer_config.json") << R"({"tokenizer_class": "T5Tokenizer"})";
  return folder;
}

// LiPO-lambda on a T5 policy (prompt in the encoder, responses as decoder
// targets) learns the tiny lists' ordering as the Llama runs do, and saves a
// PEFT adapter with T5's module paths and task type.
TEST(Trainer, T5LearnsOrderingWithLipo) {
  TempDir dir("lire_train_t5");
  const std::string out = dir.file("run");
  run(make_config({"model.path=" + t5_policy(dir), "loss.name=lipo", "train.max_steps=12", "eval.every=6",
                   "train.lr=1e-2"}),
      out);
  std::vector<double> acc;
  for (const auto& m : read_metrics(out))
    if (m.contains("eval/pair_accuracy")) acc.push_back(m["eval/pair_accuracy"].get<double>());
  ASSERT_EQ(acc.size(), 3u);
  EXPECT_LT(acc.front(), 0.65) << "an untrained random policy orders the lists near chance";
  EXPECT_GT(acc.back(), acc.front() + 0.2);
  std::ifstream config_in(out + "/final/adapter/adapter_config.json");
  const auto adapter = json::parse(config_in);
  EXPECT_EQ(adapter["task_type"], "SEQ_2_SEQ_LM");
  const auto weights = tensors_of(out + "/final/adapter/adapter_model.safetensors");
  EXPECT_TRUE(weights.count("base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight"));
  EXPECT_TRUE(weights.count("base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight"));
  EXPECT_FALSE(weights.count("base_model.model.lm_head.lora_A.weight"));
}

// Without lora.targets a T5 run adapts q and v (PEFT's T5 default); full
// fine-tuning writes a T5 folder HF can load (the trained weights, T5 names).
TEST(Trainer, T5DefaultTargetsAndFullFineTuning) {
  TempDir dir("lire_train_t5");
  const std::string folder = t5_policy(dir);
  config::ConfigTree tree;
  tree.apply_overrides({"model.path=" + folder, "model.dtype=fp32", "data.train=" + kData + "/train.jsonl",
                        "loss.name=lire", "train.max_steps=2", "train.batch_size=4", "eval.every=0",
                        "output.keep_last=0", "runtime.seed=1"});
  run(config::resolve(tree), dir.file("lora"));
  std::ifstream config_in(dir.file("lora") + "/final/adapter/adapter_config.json");
  auto targets = json::parse(config_in)["target_modules"].get<std::vector<std::string>>();
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, (std::vector<std::string>{"q", "v"}));

  tree.apply_overrides({"lora.enabled=false", "train.lr=1e-3"});
  run(config::resolve(tree), dir.file("full"));
  const auto trained = tensors_of(dir.file("full") + "/final/model/model.safetensors");
  const auto base = tensors_of(folder + "/model.safetensors");
  ASSERT_TRUE(trained.count("encoder.block.0.layer.0.SelfAttention.q.weight"));
  EXPECT_GT(max_abs_diff(base, trained), 0.0) << "full fine-tuning changed the weights";
  const auto reloaded = models::load_language_model(dir.file("full") + "/final/model", lire::testing::cpu_load("fp32"));
  EXPECT_EQ(reloaded.family(), "t5");
}

// ------------------------------------------------------------------ exactness

// An interrupted run (the newest checkpoint and everything after it lost) and
// an uninterrupted one end with bitwise equal weights: data order, epoch
// boundaries, response subsets, LoRA dropout's random stream, AdamW moments.
void check_resume(const std::vector<std::string>& extra) {
  TempDir dir("lire_resume");
  const std::string straight = dir.file("straight"), resumed = dir.file("resumed");
  std::vector<std::string> o = {"train.max_steps=8", "output.save_every=3", "train.batch_size=4",
                                "train.grad_accum=2", "data.max_responses=3", "train.lr_schedule=cosine",
                                "train.warmup_steps=2", "eval.every=4"};
  o.insert(o.end(), extra.begin(), extra.end());
  // 120 lists: one epoch is 15 steps of 8, so make epochs short to cross them.
  TempDir data("lire_resume_data");
  {
    std::ifstream in(kData + "/train.jsonl");
    std::ofstream out(data.file("train.jsonl"));
    std::string line;
    for (int i = 0; i < 20 && std::getline(in, line); ++i) out << line << "\n";
  }
  o.push_back("data.train=" + data.file("train.jsonl"));
  const auto cfg = make_config(o);
  run(cfg, straight);

  // The interrupted run: the same run killed after its step-6 checkpoint
  // (everything written after it lost), then resumed.
  fs::copy(straight, resumed, fs::copy_options::recursive);
  fs::remove_all(resumed + "/final");
  fs::remove_all(checkpoint_path(resumed, 8));
  ASSERT_EQ(latest_checkpoint(resumed), checkpoint_path(resumed, 6));
  {
    std::ofstream cut(resumed + "/metrics.jsonl", std::ios::app);
    cut << "{\"step\": 7, \"train/lo";  // a line cut by the kill
  }
  // A resume that fails (an unreadable optimizer state) leaves run.json's
  // resumes as they were; then the checkpoint mended, the resume that works.
  {
    const std::string optimizer = checkpoint_path(resumed, 6) + "/optimizer.pt";
    const auto size = fs::file_size(optimizer);
    fs::copy_file(optimizer, dir.file("optimizer.pt"));
    fs::resize_file(optimizer, size / 2);
    EXPECT_THROW(run(cfg, resumed, /*resume=*/true), lire::Error);
    std::ifstream run_json(resumed + "/run.json");
    EXPECT_EQ(json::parse(run_json)["resumes"].size(), 0u);
    fs::copy_file(dir.file("optimizer.pt"), optimizer, fs::copy_options::overwrite_existing);
  }
  run(cfg, resumed, /*resume=*/true);

  const auto a = final_weights(straight), b = final_weights(resumed);
  EXPECT_TRUE(bitwise_equal(a, b)) << "max |diff| " << max_abs_diff(a, b);
  // Metrics: the same lines, none duplicated; the losses are bitwise equal.
  const auto ma = read_metrics(straight), mb = read_metrics(resumed);
  ASSERT_EQ(ma.size(), mb.size());
  for (std::size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i]["step"], mb[i]["step"]) << i;
    if (ma[i].contains("train/loss")) {
      EXPECT_EQ(ma[i]["train/loss"], mb[i]["train/loss"]) << i;
    }
    if (ma[i].contains("eval/loss")) {
      EXPECT_EQ(ma[i]["eval/loss"], mb[i]["eval/loss"]) << i;
    }
  }
  std::ifstream run_json(resumed + "/run.json");
  EXPECT_EQ(json::parse(run_json)["resumes"].size(), 1u);
}

TEST(Trainer, ResumeIsExactWithLora) { check_resume({"lora.dropout=0.1", "loss.name=lire"}); }

TEST(Trainer, ResumeIsExactWithFullFineTuningAndCachedReference) {
  check_resume({"lora.enabled=false", "loss.name=dpo", "train.lr=1e-3"});
}

// grad_accum 2 x batch 4 takes the same steps as grad_accum 1 x batch 8: the
// step's loss is the RAX loss of all 8 lists (numerators summed, one
// denominator), not a mean of two micro-batch means. Ragged lists make the
// micro-batches' pair counts differ, which a mean of means would get wrong.
TEST(Trainer, GradientAccumulationEqualsTheLargerBatch) {
  TempDir dir("lire_accum");
  const std::string data = ragged_lists(dir, 48);
  const std::vector<std::string> common = {"data.train=" + data, "model.dtype=fp64", "loss.name=lipo",
                                           "train.max_steps=3", "eval.at_start=false", "train.max_grad_norm=0"};
  auto o1 = common, o2 = common;
  o1.insert(o1.end(), {"train.batch_size=4", "train.grad_accum=2"});
  o2.insert(o2.end(), {"train.batch_size=8", "train.grad_accum=1"});
  run(make_config(o1), dir.file("accum"));
  run(make_config(o2), dir.file("batch"));
  const auto a = final_weights(dir.file("accum")), b = final_weights(dir.file("batch"));
  EXPECT_LT(max_abs_diff(a, b), 1e-12);
  // The step losses agree as well.
  const auto ma = read_metrics(dir.file("accum")), mb = read_metrics(dir.file("batch"));
  ASSERT_EQ(ma.size(), mb.size());
  for (std::size_t i = 0; i < ma.size(); ++i)
    if (ma[i].contains("train/loss")) {
      EXPECT_NEAR(ma[i]["train/loss"].get<double>(), mb[i]["train/loss"].get<double>(), 1e-12);
    }
}

// The reference modes compute the same reference policy in different ways:
// cached once (auto), per step with the adapters off, from ref_logps in the
// data; and for full fine-tuning, a frozen copy per step or cached once.
TEST(Trainer, ReferenceModesAgree) {
  TempDir dir("lire_ref");
  // Data annotated with ref_logps of the base model, computed here directly.
  const std::string annotated = dir.file("annotated.jsonl");
  {
    auto model = models::load_causal_lm(kModel, {"fp64", "cpu", ""});
    data::FolderTokenizer tok(kModel, 512, 1);
    std::ifstream in(kData + "/train.jsonl");
    std::ofstream out(annotated);
    std::string line;
    for (int i = 0; i < 32 && std::getline(in, line); ++i) {
      auto list = data::parse_candidate_list(json::parse(line), "x", i + 1);
      const auto t = tok.tokenize(list, {});
      torch::NoGradGuard no_grad;
      const auto lp = models::list_logprobs(*model, t.prompt_ids, t.response_ids);
      auto rec = json::parse(line);
      rec["ref_logps"] = std::vector<double>(lp.sums.data_ptr<double>(), lp.sums.data_ptr<double>() + lp.sums.numel());
      out << rec.dump() << "\n";
    }
  }
  const std::vector<std::string> common = {"data.train=" + annotated, "model.dtype=fp64", "loss.name=dpo",
                                           "train.max_steps=3", "eval.at_start=false", "eval.max_lists=8"};
  const auto with = [&](std::vector<std::string> extra) {
    auto o = common;
    o.insert(o.end(), extra.begin(), extra.end());
    return make_config(o);
  };
  run(with({"train.reference=auto"}), dir.file("auto"));
  run(with({"train.reference=adapter-off"}), dir.file("adapter_off"));
  run(with({"train.reference=precomputed", "data.eval=null"}), dir.file("precomputed"));
  const auto cached = final_weights(dir.file("auto"));
  EXPECT_LT(max_abs_diff(cached, final_weights(dir.file("adapter_off"))), 1e-12);
  EXPECT_LT(max_abs_diff(cached, final_weights(dir.file("precomputed"))), 1e-12);
  EXPECT_TRUE(fs::exists(dir.file("auto") + "/reference/train.safetensors"));
  // Without a reference the run differs (the check above could not pass by accident).
  run(with({"train.reference=none"}), dir.file("none"));
  EXPECT_GT(max_abs_diff(cached, final_weights(dir.file("none"))), 1e-6);

  run(with({"lora.enabled=false", "train.reference=auto", "train.lr=1e-4"}), dir.file("full_auto"));
  run(with({"lora.enabled=false", "train.reference=frozen-copy", "train.lr=1e-4"}), dir.file("full_copy"));
  EXPECT_LT(max_abs_diff(final_weights(dir.file("full_auto")), final_weights(dir.file("full_copy"))), 1e-12);
}

// ------------------------------------------------------------------ failures

TEST(Trainer, NonFiniteStepsAreSkippedThenStopTheRun) {
  TempDir dir("lire_nan");
  const std::string out = dir.file("run");
  const auto cfg = make_config({"train.lr=1e30", "train.max_steps=20", "train.max_nonfinite_steps=3",
                                "train.max_grad_norm=0", "output.save_every=1", "eval.at_start=false"});
  const std::string message = lire::testing::error_message<Error>([&] { run(cfg, out); });
  EXPECT_THAT(message, HasSubstr("3 non-finite steps in a row"));
  EXPECT_THAT(message, HasSubstr("Last checkpoint: "));
  // Every checkpoint left behind is complete and loadable.
  const auto ckpts = list_checkpoints(out);
  ASSERT_FALSE(ckpts.empty());
  for (const auto& [step, path] : ckpts) {
    std::ifstream in(path + "/trainer_state.json");
    EXPECT_EQ(TrainerState::from_json(json::parse(in), path).step, step);
    EXPECT_FALSE(tensors_of(path + "/adapter/adapter_model.safetensors").empty());
  }
  for (const auto& entry : fs::directory_iterator(out + "/checkpoints"))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  EXPECT_FALSE(fs::exists(out + "/final"));
}

TEST(Trainer, RunDirectoryRules) {
  TempDir dir("lire_rundir");
  const std::string out = dir.file("run");
  const auto cfg = make_config({"train.max_steps=1", "eval.at_start=false", "eval.max_lists=4"});
  run(cfg, out);
  // Not empty and no --resume: refused, nothing touched.
  const auto before = fs::last_write_time(out + "/metrics.jsonl");
  EXPECT_THAT(lire::testing::error_message<ConfigError>([&] { run(cfg, out); }),
              HasSubstr("is not empty; pass --resume"));
  EXPECT_EQ(fs::last_write_time(out + "/metrics.jsonl"), before);
  // --resume of a finished run: nothing more to train, the final outputs are rewritten.
  EXPECT_EQ(run(cfg, out, true).steps, 1);
  // --resume in an empty folder starts fresh.
  EXPECT_EQ(run(cfg, dir.file("fresh"), true).steps, 1);
  // --resume-from a folder that is not a checkpoint.
  TrainJob job;
  job.config = cfg;
  job.output = dir.file("other");
  job.resume_from = dir.path();
  EXPECT_THAT(lire::testing::error_message<ConfigError>([&] { train(job); }), HasSubstr("not a complete checkpoint"));
}

TEST(Trainer, MalformedDataNamesFileAndLine) {
  TempDir dir("lire_baddata");
  const std::string bad = dir.file("bad.jsonl");
  {
    std::ifstream in(kData + "/train.jsonl");
    std::ofstream out(bad);
    std::string line;
    for (int i = 0; i < 10 && std::getline(in, line); ++i) out << (i == 4 ? "{\"prompt\": \"x\", " : line) << "\n";
  }
  const auto fail = make_config({"data.train=" + bad, "train.max_steps=1"});
  EXPECT_THAT(lire::testing::error_message<DataError>([&] { run(fail, dir.file("a")); }), HasSubstr("bad.jsonl:5"));
  EXPECT_FALSE(fs::exists(dir.file("a") + "/final"));
  // on_error: skip trains on the other nine.
  const auto skip = make_config({"data.train=" + bad, "train.max_steps=1", "data.on_error=skip", "train.batch_size=9",
                                 "eval.at_start=false"});
  run(skip, dir.file("b"));
  std::ifstream in(latest_checkpoint(dir.file("b")) + "/trainer_state.json");
  EXPECT_EQ(json::parse(in)["lists_seen"], 9);
  // The failed run left only run.json and config.yaml: the corrected command
  // runs in that folder without --resume; any other file makes it a used folder.
  EXPECT_TRUE(fs::exists(dir.file("a") + "/run.json"));
  EXPECT_TRUE(fs::exists(dir.file("a") + "/config.yaml"));
  fs::create_directories(dir.file("c"));
  fs::copy(dir.file("a"), dir.file("c"));
  std::ofstream(dir.file("c") + "/notes.txt") << "mine\n";
  run(skip, dir.file("a"));
  EXPECT_TRUE(fs::exists(dir.file("a") + "/final"));
  EXPECT_THAT(lire::testing::error_message<ConfigError>([&] { run(skip, dir.file("c")); }),
              HasSubstr("is not empty; pass --resume"));
}

TEST(Trainer, PromptLeavingNoRoomIsReportedWithItsLine) {
  TempDir dir("lire_room");
  const auto cfg = make_config({"data.max_length=3", "train.max_steps=1"});
  EXPECT_THAT(lire::testing::error_message<DataError>([&] { run(cfg, dir.file("run")); }),
              HasSubstr("train.jsonl:1: the prompt has"));
}

}  // namespace
}  // namespace lire::train

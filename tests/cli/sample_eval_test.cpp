// lire-sample's and lire-eval's jobs (run_sample, run_eval) end to end on the
// tiny HF fixtures. Expected values come from outside the code under test: HF
// transformers' greedy tokens, log-probs recomputed by the scoring path
// (models::batch_logprobs) rather than the generation loop, rewards recomputed
// by hand from the rule, win rates counted from the examples.
#include <filesystem>
#include <fstream>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/cli/eval_command.h"
#include "lire/cli/sample_command.h"
#include "lire/config/config.h"
#include "lire/core/error.h"
#include "lire/data/tokenizer.h"
#include "lire/data/candidate_list.h"
#include "lire/models/sequence_logprobs.h"
#include "lire/rewards/sequence_classifier.h"
#include "lire/models/weights.h"
#include "support/error_message.h"
#include "support/jsonl.h"
#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kHf = fs::path(LIRE_TEST_FIXTURES) / "hf";
const std::string kPolicy = (kHf / "llama_tiny").string();

using lire::testing::read_jsonl;
using lire::testing::slurp;
const auto write_lines = lire::testing::write_jsonl;

lire::config::Config make_config(std::vector<std::string> overrides) {
  overrides.push_back("model.dtype=fp32");
  overrides.push_back("runtime.device=cpu");
  lire::config::ConfigTree tree;
  tree.apply_overrides(overrides);
  return lire::config::resolve(tree);
}

// Three text prompts: a bare prompt, a list with a human flag, a pair.
std::vector<json> text_prompts() {
  return {json{{"id", "p0"}, {"prompt", "Hello there"}, {"reference", "Hi"}},
          json{{"id", "p1"},
               {"prompt", "What is two plus two?"},
               {"responses", {"Four.", "Five."}},
               {"human", {true, false}},
               {"rewards", {1.0, 0.0}}},
          json{{"id", "p2"}, {"prompt", "Tell me a story"}, {"chosen", "Once upon a time"}, {"rejected", "No"}}};
}

lire::cli::SampleArgs sample_args(const lire::testing::TempDir& dir) {
  lire::cli::SampleArgs args;
  args.data = dir.file("prompts.jsonl");
  args.output = dir.file("pool.jsonl");
  args.policy = kPolicy;
  args.progress = false;
  return args;
}

// ------------------------------------------------------------------ lire-sample

TEST(SampleCommand, GreedyResponsesAreHfGreedyTokens) {
  lire::testing::TempDir dir("sample");
  std::ifstream in(kHf / "llama_tiny" / "reference.json");
  const auto greedy = json::parse(in)["greedy"];
  write_lines(dir.file("prompts.jsonl"), {json{{"prompt_ids", greedy["prompt"]}}});
  auto args = sample_args(dir);
  ASSERT_EQ(lire::cli::run_sample(args, make_config({"sample.strategy=greedy", "sample.max_new_tokens=10"})), 0);
  const auto out = read_jsonl(args.output);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["responses_ids"][0], greedy["new_tokens_hf_f64_cache"]);
  EXPECT_EQ(out[0]["finish"][0], "length");
  EXPECT_EQ(out[0]["prompt_ids"], greedy["prompt"]);
  EXPECT_FALSE(out[0].contains("prompt"));  // pre-tokenized in, pre-tokenized out
}

TEST(SampleCommand, PoolsHoldKResponsesWithIdsAndLogprobsTheScoringPathAgreesWith) {
  lire::testing::TempDir dir("sample");
  write_lines(dir.file("prompts.jsonl"), text_prompts());
  auto args = sample_args(dir);
  const auto cfg = make_config({"sample.num_samples=3", "sample.max_new_tokens=12", "sample.temperature=1"});
  ASSERT_EQ(lire::cli::run_sample(args, cfg), 0);
  const auto out = read_jsonl(args.output);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(fs::exists(args.output + ".partial"));

  const auto tokenizer = lire::data::Tokenizer::from_folder(kPolicy);
  auto model = lire::models::load_causal_lm(kPolicy, {"fp32", "cpu", ""});
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& r = out[i];
    ASSERT_EQ(r["responses"].size(), 3u) << i;
    ASSERT_EQ(r["responses_ids"].size(), 3u);
    EXPECT_EQ(r["id"], "p" + std::to_string(i));
    EXPECT_EQ(r["prompt"], text_prompts()[i]["prompt"]);
    // The input's candidates are gone, its other fields stay.
    for (const char* gone : {"chosen", "rejected", "rewards", "human"}) EXPECT_FALSE(r.contains(gone)) << gone;
    if (i == 0) {
      EXPECT_EQ(r["reference"], "Hi");
    }
    // Prompt as the data rule encodes it: BOS + the text.
    std::vector<int64_t> prompt = {tokenizer.bos_id()};
    for (auto t : tokenizer.encode(r["prompt"].get<std::string>())) prompt.push_back(t);
    std::vector<std::vector<int64_t>> responses;
    for (std::size_t k = 0; k < 3; ++k) {
      auto ids = r["responses_ids"][k].get<std::vector<int64_t>>();
      const std::string finish = r["finish"][k];
      // EOS ends the ids exactly when the response ended by EOS; the text is their decoding.
      EXPECT_EQ(!ids.empty() && ids.back() == tokenizer.eos_id(), finish == "eos");
      std::vector<int64_t> no_eos = ids;
      if (finish == "eos") no_eos.pop_back();
      EXPECT_EQ(r["responses"][k], tokenizer.decode(no_eos));
      if (finish == "length") {
        EXPECT_EQ(ids.size(), 12u);
      }
      responses.push_back(ids);
    }
    const auto lp = lire::models::batch_logprobs(*model, {{prompt, responses}}).logps.to(torch::kFloat64);
    for (std::size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(r["sample_logps"][k].get<double>(), lp[0][k].item<double>(), 1e-4) << i << "," << k;
  }
}

TEST(SampleCommand, SameSeedSamePoolAtAnyBatchSizeAndSeedsMatter) {
  lire::testing::TempDir dir("sample");
  write_lines(dir.file("prompts.jsonl"), text_prompts());
  auto args = sample_args(dir);
  const std::vector<std::string> base = {"sample.num_samples=2", "sample.max_new_tokens=8", "sample.top_k=40",
                                         "sample.temperature=0.8"};
  auto with = [&](std::vector<std::string> extra) {
    auto o = base;
    o.insert(o.end(), extra.begin(), extra.end());
    return make_config(o);
  };
  ASSERT_EQ(lire::cli::run_sample(args, with({"sample.batch_prompts=1"})), 0);
  const auto one = read_jsonl(args.output);
  ASSERT_EQ(lire::cli::run_sample(args, with({"sample.batch_prompts=3"})), 0);
  const auto three = read_jsonl(args.output);
  ASSERT_EQ(three.size(), one.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(three[i]["responses_ids"], one[i]["responses_ids"]) << i;
    EXPECT_EQ(three[i]["responses"], one[i]["responses"]) << i;
    // Log-probs agree up to float32 differences of the batched logits.
    for (std::size_t k = 0; k < 2; ++k)
      EXPECT_NEAR(three[i]["sample_logps"][k].get<double>(), one[i]["sample_logps"][k].get<double>(), 1e-4);
  }
  ASSERT_EQ(lire::cli::run_sample(args, with({"sample.batch_prompts=3", "sample.seed=99"})), 0);
  const auto other = read_jsonl(args.output);
  bool differs = false;
  for (std::size_t i = 0; i < one.size(); ++i) differs |= other[i]["responses_ids"] != one[i]["responses_ids"];
  EXPECT_TRUE(differs);
}

TEST(SampleCommand, ResumeContinuesAnInterruptedRunToTheSameFile) {
  lire::testing::TempDir dir("sample");
  write_lines(dir.file("prompts.jsonl"), text_prompts());
  auto args = sample_args(dir);
  const auto cfg = make_config({"sample.num_samples=2", "sample.max_new_tokens=6", "sample.batch_prompts=1"});
  ASSERT_EQ(lire::cli::run_sample(args, cfg), 0);
  const std::string whole = slurp(args.output);
  // An interrupted run: the first record and half of the second in the partial file.
  const auto second = whole.find('\n') + 1;
  {
    std::ofstream partial(args.output + ".partial", std::ios::binary);
    partial << whole.substr(0, second + (whole.find('\n', second) - second) / 2);
  }
  fs::remove(args.output);
  args.resume = true;
  ASSERT_EQ(lire::cli::run_sample(args, cfg), 0);
  EXPECT_EQ(slurp(args.output), whole);
}

TEST(SampleCommand, KeepHumanKeepsTheHumanResponsesFirstAndScoresTheWholePool) {
  lire::testing::TempDir dir("sample");
  write_lines(dir.file("prompts.jsonl"), text_prompts());
  auto args = sample_args(dir);
  args.rewards = {"short"};
  const auto cfg = make_config({"sample.num_samples=2", "sample.max_new_tokens=6", "sample.keep_human=true",
                                "rewards.short={type: length, max_chars: 10}"});
  ASSERT_EQ(lire::cli::run_sample(args, cfg), 0);
  const auto out = read_jsonl(args.output);
  const auto tokenizer = lire::data::Tokenizer::from_folder(kPolicy);
  // p0 has no responses; p1 keeps the one flagged human; p2 keeps both of its pair.
  const std::vector<std::vector<std::string>> humans = {{}, {"Four."}, {"Once upon a time", "No"}};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& r = out[i];
    const std::size_t h = humans[i].size();
    ASSERT_EQ(r["responses"].size(), h + 2) << i;
    for (std::size_t k = 0; k < h + 2; ++k) {
      EXPECT_EQ(r["human"][k].get<bool>(), k < h);
      EXPECT_EQ(r["sample_logps"][k].is_null(), k < h);
      if (k < h) {
        EXPECT_EQ(r["responses"][k], humans[i][k]);
        EXPECT_EQ(r["finish"][k], "human");
        auto ids = tokenizer.encode(humans[i][k]);
        ids.push_back(tokenizer.eos_id());
        EXPECT_EQ(r["responses_ids"][k].get<std::vector<int64_t>>(), ids);
      }
      // The length rule, counted here in UTF-8 code points.
      const std::string text = r["responses"][k];
      std::size_t chars = 0;
      for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
      EXPECT_EQ(r["rewards"][k].get<double>(), chars <= 10 ? 1.0 : 0.0) << text;
    }
    EXPECT_FALSE(r.contains("rewards_short"));  // one source: "rewards" only
  }
}

// Pre-tokenized human responses keep their ids, and their text is the ids
// decoded by the policy's tokenizer (as a sample's text is), not "".
TEST(SampleCommand, KeepHumanDecodesPreTokenizedHumanResponses) {
  lire::testing::TempDir dir("sample");
  const auto tokenizer = lire::data::Tokenizer::from_folder(kPolicy);
  const std::vector<std::vector<int64_t>> human = {tokenizer.encode("Once upon a time"), tokenizer.encode("No")};
  write_lines(dir.file("prompts.jsonl"),
              {json{{"id", "q0"}, {"prompt_ids", tokenizer.encode("Tell me a story")}, {"responses_ids", human}}});
  auto args = sample_args(dir);
  ASSERT_EQ(lire::cli::run_sample(args, make_config({"sample.num_samples=2", "sample.max_new_tokens=6",
                                                      "sample.keep_human=true"})),
            0);
  const auto r = read_jsonl(args.output).at(0);
  ASSERT_EQ(r["responses"].size(), 4u);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_TRUE(r["human"][k].get<bool>());
    auto ids = r["responses_ids"][k].get<std::vector<int64_t>>();
    ASSERT_GE(ids.size(), human[k].size());
    EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(human[k].size())),
              human[k]);
    EXPECT_EQ(r["responses"][k], k == 0 ? "Once upon a time" : "No");
  }
  for (std::size_t k = 2; k < 4; ++k)
    EXPECT_EQ(r["responses"][k], tokenizer.decode(r["responses_ids"][k].get<std::vector<int64_t>>()));
}

TEST(SampleCommand, StopStringsEndAResponseOnceItsTextContainsThem) {
  lire::testing::TempDir dir("sample");
  write_lines(dir.file("prompts.jsonl"), {json{{"prompt", "Tell me a story"}}});
  auto args = sample_args(dir);
  ASSERT_EQ(lire::cli::run_sample(args, make_config({"sample.strategy=greedy", "sample.max_new_tokens=16"})), 0);
  const auto free_run = read_jsonl(args.output)[0];
  const std::string text = free_run["responses"][0];
  ASSERT_GE(text.size(), 8u);
  // A stop string from the middle of the free-running text.
  std::size_t at = 4;
  while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
  const std::string stop = text.substr(at, 2);
  args.output = dir.file("stopped.jsonl");
  ASSERT_EQ(lire::cli::run_sample(args, make_config({"sample.strategy=greedy", "sample.max_new_tokens=16",
                                                     "sample.stop=[\"" + stop + "\"]"})),
            0);
  const auto stopped = read_jsonl(args.output)[0];
  const std::string cut = stopped["responses"][0];
  EXPECT_EQ(stopped["finish"][0], "stop");
  EXPECT_NE(cut.find(stop), std::string::npos);      // the stop string stays in the response
  EXPECT_EQ(text.substr(0, cut.size()), cut);          // a prefix of the free run
  EXPECT_LT(cut.size(), text.size());
  // One token fewer would not contain it.
  auto ids = stopped["responses_ids"][0].get<std::vector<int64_t>>();
  ids.pop_back();
  EXPECT_EQ(lire::data::Tokenizer::from_folder(kPolicy).decode(ids).find(stop), std::string::npos);
}

TEST(SampleCommand, BadInputFailsWithFileAndLineAndWritesNothing) {
  lire::testing::TempDir dir("sample");
  {
    std::ofstream f(dir.file("prompts.jsonl"));
    f << json{{"prompt", "ok"}}.dump() << "\n{\"prompt\": 3}\n";
  }
  auto args = sample_args(dir);
  EXPECT_THAT(lire::testing::error_message<lire::DataError>(
                  [&] { lire::cli::run_sample(args, make_config({"sample.max_new_tokens=4"})); }),
              HasSubstr("prompts.jsonl:2"));
  EXPECT_FALSE(fs::exists(args.output));
  // data.on_error: skip leaves the malformed record out and samples the rest.
  ASSERT_EQ(lire::cli::run_sample(args, make_config({"sample.max_new_tokens=4", "data.on_error=skip"})), 0);
  const auto kept = read_jsonl(args.output);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]["prompt"], "ok");
  fs::remove(args.output);
  args.data = args.output;
  EXPECT_THAT(lire::testing::error_message<lire::Error>([&] { lire::cli::run_sample(args, make_config({})); }),
              HasSubstr("--output must differ from --data"));
  args.data = dir.file("prompts.jsonl");
  args.rewards = {"nope"};
  EXPECT_THAT(lire::testing::error_message<lire::Error>([&] { lire::cli::run_sample(args, make_config({})); }),
              HasSubstr("'nope' is not a reward source"));
}

// -------------------------------------------------------------------- lire-eval

lire::cli::EvalArgs eval_args(const lire::testing::TempDir& dir) {
  lire::cli::EvalArgs args;
  args.data = dir.file("test.jsonl");
  args.output = dir.file("report");
  args.progress = false;
  return args;
}

json report_of(const lire::cli::EvalArgs& args) {
  std::ifstream in(args.output + "/report.json");
  return json::parse(in);
}

// Test lists whose baseline is picked by each rule, and policy responses of known lengths.
void write_eval_files(const lire::testing::TempDir& dir) {
  write_lines(dir.file("test.jsonl"),
              {json{{"id", 1}, {"prompt", "a"}, {"responses", {"xx", "yyyyyy"}}, {"human", {false, true}}},
               json{{"id", 2}, {"prompt", "b"}, {"responses", {"zzzzzzzz", "w"}}, {"rewards", {0.0, 1.0}}},
               json{{"id", 3}, {"prompt", "c"}, {"responses", {"vvvv", "u"}}, {"ranks", {2, 1}}},
               json{{"id", 4}, {"prompt", "d"}, {"chosen", "ttt"}, {"rejected", "ssssssss"}}});
  // Policy responses (lire-sample's shape: human responses flagged, skipped).
  write_lines(dir.file("policy.jsonl"),
              {json{{"id", 1}, {"prompt", "a"}, {"responses", {"human one", "pppp"}}, {"human", {true, false}}},
               json{{"id", 2}, {"prompt", "b"}, {"responses", {"pp"}}},
               json{{"id", 3}, {"prompt", "c"}, {"responses", {"p"}}},
               json{{"id", 4}, {"prompt", "d"}, {"responses", {"ppp"}}}});
}

TEST(EvalCommand, WinRatesAgainstTheDataBaselineCountedByHand) {
  lire::testing::TempDir dir("eval");
  write_eval_files(dir);
  auto args = eval_args(dir);
  args.responses = dir.file("policy.jsonl");
  // "len": the number of characters (a "longer is better" reward, via an ensemble of windows);
  // "short": 1 when at most 3 characters.
  const auto cfg = make_config({"rewards.short={type: length, max_chars: 3}", "eval.bootstrap=200"});
  ASSERT_EQ(lire::cli::run_eval(args, cfg), 0);
  const auto report = report_of(args);
  // Baselines: p1 the human one "yyyyyy"; p2 the best reward "w"; p3 rank 1 "u"; p4 chosen "ttt".
  // Policy: "pppp", "pp", "p", "ppp" -> short: 0,1,1,1; baseline short: 0,1,1,1 -> all ties.
  ASSERT_EQ(report["sources"].size(), 1u);
  const auto& s = report["sources"][0];
  EXPECT_EQ(s["name"], "short");
  EXPECT_EQ(s["kind"], "rewards");
  EXPECT_EQ(s["ties"], 4);
  EXPECT_DOUBLE_EQ(s["win_rate"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(s["mean_reward"].get<double>(), 0.75);
  EXPECT_TRUE(s["negative_flip_rate"].is_null());  // the baseline is the data, not a model
  const auto examples = read_jsonl(args.output + "/examples.jsonl");
  ASSERT_EQ(examples.size(), 4u);
  const std::vector<std::string> baselines = {"yyyyyy", "w", "u", "ttt"}, policies = {"pppp", "pp", "p", "ppp"};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(examples[i]["baseline"], baselines[i]);
    EXPECT_EQ(examples[i]["policy"], policies[i]);
    EXPECT_EQ(examples[i]["outcome"]["short"], "tie");
  }
  EXPECT_THAT(slurp(args.output + "/report.md"), HasSubstr("| short | 0.7500 | 0.7500 | 50.0% |"));
  // Length statistics of the policy's characters: 4, 2, 1, 3.
  EXPECT_DOUBLE_EQ(report["length"]["policy_chars"]["mean"].get<double>(), 2.5);
  EXPECT_EQ(report["length"]["policy_chars"]["max"], 4);
}

TEST(EvalCommand, AFileBaselineGivesNegativeFlipsAndWinsAgainstIt) {
  lire::testing::TempDir dir("eval");
  write_eval_files(dir);
  write_lines(dir.file("base.jsonl"), {json{{"id", 1}, {"prompt", "a"}, {"responses", {"b"}}},
                                       json{{"id", 2}, {"prompt", "b"}, {"responses", {"bbbbb"}}},
                                       json{{"id", 3}, {"prompt", "c"}, {"responses", {"bb"}}},
                                       json{{"id", 4}, {"prompt", "d"}, {"responses", {"bbb"}}}});
  auto args = eval_args(dir);
  args.responses = dir.file("policy.jsonl");
  args.baseline = dir.file("base.jsonl");
  args.rewards = {"short"};
  const auto cfg = make_config({"rewards.short={type: length, max_chars: 2}", "rewards.other={type: length}",
                                "eval.bootstrap=500", "runtime.seed=3"});
  ASSERT_EQ(lire::cli::run_eval(args, cfg), 0);
  const auto report = report_of(args);
  ASSERT_EQ(report["sources"].size(), 1u);  // only the named source
  // policy short: "pppp" 0, "pp" 1, "p" 1, "ppp" 0; baseline: "b" 1, "bbbbb" 0, "bb" 1, "bbb" 0.
  const auto& s = report["sources"][0];
  EXPECT_EQ(s["wins"], 1);
  EXPECT_EQ(s["losses"], 1);
  EXPECT_EQ(s["ties"], 2);
  EXPECT_DOUBLE_EQ(s["negative_flip_rate"].get<double>(), 0.25);
  EXPECT_LE(s["ci_lower"].get<double>(), 0.5);
  EXPECT_GE(s["ci_upper"].get<double>(), 0.5);
  EXPECT_EQ(report["baseline"]["kind"], "file");
  EXPECT_EQ(report["bootstrap"]["resamples"], 500);
  // Same seed, same report; the folder is replaced only with --overwrite.
  EXPECT_THAT(lire::testing::error_message<lire::Error>([&] { lire::cli::run_eval(args, cfg); }),
              HasSubstr("pass --overwrite"));
  args.overwrite = true;
  const std::string first = slurp(args.output + "/report.json");
  ASSERT_EQ(lire::cli::run_eval(args, cfg), 0);
  EXPECT_EQ(slurp(args.output + "/report.json"), first);
}

TEST(EvalCommand, GeneratedResponsesScoredByARewardModelWithKlToTheSameModelNearZero) {
  lire::testing::TempDir dir("eval");
  write_lines(dir.file("test.jsonl"), text_prompts());
  std::vector<json> base;
  for (const auto& p : text_prompts()) base.push_back(json{{"prompt", p["prompt"]}, {"responses", {"a"}}});
  write_lines(dir.file("base.jsonl"), base);
  // The reward-model fixture has no tokenizer; it shares llama_tiny's vocabulary.
  const fs::path rm = fs::path(dir.path()) / "rm";
  fs::create_directories(rm);
  for (const auto& f : fs::directory_iterator(kHf / "llama_rm_tiny")) fs::copy_file(f.path(), rm / f.path().filename());
  for (const char* f : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(kHf / "llama_tiny" / f, rm / f);
  auto args = eval_args(dir);
  args.policy = kPolicy;
  args.reference = kPolicy;
  args.baseline = dir.file("base.jsonl");
  args.reward_models = {"rm=" + rm.string()};
  ASSERT_EQ(lire::cli::run_eval(args, make_config({"sample.max_new_tokens=8", "sample.seed=5"})), 0);
  const auto report = report_of(args);
  EXPECT_NEAR(report["kl"]["mean"].get<double>(), 0.0, 1e-4);
  EXPECT_EQ(report["kl"]["samples"], 3);
  const auto examples = read_jsonl(args.output + "/examples.jsonl");
  ASSERT_EQ(examples.size(), 3u);
  // Rewards recomputed here with the reward model on (prompt, response) texts.
  lire::config::RewardSourceOptions o;
  o.name = "rm";
  o.type = "hf-seq-cls";
  o.path = rm.string();
  lire::config::RewardsOptions ro;
  ro.sources = {o};
  lire::rewards::RewardSet direct(ro, lire::rewards::sequence_classifier_factory({"fp32", "cpu", ""}, {}, 4));
  std::vector<lire::data::CandidateList> lists;
  for (std::size_t i = 0; i < 3; ++i) {
    lire::data::CandidateList l;
    l.prompt = text_prompts()[i]["prompt"];
    l.responses = {examples[i]["policy"].get<std::string>(), examples[i]["baseline"].get<std::string>()};
    l.file = "mem";
    lists.push_back(l);
    EXPECT_NEAR(examples[i]["policy_logp"].get<double>(), examples[i]["reference_logp"].get<double>(), 1e-4);
  }
  const auto scores = direct.score(lists)["rm"];
  std::size_t wins = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(examples[i]["rewards"]["rm"]["policy"].get<double>(), scores[i][0], 1e-6);
    EXPECT_NEAR(examples[i]["rewards"]["rm"]["baseline"].get<double>(), scores[i][1], 1e-6);
    wins += scores[i][0] > scores[i][1];
  }
  EXPECT_EQ(report["sources"][0]["wins"].get<std::size_t>(), wins);
  EXPECT_EQ(report["sample"]["max_new_tokens"], 8);
}

TEST(EvalCommand, ErrorsNameTheProblemAndLeaveNoReport) {
  lire::testing::TempDir dir("eval");
  write_eval_files(dir);
  auto args = eval_args(dir);
  const auto cfg = make_config({"rewards.short={type: length, max_chars: 3}"});
  // Neither or both of --policy and --responses.
  EXPECT_THAT(lire::testing::error_message<lire::Error>([&] { lire::cli::run_eval(args, cfg); }),
              HasSubstr("give --policy DIR"));
  args.policy = kPolicy;
  args.responses = dir.file("policy.jsonl");
  EXPECT_THAT(lire::testing::error_message<lire::Error>([&] { lire::cli::run_eval(args, cfg); }), HasSubstr("not both"));
  args.responses.clear();
  EXPECT_THAT(lire::testing::error_message<lire::Error>(
                  [&] { lire::cli::run_eval(args, make_config({"rewards.short={type: length}", "sample.num_samples=2"})); }),
              HasSubstr("one response per prompt"));
  EXPECT_THAT(lire::testing::error_message<lire::Error>([&] { lire::cli::run_eval(args, make_config({})); }),
              HasSubstr("no reward source"));
  // Responses out of order; a prompt with no baseline.
  args.policy.clear();
  write_lines(dir.file("shuffled.jsonl"), {json{{"id", 2}, {"prompt", "b"}, {"responses", {"x"}}}});
  args.responses = dir.file("shuffled.jsonl");
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { lire::cli::run_eval(args, cfg); }),
              HasSubstr("shuffled.jsonl:1: id '2' does not match"));
  write_lines(dir.file("prompts.jsonl"), {json{{"prompt", "a"}}});
  args.data = dir.file("prompts.jsonl");
  args.responses = dir.file("policy.jsonl");
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { lire::cli::run_eval(args, cfg); }),
              HasSubstr("prompts.jsonl:1: no baseline response"));
  EXPECT_FALSE(fs::exists(args.output));
}

}  // namespace

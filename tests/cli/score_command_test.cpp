// lire-score's job (run_score) end to end on the tiny HF fixtures: reference
// log-probs and rewards match HF transformers' values, fields are added and
// kept, --overwrite and --resume behave, errors leave no output behind.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lire/cli/score_command.h"
#include "lire/config/config.h"
#include "lire/core/error.h"
#include "support/error_message.h"
#include "support/jsonl.h"
#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kHf = fs::path(LIRE_TEST_FIXTURES) / "hf";

json fixture_json(const std::string& model) {
  std::ifstream in(kHf / model / "reference.json");
  return json::parse(in);
}

// The reward-model fixture has no tokenizer; it shares llama_tiny's vocabulary.
fs::path reward_model_with_tokenizer(const fs::path& dir) {
  const fs::path rm = dir / "rm";
  fs::create_directories(rm);
  for (const auto& f : fs::directory_iterator(kHf / "llama_rm_tiny")) fs::copy_file(f.path(), rm / f.path().filename());
  for (const char* f : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(kHf / "llama_tiny" / f, rm / f);
  return rm;
}

using lire::testing::read_jsonl;

void write_lines(const fs::path& path, const std::vector<json>& records) {
  lire::testing::write_jsonl(path.string(), records);
}

lire::config::Config fp32_cpu() {
  lire::config::ConfigTree tree;
  tree.apply_overrides({"model.dtype=fp32", "runtime.device=cpu"});
  return lire::config::resolve(tree);
}

// Pre-tokenized records built from the fixtures' inputs: prompt = the first
// prompt_len ids, response = the rest (only real tokens).
std::vector<json> fixture_records() {
  const auto ref = fixture_json("llama_tiny");
  const auto ids = ref["inputs"]["ids_right"], mask = ref["inputs"]["mask_right"];
  const auto prompt_len = ref["inputs"]["prompt_len"].get<std::size_t>();
  std::vector<json> records;
  for (std::size_t row = 0; row < ids.size(); ++row) {
    std::vector<int64_t> tokens;
    for (std::size_t t = 0; t < ids[row].size(); ++t)
      if (mask[row][t].get<int>()) tokens.push_back(ids[row][t].get<int64_t>());
    json r = {{"id", "row" + std::to_string(row)},
              {"prompt_ids", std::vector<int64_t>(tokens.begin(), tokens.begin() + prompt_len)},
              {"responses_ids", {std::vector<int64_t>(tokens.begin() + prompt_len, tokens.end())}},
              {"note", "kept as is"}};
    records.push_back(r);
  }
  return records;
}

TEST(ScoreCommand, RefLogpsAndRewardsMatchHfOnPretokenizedRecords) {
  lire::testing::TempDir dir("lire_score");
  write_lines(fs::path(dir.path()) / "in.jsonl", fixture_records());
  lire::cli::ScoreArgs args;
  args.data = (fs::path(dir.path()) / "in.jsonl").string();
  args.output = (fs::path(dir.path()) / "out.jsonl").string();
  args.policy = (kHf / "llama_tiny").string();
  // Pre-tokenized records need no tokenizer: the fixture folder has none.
  args.reward_models = {(kHf / "llama_rm_tiny").string()};
  args.progress = false;
  ASSERT_EQ(lire::cli::run_score(args, fp32_cpu()), 0);
  const auto out = read_jsonl(fs::path(dir.path()) / "out.jsonl");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "out.jsonl.partial"));
  const auto cont = fixture_json("llama_tiny")["continuation_logprob"];
  const auto rm = fixture_json("llama_rm_tiny");
  for (std::size_t row = 0; row < 2; ++row) {
    EXPECT_NEAR(out[row]["ref_logps"][0].get<double>(), cont["sum_hf_f32"][row].get<double>(), 1e-4);
    EXPECT_EQ(out[row]["ref_token_counts"][0].get<int64_t>(),
              static_cast<int64_t>(out[row]["responses_ids"][0].size()));
    // The reward model scored the same sequences as its fixture rows 0 and 1.
    EXPECT_NEAR(out[row]["rewards"][0].get<double>(), rm["score_hf_f32"][row].get<double>(), 1e-5);
    EXPECT_EQ(out[row]["note"], "kept as is");
  }
}

TEST(ScoreCommand, TextRecordsSeveralRewardModelsOverwriteAndErrors) {
  lire::testing::TempDir dir("lire_score");
  const auto rm = reward_model_with_tokenizer(dir.path());
  write_lines(fs::path(dir.path()) / "in.jsonl",
              {{{"prompt", "What is 2+2?"}, {"responses", {"4", "It is four.", "five"}}},
               {{"prompt", "Name a colour."}, {"chosen", "Blue."}, {"rejected", "Seven."}}});
  lire::cli::ScoreArgs args;
  args.data = (fs::path(dir.path()) / "in.jsonl").string();
  args.output = (fs::path(dir.path()) / "out.jsonl").string();
  args.reward_models = {"a=" + rm.string(), "b=" + rm.string()};
  args.batch_size = 1;
  args.progress = false;
  ASSERT_EQ(lire::cli::run_score(args, fp32_cpu()), 0);
  const auto out = read_jsonl(fs::path(dir.path()) / "out.jsonl");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["rewards"].size(), 3u);
  EXPECT_EQ(out[0]["rewards"], out[0]["rewards_a"]);
  EXPECT_EQ(out[0]["rewards_a"], out[0]["rewards_b"]);  // the same model twice
  EXPECT_EQ(out[1]["rewards"].size(), 2u);
  EXPECT_FALSE(out[0].contains("ref_logps"));
  // Different responses get different scores.
  EXPECT_NE(out[0]["rewards"][0].get<double>(), out[0]["rewards"][1].get<double>());

  // Scoring the output again: the fields exist, so only --overwrite may replace them.
  lire::cli::ScoreArgs again = args;
  again.data = args.output;
  again.output = (fs::path(dir.path()) / "again.jsonl").string();
  EXPECT_NE(lire::testing::error_message<lire::DataError>([&] { lire::cli::run_score(again, fp32_cpu()); })
                .find("out.jsonl:1: field 'rewards_a' is already there; pass --overwrite"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(again.output));
  again.overwrite = true;
  ASSERT_EQ(lire::cli::run_score(again, fp32_cpu()), 0);
  EXPECT_EQ(read_jsonl(again.output)[0]["rewards"], out[0]["rewards"]);

  // Malformed input: file:line, and no output.
  write_lines(fs::path(dir.path()) / "bad.jsonl", {{{"prompt", "x"}, {"responses", {"a"}}}, {{"prompt", "y"}, {"responses", 3}}});
  lire::cli::ScoreArgs bad = args;
  bad.data = (fs::path(dir.path()) / "bad.jsonl").string();
  bad.output = (fs::path(dir.path()) / "bad_out.jsonl").string();
  EXPECT_NE(lire::testing::error_message<lire::DataError>([&] { lire::cli::run_score(bad, fp32_cpu()); })
                .find("bad.jsonl:2"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(bad.output));
  // data.on_error: skip leaves the malformed record out and scores the rest.
  auto skip = fp32_cpu();
  skip.data.on_error = "skip";
  ASSERT_EQ(lire::cli::run_score(bad, skip), 0);
  const auto kept = read_jsonl(bad.output);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]["prompt"], "x");
  EXPECT_EQ(kept[0]["rewards"].size(), 1u);
}

TEST(ScoreCommand, ResumeKeepsCompletedRecordsAndDropsTheTornOne) {
  lire::testing::TempDir dir("lire_score");
  auto records = fixture_records();
  records.push_back(records[0]);
  records.back()["id"] = "row2";
  write_lines(fs::path(dir.path()) / "in.jsonl", records);
  lire::cli::ScoreArgs args;
  args.data = (fs::path(dir.path()) / "in.jsonl").string();
  args.output = (fs::path(dir.path()) / "out.jsonl").string();
  args.policy = (kHf / "llama_tiny").string();
  args.progress = false;
  // An interrupted run left one complete record (marked) and a torn second line.
  {
    json first = records[0];
    first["ref_logps"] = {-1.0};
    first["marker"] = "from the first run";
    std::ofstream partial(fs::path(dir.path()) / "out.jsonl.partial");
    partial << first.dump() << "\n" << R"({"id": "row1", "ref_lo)";
  }
  args.resume = true;
  ASSERT_EQ(lire::cli::run_score(args, fp32_cpu()), 0);
  const auto out = read_jsonl(fs::path(dir.path()) / "out.jsonl");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["marker"], "from the first run");
  EXPECT_EQ(out[1]["id"], "row1");
  EXPECT_EQ(out[2]["id"], "row2");
  EXPECT_EQ(out[0]["ref_logps"][0].get<double>(), -1.0);  // not recomputed
  EXPECT_NEAR(out[2]["ref_logps"][0].get<double>(),
              fixture_json("llama_tiny")["continuation_logprob"]["sum_hf_f32"][0].get<double>(), 1e-4);
  // Without --resume a stale partial file is started over.
  {
    std::ofstream partial(fs::path(dir.path()) / "out.jsonl.partial");
    partial << R"({"stale": true})" << "\n";
  }
  args.resume = false;
  ASSERT_EQ(lire::cli::run_score(args, fp32_cpu()), 0);
  EXPECT_FALSE(read_jsonl(fs::path(dir.path()) / "out.jsonl")[0].contains("marker"));
}

TEST(ScoreCommand, UsageErrors) {
  lire::cli::ScoreArgs args;
  args.data = "in.jsonl";
  args.output = "out.jsonl";
  EXPECT_NE(lire::testing::error_message<lire::Error>([&] { lire::cli::run_score(args, fp32_cpu()); })
                .find("nothing to do"),
            std::string::npos);
  args.reward_models = {"=x"};
  EXPECT_NE(lire::testing::error_message<lire::Error>([&] { lire::cli::run_score(args, fp32_cpu()); })
                .find("expected [NAME=]DIR"),
            std::string::npos);
}

}  // namespace

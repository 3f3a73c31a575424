// The t5-pairwise label source (LiPO Sec. 4 / App. F) on a tiny random T5
// ranker (tests/fixtures/hf/t5_tiny plus a word-level sentencepiece tokenizer
// trained here): the preference matrix against a direct computation with the
// model's full forward pass, LiPO's label aggregation, batching, and
// lire-score writing `labels` (and the matrix) into records.
#include "lire/rewards/t5_pairwise.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/cli/eval_command.h"
#include "lire/cli/score_command.h"
#include "lire/config/config.h"
#include "lire/core/error.h"
#include "lire/data/list_dataset.h"
#include "lire/data/sentencepiece.h"
#include "support/error_message.h"
#include "support/jsonl.h"
#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using Matrix = std::vector<std::vector<double>>;

const fs::path kHf = fs::path(LIRE_TEST_FIXTURES) / "hf";

// The random T5 v1.1 fixture (vocab_size 512, pad 0 = decoder start, EOS 1)
// with a T5-style tokenizer: spiece.model (<pad> 0, </s> 1, <unk> 2, no BOS)
// and tokenizer_config.json naming T5Tokenizer (add_eos true, add_bos false).
fs::path make_ranker(const fs::path& dir) {
  const fs::path folder = dir / "ranker";
  fs::create_directories(folder);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(kHf / "t5_tiny" / f, folder / f);
  std::ofstream(dir / "corpus.txt") << "[CONTEXT] [SUMMARY A] [SUMMARY B] [RESPONSE A] [RESPONSE B] A B\n"
                                       "the cat sat on the mat and the dog ran to the park\n"
                                       "a short story about a red fox who jumps over lazy dogs\n";
  lire::data::train_sentencepiece("--input=" + (dir / "corpus.txt").string() + " --model_prefix=" +
                                  (folder / "spiece").string() +
                                  " --model_type=word --vocab_size=64 --hard_vocab_limit=false"
                                  " --normalization_rule_name=identity --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
                                  " --num_threads=1");
  std::ofstream(folder / "tokenizer_config.json") << R"({"tokenizer_class": "T5Tokenizer"})";
  return folder;
}

lire::config::RewardSourceOptions ranker_options(const fs::path& folder) {
  lire::config::RewardSourceOptions o;
  o.name = "ranker";
  o.type = "t5-pairwise";
  o.path = folder.string();
  return o;
}

lire::models::LoadOptions fp64_cpu() { return {"fp64", "cpu", ""}; }

const std::string kContext = "the cat sat on the mat";
const std::vector<std::string> kResponses = {"a red fox", "the dog ran to the park", "lazy dogs jumps", "A B story"};

// log P(choice | input) with the model's full forward pass on one unpadded
// input: teacher-forced [decoder_start] + choice[:-1], log-softmax over the
// whole vocabulary.
double direct_logprob(lire::models::T5ForConditionalGenerationImpl& model, const std::vector<int64_t>& input,
                      const std::vector<int64_t>& choice) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> decoder{model.config().decoder_start_token_id};
  decoder.insert(decoder.end(), choice.begin(), choice.end() - 1);
  const auto ids = torch::tensor(input, torch::kLong).unsqueeze(0);
  const auto logits = model.forward(ids, torch::ones_like(ids), torch::tensor(decoder, torch::kLong).unsqueeze(0));
  const auto logps = torch::log_softmax(logits.to(torch::kFloat64), -1)[0];
  double sum = 0;
  for (std::size_t t = 0; t < choice.size(); ++t) sum += logps[static_cast<int64_t>(t)][choice[t]].item<double>();
  return sum;
}

// P("A" first) of y_i before y_j, from the text built by hand.
double direct_prefer(lire::rewards::T5PairwiseRanker& ranker, const std::string& context, const std::string& a,
                     const std::string& b, bool normalize) {
  auto input = ranker.tokenizer().encode("[CONTEXT] " + context + " [SUMMARY A] " + a + " [SUMMARY B] " + b);
  input.push_back(ranker.tokenizer().eos_id());
  const double la = direct_logprob(ranker.model(), input, ranker.choice_a_ids());
  if (!normalize) return std::exp(la);
  const double lb = direct_logprob(ranker.model(), input, ranker.choice_b_ids());
  return std::exp(la) / (std::exp(la) + std::exp(lb));
}

Matrix direct_matrix(lire::rewards::T5PairwiseRanker& ranker, const std::string& context,
                     const std::vector<std::string>& responses, bool normalize) {
  const std::size_t K = responses.size();
  Matrix psi(K, std::vector<double>(K, 0.5));
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j)
      if (i != j)
        psi[i][j] = 0.5 * (direct_prefer(ranker, context, responses[i], responses[j], normalize) + 1.0 -
                           direct_prefer(ranker, context, responses[j], responses[i], normalize));
  return psi;
}

void expect_matrix_near(const Matrix& got, const Matrix& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), want.size());
    for (std::size_t j = 0; j < got.size(); ++j) EXPECT_NEAR(got[i][j], want[i][j], tolerance) << i << "," << j;
  }
}

std::vector<double> row_means(const Matrix& psi) {
  std::vector<double> out;
  for (const auto& row : psi) {
    double s = 0;
    for (double v : row) s += v;
    out.push_back(s / static_cast<double>(row.size()));
  }
  return out;
}

TEST(T5Pairwise, TheTokenizerIsT5Style) {
  lire::testing::TempDir dir("t5pw");
  const auto folder = make_ranker(dir.path());
  lire::rewards::T5PairwiseRanker ranker(ranker_options(folder), fp64_cpu());
  EXPECT_FALSE(ranker.tokenizer().add_bos());
  EXPECT_TRUE(ranker.tokenizer().add_eos());
  EXPECT_EQ(ranker.tokenizer().eos_id(), 1);
  EXPECT_LE(ranker.tokenizer().vocab_size(), 512);
  EXPECT_EQ(ranker.choice_a_ids().size(), 1u);
  EXPECT_NE(ranker.choice_a_ids(), ranker.choice_b_ids());
  EXPECT_NE(ranker.choice_a_ids()[0], ranker.tokenizer().unk_id());
  // The encoder input: the template's text, then EOS.
  auto want = ranker.tokenizer().encode("[CONTEXT] x [SUMMARY A] the cat [SUMMARY B] a dog");
  want.push_back(1);
  EXPECT_EQ(ranker.input_ids("x", "the cat", "a dog"), want);
}

TEST(T5Pairwise, PreferenceMatrixMatchesTheFullForwardPass) {
  lire::testing::TempDir dir("t5pw");
  const auto folder = make_ranker(dir.path());
  lire::rewards::T5PairwiseRanker ranker(ranker_options(folder), fp64_cpu());
  const auto psi = ranker.preference_matrix(kContext, kResponses);
  const auto want = direct_matrix(ranker, kContext, kResponses, false);
  expect_matrix_near(psi, want, 1e-10);
  // Position averaging makes Psi complementary; a response ties with itself.
  for (std::size_t i = 0; i < psi.size(); ++i) {
    EXPECT_EQ(psi[i][i], 0.5);
    for (std::size_t j = 0; j < psi.size(); ++j) EXPECT_NEAR(psi[i][j] + psi[j][i], 1.0, 1e-15);
  }
  // The random ranker still tells the pairs apart (about 6e-5 from 0.5: the
  // check above is not vacuous).
  EXPECT_GT(std::abs(psi[0][1] - 0.5), 1e-6);

  // Labels: psi_k = (1/K) sum_i Psi_ki.
  const auto labels = lire::rewards::labels_from_preferences(psi);
  const auto means = row_means(want);
  ASSERT_EQ(labels.size(), kResponses.size());
  double total = 0;
  for (std::size_t k = 0; k < labels.size(); ++k) {
    EXPECT_NEAR(labels[k], means[k], 1e-10);
    total += labels[k];
  }
  EXPECT_NEAR(total / static_cast<double>(labels.size()), 0.5, 1e-12);  // labels average 0.5
  EXPECT_EQ(lire::rewards::labels_from_preferences({{0.5, 1.0, 0.75}, {0.0, 0.5, 0.25}, {0.25, 0.75, 0.5}}),
            (std::vector<double>{0.75, 0.25, 0.5}));
  EXPECT_THROW(lire::rewards::labels_from_preferences({{0.5, 1.0}, {0.0}}), lire::Error);

  // One response: [[0.5]].
  EXPECT_EQ(ranker.preference_matrix(kContext, {"a red fox"}), (Matrix{{0.5}}));
}

TEST(T5Pairwise, NormalizeAndBatchingVariants) {
  lire::testing::TempDir dir("t5pw");
  const auto folder = make_ranker(dir.path());
  auto o = ranker_options(folder);
  o.normalize_choices = true;
  o.batch_pairs = 1;
  lire::rewards::T5PairwiseRanker one(o, fp64_cpu());
  const auto psi = one.preference_matrix(kContext, kResponses);
  expect_matrix_near(psi, direct_matrix(one, kContext, kResponses, true), 1e-10);
  // P(A) / (P(A) + P(B)) moves further from 0.5 than P(A) alone on a random
  // model (about 0.485 here).
  EXPECT_GT(std::abs(psi[0][1] - 0.5), 1e-4);

  o.batch_pairs = 16;
  lire::rewards::T5PairwiseRanker many(o, fp64_cpu());
  expect_matrix_near(many.preference_matrix(kContext, kResponses), psi, 1e-12);
  o.normalize_choices = false;
  o.batch_pairs = 5;  // batches that straddle pairs of two lists
  lire::rewards::T5PairwiseRanker plain(o, fp64_cpu());
  o.batch_pairs = 1;
  lire::rewards::T5PairwiseRanker single(o, fp64_cpu());
  expect_matrix_near(plain.preference_matrix(kContext, kResponses), single.preference_matrix(kContext, kResponses),
                     1e-12);

  // As a reward source: every ordered pair of every list in one stream; the
  // labels and matrices of each list are those of the list alone.
  const auto list_of = [](const json& record, std::size_t line) {
    return lire::data::parse_candidate_list(record, "lists.jsonl", line);
  };
  const std::vector<lire::data::CandidateList> lists = {
      list_of({{"prompt", kContext}, {"responses", kResponses}}, 1),
      list_of({{"prompt", "a story"}, {"responses", {"the fox", "lazy dogs"}}}, 2),
      list_of({{"prompt", "fox"}, {"input", "the park"}, {"responses", {"a dog", "a cat", "A"}}}, 3)};
  const auto labels = plain.score(lists);
  ASSERT_EQ(labels.size(), 3u);
  ASSERT_EQ(plain.last_matrices().size(), 3u);
  const Matrix m0 = single.preference_matrix(kContext, kResponses);
  const Matrix m1 = single.preference_matrix("a story", {"the fox", "lazy dogs"});
  const Matrix m2 = single.preference_matrix("fox\n\nthe park", {"a dog", "a cat", "A"});
  expect_matrix_near(plain.last_matrices()[0], m0, 1e-12);
  expect_matrix_near(plain.last_matrices()[1], m1, 1e-12);
  expect_matrix_near(plain.last_matrices()[2], m2, 1e-12);
  const std::vector<Matrix> matrices = {m0, m1, m2};
  for (std::size_t l = 0; l < matrices.size(); ++l) {
    const auto want = row_means(matrices[l]);
    ASSERT_EQ(labels[l].size(), want.size());
    for (std::size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(labels[l][k], want[k], 1e-12);
  }
}

TEST(T5Pairwise, TemplatesAndLeftTruncation) {
  EXPECT_EQ(lire::rewards::render_pair_template("[CONTEXT] {context} [RESPONSE A] {a} [RESPONSE B] {b}", "x {b}",
                                                "one", "two"),
            "[CONTEXT] x {b} [RESPONSE A] one [RESPONSE B] two");
  EXPECT_EQ(lire::rewards::render_pair_template("{b} vs {a}: {context}", "c", "1", "2"), "2 vs 1: c");
  EXPECT_THROW(lire::rewards::render_pair_template("{context} {a}", "c", "1", "2"), lire::ConfigError);

  lire::testing::TempDir dir("t5pw");
  const auto folder = make_ranker(dir.path());
  auto o = ranker_options(folder);
  const std::string context = "the cat sat on the mat and the dog ran to the park";
  lire::rewards::T5PairwiseRanker full(o, fp64_cpu());
  const auto whole = full.input_ids(context, "a red fox", "lazy dogs");
  o.max_input_tokens = static_cast<int64_t>(whole.size()) - 4;
  lire::rewards::T5PairwiseRanker cut(o, fp64_cpu());
  // The context's first four words go; the rest is unchanged.
  EXPECT_EQ(cut.input_ids(context, "a red fox", "lazy dogs"),
            full.input_ids("the mat and the dog ran to the park", "a red fox", "lazy dogs"));
  // Too short even without a context: the responses are kept whole.
  o.max_input_tokens = 3;
  lire::rewards::T5PairwiseRanker tiny(o, fp64_cpu());
  EXPECT_EQ(tiny.input_ids(context, "a red fox", "lazy dogs"), full.input_ids("", "a red fox", "lazy dogs"));
}

TEST(T5Pairwise, ConfigErrorsOfTheFolder) {
  lire::testing::TempDir dir("t5pw");
  const auto folder = make_ranker(dir.path());
  auto o = ranker_options(folder);
  o.choice_a = "zebra";  // not a word of the tokenizer: <unk>, still a token
  EXPECT_NO_THROW({ lire::rewards::T5PairwiseRanker ranker(o, fp64_cpu()); });
  o.choice_a = "";
  EXPECT_THAT(lire::testing::error_message<lire::ConfigError>(
                  [&] { lire::rewards::T5PairwiseRanker ranker(o, fp64_cpu()); }),
              HasSubstr("rewards.ranker.choice_a: '' encodes to no tokens"));
  o = ranker_options(dir.path() + "/missing");
  EXPECT_THROW({ lire::rewards::T5PairwiseRanker ranker(o, fp64_cpu()); }, lire::Error);
}

// lire-score with a rewards section holding t5-pairwise sources.
lire::config::Config score_config(const fs::path& folder) {
  const std::string yaml = "model: {dtype: fp64}\nruntime: {device: cpu}\nrewards:\n"
                           "  ranker: {type: t5-pairwise, path: '" + folder.string() + "', matrix_field: psi_matrix}\n"
                           "  norm: {type: t5-pairwise, path: '" + folder.string() + "', normalize: true}\n"
                           "  short: {type: length, max_chars: 10}\n";
  return lire::config::resolve(lire::config::ConfigTree::from_string(yaml, "run.yaml"));
}

TEST(T5Pairwise, ScoreWritesLabelsAndTheMatrix) {
  lire::testing::TempDir dir("t5pw");
  const fs::path d = dir.path();
  const auto folder = make_ranker(d);
  const auto cfg = score_config(folder);
  lire::testing::write_jsonl((d / "in.jsonl").string(),
                             {{{"id", "a"}, {"prompt", kContext}, {"responses", kResponses}, {"rewards", {4, 3, 2, 1}}},
                              {{"id", "b"}, {"prompt", "a story"}, {"responses", {"the fox", "lazy dogs"}}}});
  lire::cli::ScoreArgs args;
  args.data = (d / "in.jsonl").string();
  args.output = (d / "out.jsonl").string();
  args.rewards = {"ranker"};
  args.progress = false;
  ASSERT_EQ(lire::cli::run_score(args, cfg), 0);
  const auto out = lire::testing::read_jsonl(args.output);
  ASSERT_EQ(out.size(), 2u);
  lire::rewards::T5PairwiseRanker ranker(*cfg.rewards.find("ranker"), fp64_cpu());
  const Matrix m0 = ranker.preference_matrix(kContext, kResponses);
  const Matrix m1 = ranker.preference_matrix("a story", {"the fox", "lazy dogs"});
  expect_matrix_near(out[0]["psi_matrix"].get<Matrix>(), m0, 1e-12);
  expect_matrix_near(out[1]["psi_matrix"].get<Matrix>(), m1, 1e-12);
  const auto l0 = out[0]["labels"].get<std::vector<double>>();
  const auto want0 = row_means(m0);
  ASSERT_EQ(l0.size(), want0.size());
  for (std::size_t k = 0; k < l0.size(); ++k) EXPECT_NEAR(l0[k], want0[k], 1e-12);
  EXPECT_EQ(out[0]["rewards"], json({4, 3, 2, 1}));  // rewards are left alone
  EXPECT_FALSE(out[1].contains("rewards"));
  EXPECT_FALSE(out[0].contains("labels_ranker"));  // one label source: `labels` only

  // A list with labels and no rewards is a training record: its targets are the labels.
  const auto lists = lire::data::read_candidate_lists(args.output);
  ASSERT_EQ(lists.size(), 2u);
  const auto targets = lire::data::training_targets(lists[1]);
  EXPECT_EQ(targets.kind, "labels");
  EXPECT_EQ(targets.values, out[1]["labels"].get<std::vector<double>>());

  // Labels already there: refused without --overwrite, replaced with it.
  lire::cli::ScoreArgs again = args;
  again.data = args.output;
  again.output = (d / "again.jsonl").string();
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { lire::cli::run_score(again, cfg); }),
              HasSubstr("out.jsonl:1: field 'labels' is already there; pass --overwrite"));
  EXPECT_FALSE(fs::exists(again.output));
  again.overwrite = true;
  ASSERT_EQ(lire::cli::run_score(again, cfg), 0);
  EXPECT_EQ(lire::testing::read_jsonl(again.output)[0]["labels"], out[0]["labels"]);

  // Several label sources: `labels` is the first named, labels_<name> each;
  // reward sources keep writing `rewards`.
  lire::testing::write_jsonl((d / "plain.jsonl").string(),
                             {{{"prompt", "a story"}, {"responses", {"the fox", "lazy dogs", "a red fox"}}}});
  lire::cli::ScoreArgs several = args;
  several.data = (d / "plain.jsonl").string();
  several.output = (d / "several.jsonl").string();
  several.rewards = {"norm", "short", "ranker"};
  ASSERT_EQ(lire::cli::run_score(several, cfg), 0);
  const auto s = lire::testing::read_jsonl(several.output).at(0);
  EXPECT_EQ(s["labels"], s["labels_norm"]);
  EXPECT_TRUE(s.contains("labels_ranker"));
  EXPECT_NE(s["labels_ranker"], s["labels_norm"]);
  EXPECT_TRUE(s.contains("psi_matrix"));
  EXPECT_EQ(s["rewards"], json({1, 1, 1}));
  EXPECT_FALSE(s.contains("rewards_short"));
}

// lire-eval with the ranker: the source is reported as `labels`, each side's
// value is LiPO's psi of the pair, 1/4 + P/2 with P = Psi(policy, baseline),
// and a win is P above one half.
TEST(T5Pairwise, EvalReportsTheRankerAsALabelSource) {
  lire::testing::TempDir dir("t5pw");
  const fs::path d = dir.path();
  const auto folder = make_ranker(d);
  const auto cfg = score_config(folder);
  const std::vector<std::string> prompts = {kContext, "a story", "lazy dogs"};
  const std::vector<std::string> policy = {"a red fox", "the fox", "dogs"};
  const std::vector<std::string> best = {"the fox", "lazy dogs", "a fox"};
  std::vector<json> data, responses;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    data.push_back({{"id", i}, {"prompt", prompts[i]}, {"responses", {best[i], "no"}}, {"rewards", {1, 0}}});
    responses.push_back({{"id", i}, {"prompt", prompts[i]}, {"responses", {policy[i]}}});
  }
  lire::testing::write_jsonl((d / "test.jsonl").string(), data);
  lire::testing::write_jsonl((d / "policy.jsonl").string(), responses);
  lire::cli::EvalArgs args;
  args.data = (d / "test.jsonl").string();
  args.responses = (d / "policy.jsonl").string();
  args.output = (d / "report").string();
  args.rewards = {"ranker"};
  args.progress = false;
  ASSERT_EQ(lire::cli::run_eval(args, cfg), 0);
  std::ifstream in(d / "report" / "report.json");
  const auto report = json::parse(in);
  ASSERT_EQ(report["sources"].size(), 1u);
  const auto& source = report["sources"][0];
  EXPECT_EQ(source["kind"], "labels");
  lire::rewards::T5PairwiseRanker ranker(*cfg.rewards.find("ranker"), fp64_cpu());
  double mean = 0, baseline_mean = 0;
  int wins = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const double p = ranker.preference_matrix(prompts[i], {policy[i], best[i]})[0][1];
    mean += (0.25 + p / 2) / 3;
    baseline_mean += (0.25 + (1 - p) / 2) / 3;
    wins += p > 0.5;
  }
  EXPECT_NEAR(source["mean_reward"].get<double>(), mean, 1e-9);
  EXPECT_NEAR(source["baseline_mean_reward"].get<double>(), baseline_mean, 1e-9);
  EXPECT_EQ(source["wins"].get<int>(), wins);
}

TEST(T5Pairwise, TokenIdsOnlyListsFailWithFileAndLine) {
  lire::testing::TempDir dir("t5pw");
  const fs::path d = dir.path();
  const auto cfg = score_config(make_ranker(d));
  lire::testing::write_jsonl((d / "ids.jsonl").string(),
                             {{{"prompt", "the cat"}, {"responses", {"a", "b"}}},
                              {{"prompt_ids", {5, 6}}, {"responses_ids", {{7}, {8, 9}}}}});
  lire::cli::ScoreArgs args;
  args.data = (d / "ids.jsonl").string();
  args.output = (d / "out.jsonl").string();
  args.rewards = {"ranker"};
  args.batch_size = 1;
  args.progress = false;
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { lire::cli::run_score(args, cfg); }),
              HasSubstr("ids.jsonl:2: reward source 'ranker' reads response texts, and this list has only token ids"));
  EXPECT_FALSE(fs::exists(args.output));
}

}  // namespace

// The `rewards:` section and the rule reward sources: exact-match, rouge-l,
// regex, length window, ensembles, and their errors.
#include "lire/rewards/reward_source.h"

#include <algorithm>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/config/config.h"
#include "lire/core/error.h"
#include "support/error_message.h"

namespace lire::rewards {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

config::RewardsOptions rewards_of(const std::string& yaml) {
  return config::resolve(config::ConfigTree::from_string(yaml, "run.yaml")).rewards;
}

data::CandidateList list_of(const json& record, std::size_t line = 1) {
  return data::parse_candidate_list(record, "lists.jsonl", line);
}

TEST(RewardsConfig, ReadsEverySourceType) {
  const auto r = rewards_of(
      "rewards:\n"
      "  rm: {type: hf-seq-cls, path: models/rm}\n"
      "  correct: {type: exact-match, field: answer, normalize: false}\n"
      "  format: {type: regex, pattern: '^[0-9]+$', full_match: true}\n"
      "  short: {type: length, min_chars: 2, max_chars: 10}\n"
      "  total: {type: ensemble, weights: {correct: 3, short: 1}}\n");
  ASSERT_EQ(r.sources.size(), 5u);
  EXPECT_EQ(r.find("rm")->path, "models/rm");
  EXPECT_EQ(r.find("correct")->field, "answer");
  EXPECT_FALSE(r.find("correct")->normalize);
  EXPECT_TRUE(r.find("format")->full_match);
  EXPECT_EQ(r.find("short")->max_chars, 10);
  EXPECT_EQ(r.find("total")->weights.size(), 2u);
  EXPECT_EQ(r.find("missing"), nullptr);
}

TEST(RewardsConfig, ErrorsNameTheKey) {
  const auto error = [](const std::string& yaml) {
    return lire::testing::error_message<ConfigError>([&] { rewards_of(yaml); });
  };
  EXPECT_THAT(error("rewards:\n  rm: {path: x}\n"), HasSubstr("rewards.rm.type: missing"));
  EXPECT_THAT(error("rewards:\n  rm: {type: hf-seq}\n"), HasSubstr("rewards.rm.type"));
  EXPECT_THAT(error("rewards:\n  rm: {type: hf-seq-cls}\n"), HasSubstr("rewards.rm.path"));
  EXPECT_THAT(error("rewards:\n  f: {type: regex, pattern: '(('}\n"),
              HasSubstr("rewards.f.pattern: not a valid regular expression"));
  EXPECT_THAT(error("rewards:\n  f: {type: regex, pattern: a, max_chars: 3}\n"), HasSubstr("rewards.f.max_chars"));
  EXPECT_THAT(error("rewards:\n  s: {type: length, min_chars: 5, max_chars: 3}\n"), HasSubstr("rewards.s.max_chars"));
  EXPECT_THAT(error("rewards:\n  t: {type: ensemble, weights: {nope: 1}}\n"),
              HasSubstr("ensemble member 'nope' is not a reward source"));
  EXPECT_THAT(error("rewards:\n  a: {type: length}\n  t: {type: ensemble, weights: {a: 0}}\n"),
              HasSubstr("rewards.t.weights: the weight of 'a' must be a number > 0"));
  EXPECT_THAT(error("rewards:\n  a: {type: length}\n  t: {type: ensemble, weights: {a: 1}}\n"
                    "  u: {type: ensemble, weights: {t: 1}}\n"),
              HasSubstr("'t' is an ensemble itself"));
  EXPECT_THAT(error("rewards:\n  'a b': {type: length}\n"), HasSubstr("reward source name"));
  EXPECT_THAT(error("rewards:\n  r: {type: rouge-l, field: ''}\n"), HasSubstr("rewards.r.field"));
  EXPECT_THAT(error("rewards:\n  r: {type: rouge-l, pattern: a}\n"), HasSubstr("rewards.r.pattern"));
}

TEST(RewardsConfig, RougeLReadsFieldAndNormalize) {
  const auto r = rewards_of("rewards:\n  a: {type: rouge-l}\n  b: {type: rouge-l, field: answer, normalize: false}\n");
  EXPECT_EQ(r.find("a")->type, "rouge-l");
  EXPECT_EQ(r.find("a")->field, "reference");
  EXPECT_TRUE(r.find("a")->normalize);
  EXPECT_EQ(r.find("b")->field, "answer");
  EXPECT_FALSE(r.find("b")->normalize);
}

TEST(RewardsConfig, ReadsT5PairwiseKeys) {
  const auto r = rewards_of(
      "rewards:\n"
      "  plain: {type: t5-pairwise, path: models/ranker}\n"
      "  chat: {type: t5-pairwise, path: r2, template: response, choice_a: first, choice_b: second,\n"
      "         normalize: true, matrix_field: psi_matrix, batch_pairs: 4, max_input_tokens: 512}\n"
      "  own: {type: t5-pairwise, path: r3, template: 'Q: {context} 1: {b} 2: {a}'}\n");
  const auto* plain = r.find("plain");
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->path, "models/ranker");
  EXPECT_EQ(plain->pair_template, "[CONTEXT] {context} [SUMMARY A] {a} [SUMMARY B] {b}");
  EXPECT_EQ(plain->choice_a, "A");
  EXPECT_EQ(plain->choice_b, "B");
  EXPECT_FALSE(plain->normalize_choices);
  EXPECT_EQ(plain->matrix_field, "");
  EXPECT_EQ(plain->batch_pairs, 16);
  EXPECT_EQ(plain->max_input_tokens, 0);
  EXPECT_TRUE(config::is_label_source(*plain));
  const auto* chat = r.find("chat");
  EXPECT_EQ(chat->pair_template, "[CONTEXT] {context} [RESPONSE A] {a} [RESPONSE B] {b}");
  EXPECT_EQ(chat->choice_a, "first");
  EXPECT_EQ(chat->choice_b, "second");
  EXPECT_TRUE(chat->normalize_choices);
  EXPECT_EQ(chat->matrix_field, "psi_matrix");
  EXPECT_EQ(chat->batch_pairs, 4);
  EXPECT_EQ(chat->max_input_tokens, 512);
  EXPECT_EQ(r.find("own")->pair_template, "Q: {context} 1: {b} 2: {a}");
  EXPECT_FALSE(config::is_label_source(*rewards_of("rewards:\n  rm: {type: hf-seq-cls, path: x}\n").find("rm")));
  // The documented order, model sources first.
  EXPECT_EQ(config::reward_source_types(), (std::vector<std::string>{"hf-seq-cls", "t5-pairwise", "exact-match",
                                                                     "rouge-l", "regex", "length", "ensemble"}));
}

TEST(RewardsConfig, T5PairwiseErrorsNameTheKey) {
  const auto error = [](const std::string& yaml) {
    return lire::testing::error_message<ConfigError>([&] { rewards_of(yaml); });
  };
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise}\n"),
              HasSubstr("rewards.r.path: t5-pairwise needs the ranker's folder"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, template: '{context} {b}'}\n"),
              HasSubstr("rewards.r.template: must hold {a} exactly once"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, template: '{context} {a} {a} {b}'}\n"),
              HasSubstr("rewards.r.template: must hold {a} exactly once"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, template: summaries}\n"),
              HasSubstr("or be a preset: summary, response"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, field: answer}\n"),
              HasSubstr("unknown key rewards.r.field"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, choice_a: ''}\n"), HasSubstr("rewards.r.choice_a"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, choice_b: A}\n"),
              HasSubstr("rewards.r.choice_b: must differ from choice_a"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, batch_pairs: 0}\n"),
              HasSubstr("rewards.r.batch_pairs"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, max_input_tokens: -1}\n"),
              HasSubstr("rewards.r.max_input_tokens"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, normalize: maybe}\n"),
              HasSubstr("rewards.r.normalize"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, matrix_field: labels}\n"),
              HasSubstr("rewards.r.matrix_field: 'labels' is a field lire reads or writes"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, matrix_field: rewards_r}\n"),
              HasSubstr("rewards.r.matrix_field"));
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x, matrix_field: m}\n"
                    "  s: {type: t5-pairwise, path: y, matrix_field: m}\n"),
              HasSubstr("matrix_field 'm' is also the matrix_field of 'r'"));
  // Labels are not rewards: an ensemble cannot mix them.
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x}\n  l: {type: length}\n"
                    "  t: {type: ensemble, weights: {r: 1, l: 1}}\n"),
              HasSubstr("rewards.t: ensemble member 'r' is a t5-pairwise source"));
  // Evolve's pool statistics read rewards.
  EXPECT_THAT(error("rewards:\n  r: {type: t5-pairwise, path: x}\nevolve:\n  steps: 1\n  rewards: [r]\n"),
              HasSubstr("evolve.rewards: 'r' is a t5-pairwise source"));
  // Without LibTorch's factory a t5-pairwise source cannot be built.
  EXPECT_THAT(lire::testing::error_message<ConfigError>(
                  [&] { RewardSet models(rewards_of("rewards:\n  r: {type: t5-pairwise, path: x}\n")); }),
              HasSubstr("rewards.r: t5-pairwise reward models are not available here"));
}

TEST(RuleRewards, ExactMatchRegexLengthAndEnsemble) {
  RewardSet set(rewards_of("rewards:\n"
                           "  correct: {type: exact-match, field: answer}\n"
                           "  strict: {type: exact-match, field: answer, normalize: false}\n"
                           "  digits: {type: regex, pattern: '^[0-9]+$', full_match: true}\n"
                           "  has7: {type: regex, pattern: '7'}\n"
                           "  short: {type: length, min_chars: 2, max_chars: 3}\n"
                           "  mix: {type: ensemble, weights: {correct: 3, short: 1}}\n"));
  const auto lists = std::vector<data::CandidateList>{
      list_of({{"prompt", "2+5?"}, {"responses", {"7", " 7 ", "42", "héé"}}, {"answer", "7"}}),
      list_of({{"prompt", "Capital?"}, {"responses", {"paris", "Rome  city"}}, {"answer", {"Paris", "rome city"}}}, 2)};
  const auto r = set.score(lists);
  EXPECT_EQ(r.at("correct")[0], (std::vector<double>{1, 1, 0, 0}));  // " 7 " trims to "7"
  EXPECT_EQ(r.at("strict")[0], (std::vector<double>{1, 0, 0, 0}));
  EXPECT_EQ(r.at("correct")[1], (std::vector<double>{1, 1}));  // case and whitespace runs normalised
  EXPECT_EQ(r.at("strict")[1], (std::vector<double>{0, 0}));
  EXPECT_EQ(r.at("digits")[0], (std::vector<double>{1, 0, 1, 0}));  // " 7 " is not all digits
  EXPECT_EQ(r.at("has7")[0], (std::vector<double>{1, 1, 0, 0}));
  EXPECT_EQ(r.at("short")[0], (std::vector<double>{0, 1, 1, 1}));  // "héé" is 3 characters (5 bytes)
  // mix = (3 * correct + 1 * short) / 4
  EXPECT_EQ(r.at("mix")[0], (std::vector<double>{0.75, 1.0, 0.25, 0.25}));
  EXPECT_EQ(set.names(), (std::vector<std::string>{"correct", "digits", "has7", "mix", "short", "strict"}));
}

TEST(RuleRewards, DataErrorsNameFileAndLine) {
  RewardSet set(rewards_of("rewards:\n  correct: {type: exact-match, field: answer}\n"));
  EXPECT_THAT(lire::testing::error_message<DataError>(
                  [&] { set.score({list_of({{"prompt", "p"}, {"responses", {"a", "b"}}}, 7)}); }),
              HasSubstr("lists.jsonl:7: reward source 'correct' (exact-match) needs field 'answer'"));
  EXPECT_THAT(lire::testing::error_message<DataError>([&] {
                set.score({list_of({{"prompt", "p"}, {"responses", {"a", "b"}}, {"answer", 3}}, 8)});
              }),
              HasSubstr("lists.jsonl:8: field 'answer' must be a string"));
  RewardSet length(rewards_of("rewards:\n  short: {type: length, max_chars: 3}\n"));
  EXPECT_THAT(lire::testing::error_message<DataError>([&] {
                length.score({list_of({{"prompt_ids", {1, 2}}, {"responses_ids", {{3}, {4}}}}, 9)});
              }),
              HasSubstr("lists.jsonl:9: reward source 'short' reads response texts"));
  EXPECT_THAT(lire::testing::error_message<ConfigError>(
                  [&] { RewardSet models(rewards_of("rewards:\n  rm: {type: hf-seq-cls, path: x}\n")); }),
              HasSubstr("rewards.rm: hf-seq-cls reward models are not available here"));
}

// Independent reference: the longest common subsequence by enumerating every
// subsequence of `a` (2^|a| of them) and checking it is one of `b`.
std::size_t naive_lcs(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::size_t best = 0;
  for (unsigned mask = 0; mask < (1u << a.size()); ++mask) {
    std::size_t j = 0, n = 0;
    bool ok = true;
    for (std::size_t i = 0; i < a.size() && ok; ++i) {
      if (!(mask >> i & 1u)) continue;
      while (j < b.size() && b[j] != a[i]) ++j;
      if (j == b.size()) ok = false;
      else ++j, ++n;
    }
    if (ok) best = std::max(best, n);
  }
  return best;
}

std::string join(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) out += (out.empty() ? "" : " ") + t;
  return out;
}

TEST(RougeL, HandCheckedScores) {
  EXPECT_DOUBLE_EQ(rouge_l_f1("apple fig pear", "apple fig pear", true), 1.0);
  // LCS 2 of 3 and 3 tokens: P = R = 2/3.
  EXPECT_DOUBLE_EQ(rouge_l_f1("fig apple pear", "apple fig pear", true), 2.0 / 3.0);
  // LCS 2: P = 1, R = 2/3, F = 2 * (2/3) / (5/3) = 0.8.
  EXPECT_DOUBLE_EQ(rouge_l_f1("apple fig", "apple fig pear", true), 0.8);
  // Reversed order of 3 keeps one token in common: P = R = 1/3.
  EXPECT_DOUBLE_EQ(rouge_l_f1("pear fig apple", "apple fig pear", true), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(rouge_l_f1("kiwi plum", "apple fig pear", true), 0.0);
  // rouge-score's README example (target first there): rougeL P = 0.625, R = 5/9, F = 0.5882352941176471.
  EXPECT_NEAR(rouge_l_f1("The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog", true),
              0.5882352941176471, 1e-15);
  // Normalisation: case and whitespace runs; without it case matters.
  EXPECT_DOUBLE_EQ(rouge_l_f1("  Apple\tFIG  pear\n", "apple fig pear", true), 1.0);
  EXPECT_DOUBLE_EQ(rouge_l_f1("Apple fig pear", "apple fig pear", false), 2.0 / 3.0);
  // Repeated tokens count as often as they match.
  EXPECT_DOUBLE_EQ(rouge_l_f1("a a a", "a", true), 0.5);  // P = 1/3, R = 1
  // Empty texts: both empty = identical = 1; one empty = 0.
  EXPECT_DOUBLE_EQ(rouge_l_f1("", "", true), 1.0);
  EXPECT_DOUBLE_EQ(rouge_l_f1("  ", "\t", true), 1.0);
  EXPECT_DOUBLE_EQ(rouge_l_f1("", "apple", true), 0.0);
  EXPECT_DOUBLE_EQ(rouge_l_f1("apple", "", true), 0.0);
}

TEST(RougeL, MatchesNaiveEnumerationOnRandomInputs) {
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a", "b", "c", "d"};
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<std::string> x(rng() % 9), y(rng() % 9);
    for (auto& t : x) t = alphabet[rng() % alphabet.size()];
    for (auto& t : y) t = alphabet[rng() % alphabet.size()];
    const auto lcs = naive_lcs(x, y);
    ASSERT_EQ(lcs_length(x, y), lcs) << join(x) << " | " << join(y);
    ASSERT_EQ(lcs_length(y, x), lcs);
    double expected = x.empty() && y.empty() ? 1.0 : 0.0;
    if (lcs > 0) {
      const double p = double(lcs) / x.size(), r = double(lcs) / y.size();
      expected = 2 * p * r / (p + r);
    }
    ASSERT_DOUBLE_EQ(rouge_l_f1(join(x), join(y), true), expected) << join(x) << " | " << join(y);
  }
}

TEST(RuleRewards, RougeLTakesTheBestReference) {
  RewardSet set(rewards_of("rewards:\n  overlap: {type: rouge-l}\n  strict: {type: rouge-l, normalize: false}\n"
                           "  ans: {type: rouge-l, field: answer}\n"));
  const auto lists = std::vector<data::CandidateList>{
      list_of({{"prompt", "sort: pear fig apple"},
               {"responses", {"apple fig pear", "fig apple pear", "Apple Fig Pear", ""}},
               {"reference", "apple fig pear"},
               {"answer", {"pear", "fig apple pear"}}})};
  const auto r = set.score(lists);
  EXPECT_EQ(r.at("overlap")[0], (std::vector<double>{1.0, 2.0 / 3.0, 1.0, 0.0}));
  EXPECT_EQ(r.at("strict")[0], (std::vector<double>{1.0, 2.0 / 3.0, 0.0, 0.0}));
  // max over "pear" (F 0.5 for 3 tokens with 1 in common) and "fig apple pear".
  EXPECT_EQ(r.at("ans")[0], (std::vector<double>{2.0 / 3.0, 1.0, 2.0 / 3.0, 0.0}));
  EXPECT_THAT(lire::testing::error_message<DataError>(
                  [&] { set.score({list_of({{"prompt", "p"}, {"responses", {"a"}}}, 4)}); }),
              HasSubstr("lists.jsonl:4: reward source 'ans' (rouge-l) needs field 'answer'"));
}

TEST(RuleRewards, NormalizeAnswer) {
  EXPECT_EQ(normalize_answer("  The  Answer\tIS\n42 ", true), "the answer is 42");
  EXPECT_EQ(normalize_answer("  A ", false), "  A ");
  EXPECT_EQ(normalize_answer("", true), "");
}

}  // namespace
}  // namespace lire::rewards

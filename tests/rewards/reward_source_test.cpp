// The `rewards:` section and the rule reward sources: exact-match, regex,
// length window, ensembles, and their errors.
#include "lire/rewards/reward_source.h"

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

TEST(RuleRewards, NormalizeAnswer) {
  EXPECT_EQ(normalize_answer("  The  Answer\tIS\n42 ", true), "the answer is 42");
  EXPECT_EQ(normalize_answer("  A ", false), "  A ");
  EXPECT_EQ(normalize_answer("", true), "");
}

}  // namespace
}  // namespace lire::rewards

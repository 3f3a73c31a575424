// Reading scored lists: well-formed files and every malformed-input error
// (each must name file:line and the reason).
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "lire/data/scored_list.h"

namespace {

using ::testing::HasSubstr;

std::string write_temp(const std::string& text) {
  char name[] = "/tmp/lire_scored_XXXXXX";
  const int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}

std::string error_of(const std::string& text) {
  const std::string path = write_temp(text);
  try {
    lire::data::read_scored_lists(path);
  } catch (const lire::DataError& e) {
    std::remove(path.c_str());
    return e.what();
  }
  std::remove(path.c_str());
  return "(no error)";
}

TEST(ScoredList, ReadsRaggedListsAndOptionalFields) {
  const auto path = write_temp(
      R"({"id": "a", "logps": [-1.5, -2], "rewards": [1, 0], "ref_logps": [-1, -1], "token_counts": [3, 4], "sft_index": 0})"
      "\n\n"
      R"({"id": 7, "logps": [-3, -1, -2], "rewards": [0.5, 0.25, 1], "ref_logps": [0, 0, 0], "token_counts": [1, 2, 3], "sft_index": -1})"
      "\n");
  const auto lists = lire::data::read_scored_lists(path);
  std::remove(path.c_str());
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].id, "a");
  EXPECT_EQ(lists[1].id, "7");
  EXPECT_EQ(lists[0].logps, (std::vector<double>{-1.5, -2}));
  EXPECT_EQ(lists[1].rewards, (std::vector<double>{0.5, 0.25, 1}));
  EXPECT_EQ(lists[0].token_counts, (std::vector<double>{3, 4}));
  EXPECT_EQ(*lists[0].sft_index, 0);
  EXPECT_EQ(*lists[1].sft_index, -1);
}

TEST(ScoredList, MalformedInputNamesFileLineAndReason) {
  EXPECT_THAT(error_of("{\"logps\": [1]}\n{not json\n"), HasSubstr(":2: invalid JSON"));
  EXPECT_THAT(error_of("{\"rewards\": [1]}\n"), HasSubstr(":1: missing field 'logps'"));
  EXPECT_THAT(error_of("{\"logps\": [1, 2], \"rewards\": [1]}\n"), HasSubstr("'rewards' has 1 entries but 'logps' has 2"));
  EXPECT_THAT(error_of("{\"logps\": [1, \"x\"]}\n"), HasSubstr("logps[1] must be a number"));
  EXPECT_THAT(error_of("{\"logps\": [NaN]}\n"), HasSubstr(":1: invalid JSON"));
  EXPECT_THAT(error_of("[1, 2]\n"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(error_of("{\"logps\": [1], \"rewards\": [1]}\n{\"logps\": [1]}\n"),
              HasSubstr(":2: field 'rewards' is missing here but present on the first record"));
  EXPECT_THAT(error_of("{\"logps\": [1, 2], \"sft_index\": 2}\n"), HasSubstr("'sft_index' 2 is outside"));
  EXPECT_THAT(error_of("{\"logps\": [1], \"token_counts\": [0]}\n"), HasSubstr("token_counts must be positive"));
  EXPECT_THAT(error_of("{\"logps\": [1], \"rewards\": 3}\n"), HasSubstr("'rewards' must be a list"));
  try {
    lire::data::read_scored_lists("/nonexistent/lists.jsonl");
    FAIL() << "no error for a missing file";
  } catch (const lire::DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/lists.jsonl: cannot open"));
  }
}

}  // namespace

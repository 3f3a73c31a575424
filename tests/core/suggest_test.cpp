// did_you_mean / closest_match / edit_distance / join_sorted.
#include "lire/core/suggest.h"

#include <gtest/gtest.h>

namespace lire {
namespace {

TEST(EditDistance, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("temprature", "temperature"), 1u);
  EXPECT_EQ(edit_distance("modle", "model"), 2u);
}

TEST(ClosestMatch, FindsPlausibleTypos) {
  const std::vector<std::string> keys = {"temperature", "reduction", "beta"};
  EXPECT_EQ(closest_match("temprature", keys), "temperature");
  EXPECT_EQ(closest_match("bta", keys), "beta");
  EXPECT_EQ(closest_match("reductoin", keys), "reduction");
}

TEST(ClosestMatch, RejectsFarAwayWords) {
  const std::vector<std::string> keys = {"temperature", "reduction", "beta"};
  EXPECT_EQ(closest_match("zzzzzzzz", keys), "");
  EXPECT_EQ(closest_match("anything", {}), "");
}

TEST(DidYouMean, FormatsSuggestion) {
  EXPECT_EQ(did_you_mean("modle", {"model", "lora"}), "; did you mean model?");
  EXPECT_EQ(did_you_mean("qqqqqqqq", {"model", "lora"}), "");
}

TEST(JoinSorted, SortsAndJoins) {
  EXPECT_EQ(join_sorted({"c", "a", "b"}), "a, b, c");
  EXPECT_EQ(join_sorted({"c", "a"}, "|"), "a|c");
  EXPECT_EQ(join_sorted({}), "");
}

}  // namespace
}  // namespace lire

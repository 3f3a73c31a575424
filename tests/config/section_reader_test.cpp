// SectionReader: typed getters, range/choice validation, unknown keys, messages.
#include "lire/config/section_reader.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "support/error_message.h"

namespace lire::config {
namespace {

using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

template <typename Fn>
std::string config_error(Fn&& fn) {
  return lire::testing::error_message<ConfigError>(std::forward<Fn>(fn));
}

ConfigTree tree_of(const std::string& yaml) { return ConfigTree::from_string(yaml, "configs/x.yaml"); }

// ------------------------------------------------------------- NumberRange

TEST(NumberRange, Contains) {
  EXPECT_TRUE(NumberRange::positive().contains(1e-12));
  EXPECT_FALSE(NumberRange::positive().contains(0.0));
  EXPECT_FALSE(NumberRange::positive().contains(-1.0));
  EXPECT_TRUE(NumberRange::non_negative().contains(0.0));
  EXPECT_FALSE(NumberRange::non_negative().contains(-1e-12));
  EXPECT_TRUE(NumberRange::unit_interval().contains(0.0));
  EXPECT_TRUE(NumberRange::unit_interval().contains(1.0));
  EXPECT_FALSE(NumberRange::unit_interval().contains(1.5));
  EXPECT_TRUE(NumberRange{}.contains(-1e300));
  EXPECT_TRUE(NumberRange{}.contains(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(NumberRange{}.contains(std::nan("")));
  const NumberRange open{0.0, 1.0, true, true};
  EXPECT_FALSE(open.contains(0.0));
  EXPECT_FALSE(open.contains(1.0));
  EXPECT_TRUE(open.contains(0.5));
}

TEST(NumberRange, Describe) {
  EXPECT_EQ(NumberRange::positive().describe(), "> 0");
  EXPECT_EQ(NumberRange::non_negative().describe(), ">= 0");
  EXPECT_EQ(NumberRange::unit_interval().describe(), "in [0, 1]");
  EXPECT_EQ(NumberRange::closed(-1, 2.5).describe(), "in [-1, 2.5]");
  EXPECT_EQ((NumberRange{0.0, 1.0, true, false}).describe(), "in (0, 1]");
  EXPECT_EQ((NumberRange{0.0, 1.0, false, true}).describe(), "in [0, 1)");
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ((NumberRange{-inf, 10.0, false, true}).describe(), "< 10");
  EXPECT_EQ((NumberRange{-inf, 10.0, false, false}).describe(), "<= 10");
  EXPECT_EQ(NumberRange{}.describe(), "any number");
}

// ------------------------------------------------------------------ getters

TEST(SectionReader, ReadsValuesAndFallbacks) {
  const ConfigTree tree = tree_of(
      "loss:\n"
      "  beta: 0.25\n"
      "  k: 3\n"
      "  flag: true\n"
      "  name: lipo\n"
      "  reduction: list-sum\n"
      "  targets: [q_proj, v_proj]\n"
      "  unset: null\n");
  SectionReader r(tree, "loss");
  EXPECT_EQ(r.name(), "loss");
  EXPECT_DOUBLE_EQ(r.number("beta", 0.1), 0.25);
  EXPECT_DOUBLE_EQ(r.number("k", 0.0), 3.0);  // integers are numbers
  EXPECT_EQ(r.integer("k", 0), 3);
  EXPECT_TRUE(r.boolean("flag", false));
  EXPECT_EQ(r.string("name", "lire"), "lipo");
  EXPECT_EQ(r.choice("reduction", "rax", {"rax", "list-sum", "list-mean"}), "list-sum");
  EXPECT_EQ(r.string_list("targets", {}), (std::vector<std::string>{"q_proj", "v_proj"}));
  // Absent and null keys give the fallback.
  EXPECT_DOUBLE_EQ(r.number("unset", 7.5), 7.5);
  EXPECT_DOUBLE_EQ(r.number("missing", 2.0), 2.0);
  EXPECT_EQ(r.integer("missing_int", -4), -4);
  EXPECT_FALSE(r.boolean("missing_flag", false));
  EXPECT_EQ(r.string("missing_s", "d"), "d");
  EXPECT_EQ(r.choice("missing_c", "rax", {"rax"}), "rax");
  EXPECT_EQ(r.string_list("missing_l", {"a"}), std::vector<std::string>{"a"});
  EXPECT_TRUE(r.has("beta"));
  EXPECT_FALSE(r.has("unset"));
  EXPECT_FALSE(r.has("missing"));
  EXPECT_NO_THROW(r.finish());
}

TEST(SectionReader, MissingOrNullSectionReadsAsEmpty) {
  const ConfigTree tree = tree_of("loss:\n");
  SectionReader null_section(tree, "loss");
  EXPECT_DOUBLE_EQ(null_section.number("beta", 0.1), 0.1);
  EXPECT_NO_THROW(null_section.finish());
  SectionReader missing(tree, "runtime");
  EXPECT_EQ(missing.integer("seed", 5), 5);
  EXPECT_NO_THROW(missing.finish());
}

TEST(SectionReader, SectionMustBeAMapping) {
  EXPECT_EQ(config_error([] { SectionReader r(tree_of("loss: lire\n"), "loss"); }),
            "configs/x.yaml:1: loss: expected a mapping, got string \"lire\"");
  EXPECT_EQ(config_error([] { SectionReader r(tree_of("a: 1\nloss: [1, 2]\n"), "loss"); }),
            "configs/x.yaml:2: loss: expected a mapping, got a list");
  EXPECT_EQ(config_error([] { SectionReader r(json(3), "loss"); }), "loss: expected a mapping, got integer 3");
}

TEST(SectionReader, TypeErrorsNameFileLineAndKey) {
  const ConfigTree tree = tree_of("x: 1\nloss:\n  a: 1\n  b: 2\n  c: 3\n  d: 4\n  beta: abc\n  flag: 1\n  s: 12\n");
  SectionReader r(tree, "loss");
  EXPECT_EQ(config_error([&] { r.number("beta", 0.1); }),
            "configs/x.yaml:7: loss.beta: expected a number, got string \"abc\"");
  EXPECT_EQ(config_error([&] { r.boolean("flag", false); }),
            "configs/x.yaml:8: loss.flag: expected true or false, got integer 1");
  EXPECT_THAT(config_error([&] { r.string("s", ""); }),
              AllOf(StartsWith("configs/x.yaml:9: loss.s: expected a string, got integer 12"),
                    HasSubstr("quote it")));
  EXPECT_THAT(config_error([&] { r.integer("beta", 0); }),
              StartsWith("configs/x.yaml:7: loss.beta: expected an integer, got string \"abc\""));
}

TEST(SectionReader, BooleansAreNotNumbers) {
  const ConfigTree tree = tree_of("loss:\n  beta: true\n");
  SectionReader r(tree, "loss");
  EXPECT_THAT(config_error([&] { r.number("beta", 0.1); }), HasSubstr("expected a number, got boolean true"));
}

TEST(SectionReader, RangeErrors) {
  const ConfigTree tree = tree_of("loss:\n  temperature: -1\n  p: 1.5\n  n: -3\n  nan: .nan\n");
  SectionReader r(tree, "loss");
  EXPECT_EQ(config_error([&] { r.number("temperature", 2.0, NumberRange::positive()); }),
            "configs/x.yaml:2: loss.temperature: must be > 0, got -1");
  EXPECT_EQ(config_error([&] { r.number("p", 0.5, NumberRange::unit_interval()); }),
            "configs/x.yaml:3: loss.p: must be in [0, 1], got 1.5");
  EXPECT_EQ(config_error([&] { r.integer("n", 0, 0); }), "configs/x.yaml:4: loss.n: must be >= 0, got -3");
  EXPECT_EQ(config_error([&] { r.integer("n", 0, -2, 5); }),
            "configs/x.yaml:4: loss.n: must be in [-2, 5], got -3");
  EXPECT_EQ(config_error([&] { r.integer("n", 0, std::numeric_limits<std::int64_t>::min(), -5); }),
            "configs/x.yaml:4: loss.n: must be <= -5, got -3");
  EXPECT_THAT(config_error([&] { r.number("nan", 0.5); }), HasSubstr("loss.nan: must be a number, got nan"));
}

TEST(SectionReader, IntegerAcceptsIntegralFloatsOnly) {
  const ConfigTree tree = tree_of("train:\n  steps: 3.0\n  half: 2.5\n  big: 1e30\n");
  SectionReader r(tree, "train");
  EXPECT_EQ(r.integer("steps", 0), 3);
  EXPECT_EQ(config_error([&] { r.integer("half", 0); }),
            "configs/x.yaml:3: train.half: expected an integer, got number 2.5");
  EXPECT_THAT(config_error([&] { r.integer("big", 0); }), HasSubstr("train.big: expected an integer"));
}

TEST(SectionReader, ChoiceListsChoicesAndSuggests) {
  const ConfigTree tree = tree_of("loss:\n  reduction: lsit-sum\n  other: zzzzzzzzzz\n  n: 3\n");
  SectionReader r(tree, "loss");
  const std::vector<std::string> choices = {"rax", "list-sum", "list-mean"};
  const std::string message = config_error([&] { r.choice("reduction", "rax", choices); });
  EXPECT_THAT(message, StartsWith("configs/x.yaml:2: loss.reduction: "));
  EXPECT_THAT(message, HasSubstr("rax, list-sum, list-mean"));
  EXPECT_THAT(message, HasSubstr("'lsit-sum'"));
  EXPECT_THAT(message, HasSubstr("did you mean list-sum?"));
  EXPECT_THAT(config_error([&] { r.choice("other", "rax", choices); }),
              AllOf(HasSubstr("rax, list-sum, list-mean"), Not(HasSubstr("did you mean"))));
  EXPECT_THAT(config_error([&] { r.choice("n", "rax", choices); }), HasSubstr("expected a string, got integer 3"));
}

TEST(SectionReader, StringList) {
  const ConfigTree tree = tree_of("lora:\n  one: q_proj\n  many: [a, b]\n  empty: []\n  bad: [a, 2]\n  map: {a: 1}\n");
  SectionReader r(tree, "lora");
  EXPECT_EQ(r.string_list("one", {}), std::vector<std::string>{"q_proj"});
  EXPECT_EQ(r.string_list("many", {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.string_list("empty", {"x"}).empty());
  EXPECT_THAT(config_error([&] { r.string_list("bad", {}); }),
              AllOf(StartsWith("configs/x.yaml:5: lora.bad: "), HasSubstr("item 2 is integer 2")));
  EXPECT_THAT(config_error([&] { r.string_list("map", {}); }), HasSubstr("expected a list of strings, got a mapping"));
}

// ----------------------------------------------------------- unknown keys

TEST(SectionReader, UnknownKeyWithSuggestionNamesFileAndLine) {
  const ConfigTree tree = tree_of("loss:\n  name: lire\n  temprature: 3\n");
  SectionReader r(tree, "loss");
  r.string("name", "lire");
  r.number("temperature", 2.0);
  EXPECT_EQ(config_error([&] { r.finish(); }),
            "configs/x.yaml:3: unknown key loss.temprature; did you mean loss.temperature?");
}

TEST(SectionReader, UnknownKeysReportedInSortedOrder) {
  const ConfigTree tree = tree_of("loss:\n  zeta: 1\n  alpha: 2\n  beta: 3\n");
  SectionReader r(tree, "loss");
  r.number("beta", 0.1);
  EXPECT_THAT(config_error([&] { r.finish(); }), StartsWith("configs/x.yaml:3: unknown key loss.alpha"));
}

TEST(SectionReader, UnknownKeyWithoutCloseMatch) {
  const ConfigTree tree = tree_of("loss:\n  qqqqqqqqqq: 1\n");
  SectionReader r(tree, "loss");
  r.number("beta", 0.1);
  EXPECT_EQ(config_error([&] { r.finish(); }), "configs/x.yaml:2: unknown key loss.qqqqqqqqqq");
}

TEST(SectionReader, UnknownKeyFromOverride) {
  ConfigTree tree = tree_of("loss:\n  name: lire\n");
  tree.apply_override("loss.tempreature=3");
  SectionReader r(tree, "loss");
  r.string("name", "lire");
  r.number("temperature", 2.0);
  EXPECT_EQ(config_error([&] { r.finish(); }),
            "override 'loss.tempreature=3': unknown key loss.tempreature; did you mean loss.temperature?");
}

TEST(SectionReader, OverrideLocationInTypeError) {
  ConfigTree tree = tree_of("loss:\n  beta: 0.1\n");
  tree.apply_override("loss.beta=abc");
  SectionReader r(tree, "loss");
  EXPECT_EQ(config_error([&] { r.number("beta", 0.1); }),
            "override 'loss.beta=abc': loss.beta: expected a number, got string \"abc\"");
}

TEST(SectionReader, AllowAndRawMarkKeysKnown) {
  const ConfigTree tree = tree_of("loss:\n  free: {a: [1, 2]}\n  later: x\n  gone: null\n");
  SectionReader r(tree, "loss");
  const json* free = r.raw("free");
  ASSERT_NE(free, nullptr);
  EXPECT_EQ(*free, json({{"a", {1, 2}}}));
  EXPECT_EQ(r.raw("gone"), nullptr);
  EXPECT_EQ(r.raw("absent"), nullptr);
  r.allow("later");
  EXPECT_NO_THROW(r.finish());
}

TEST(SectionReader, HasDoesNotMarkKnown) {
  const ConfigTree tree = tree_of("loss:\n  beta: 1\n");
  SectionReader r(tree, "loss");
  EXPECT_TRUE(r.has("beta"));
  EXPECT_THAT(config_error([&] { r.finish(); }), HasSubstr("unknown key loss.beta"));
}

TEST(SectionReader, BareJsonHasNoLocationPrefix) {
  const json options = {{"temprature", 3}, {"beta", "x"}};
  SectionReader r(options, "loss");
  EXPECT_EQ(config_error([&] { r.number("beta", 0.1); }), "loss.beta: expected a number, got string \"x\"");
  r.number("temperature", 2.0);
  EXPECT_EQ(config_error([&] { r.finish(); }), "unknown key loss.temprature; did you mean loss.temperature?");
  SectionReader empty(json(nullptr), "loss");
  EXPECT_NO_THROW(empty.finish());
}

TEST(SectionReader, FailFormatsLikeTheGetters) {
  const ConfigTree tree = tree_of("runtime:\n  device: gpu\n");
  SectionReader r(tree, "runtime");
  EXPECT_EQ(config_error([&] { r.fail("device", "bad device"); }), "configs/x.yaml:2: runtime.device: bad device");
  EXPECT_EQ(config_error([&] { r.fail("other", "oops"); }), "configs/x.yaml:1: runtime.other: oops");
}

// ---------------------------------------------------------- nested sections

TEST(SectionReader, NestedSectionKnowsTheTree) {
  const ConfigTree tree = tree_of(
      "rewards:\n"
      "  weight: 1\n"
      "  rm:\n"
      "    path: /models/rm\n"
      "    batch: x\n"
      "    extar: 1\n");
  SectionReader r(tree, "rewards");
  r.number("weight", 1.0);
  SectionReader rm = r.section("rm");
  EXPECT_EQ(rm.name(), "rewards.rm");
  EXPECT_EQ(rm.string("path", ""), "/models/rm");
  EXPECT_EQ(config_error([&] { rm.integer("batch", 8); }),
            "configs/x.yaml:5: rewards.rm.batch: expected an integer, got string \"x\"");
  rm.allow("extra");
  EXPECT_EQ(config_error([&] { rm.finish(); }),
            "configs/x.yaml:6: unknown key rewards.rm.extar; did you mean rewards.rm.extra?");
  EXPECT_NO_THROW(r.finish());  // `rm` is known in the parent
}

TEST(SectionReader, NestedSectionMustBeAMapping) {
  const ConfigTree tree = tree_of("rewards:\n  rm: 3\n");
  SectionReader r(tree, "rewards");
  EXPECT_EQ(config_error([&] { r.section("rm"); }), "configs/x.yaml:2: rewards.rm: expected a mapping, got integer 3");
  SectionReader missing = r.section("absent");
  EXPECT_NO_THROW(missing.finish());
}

TEST(SectionReader, NestedSectionOfBareJson) {
  const json node = {{"rm", {{"path", 3}}}};
  SectionReader r(node, "rewards");
  SectionReader rm = r.section("rm");
  EXPECT_EQ(config_error([&] { rm.string("path", ""); }),
            "rewards.rm.path: expected a string, got integer 3 (quote it to use it as a string)");
}

}  // namespace
}  // namespace lire::config

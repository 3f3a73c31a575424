// Candidate-list records: every accepted format, every validation error (each
// naming file:line and the reason), skipping, streaming, and the tokenization
// rule on the tiny Llama tokenizer.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/config/config.h"
#include "lire/config/config_tree.h"
#include "lire/config/data_options.h"
#include "lire/core/error.h"
#include "lire/data/candidate_list.h"
#include "lire/data/prompt_template.h"
#include "lire/data/tokenizer.h"
#include "support/error_message.h"

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace lire::data;

const std::string kTokenizerFolder = std::string(LIRE_TEST_FIXTURES) + "/hf/llama_tiny";

// A temporary JSONL file, removed at the end of the test.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/lire_candidates_XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

std::vector<CandidateList> read_text(const std::string& text, const ReadOptions& opts = {}) {
  TempFile file(text);
  return read_candidate_lists(file.path, opts);
}

CandidateList read_one(const std::string& line) {
  auto lists = read_text(line + "\n");
  EXPECT_EQ(lists.size(), 1u);
  return lists.empty() ? CandidateList{} : lists[0];
}

// The message of the DataError reading `text` throws, with the temporary file
// name replaced by "F" so tests can match "F:2: ...".
std::string error_of(const std::string& text, const ReadOptions& opts = {}) {
  TempFile file(text);
  try {
    read_candidate_lists(file.path, opts);
  } catch (const lire::DataError& e) {
    std::string message = e.what();
    for (auto pos = message.find(file.path); pos != std::string::npos; pos = message.find(file.path))
      message.replace(pos, file.path.size(), "F");
    return message;
  }
  return "(no error)";
}

const Tokenizer& tiny_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_folder(kTokenizerFolder);
  return tokenizer;
}

std::vector<std::int64_t> concat(std::vector<std::int64_t> a, const std::vector<std::int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ------------------------------------------------------------------ formats

TEST(CandidateList, CanonicalRecordWithEveryField) {
  const auto list = read_one(
      R"({"id": "p1", "prompt": "Q?", "responses": ["a", "b", "c"], "rewards": [0.5, -1, 2e3],)"
      R"( "ranks": [2, 3, 1], "labels": [0.5, 0, 1], "ref_logps": [-1.5, -2, -3],)"
      R"( "ref_token_counts": [3, 4, 5], "human": [true, false, false], "input": "ctx", "system": "sys",)"
      R"( "meta": {"source": "x"}})");
  EXPECT_EQ(list.format, RecordFormat::kCanonical);
  EXPECT_STREQ(record_format_name(list.format), "canonical");
  EXPECT_EQ(list.id, "p1");
  EXPECT_EQ(list.prompt, "Q?");
  EXPECT_EQ(list.input, "ctx");
  EXPECT_EQ(list.system, "sys");
  EXPECT_EQ(list.responses, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(*list.rewards, (std::vector<double>{0.5, -1, 2000}));
  EXPECT_EQ(*list.ranks, (std::vector<std::int64_t>{2, 3, 1}));
  EXPECT_EQ(*list.labels, (std::vector<double>{0.5, 0, 1}));
  EXPECT_EQ(*list.ref_logps, (std::vector<double>{-1.5, -2, -3}));
  EXPECT_EQ(*list.ref_token_counts, (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_EQ(*list.human, (std::vector<bool>{true, false, false}));
  EXPECT_FALSE(list.prompt_ids);
  EXPECT_FALSE(list.responses_ids);
  EXPECT_EQ(list.raw["meta"]["source"], "x");  // unknown fields are kept for writers
  EXPECT_EQ(list.line, 1u);
  EXPECT_THAT(list.where(), HasSubstr(":1"));
}

TEST(CandidateList, OptionalFieldsAbsentAndIdDefaults) {
  const auto lists = read_text(
      "\n"
      R"({"prompt": "Q", "responses": ["only one"]})"
      "\r\n"
      R"({"id": 42, "prompt": "", "responses": ["x", ""], "ranks": [1.0, 2]})"
      "\n");
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].line, 2u);
  EXPECT_EQ(lists[0].id, lists[0].file + ":2");
  EXPECT_FALSE(lists[0].rewards);
  EXPECT_FALSE(lists[0].ranks);
  EXPECT_FALSE(lists[0].labels);
  EXPECT_FALSE(lists[0].human);
  EXPECT_EQ(lists[1].id, "42");
  EXPECT_EQ(*lists[1].ranks, (std::vector<std::int64_t>{1, 2}));  // 1.0 is an integer
}

TEST(CandidateList, Pairs) {
  const auto plain = read_one(R"({"prompt": "Q", "chosen": "good", "rejected": "bad"})");
  EXPECT_EQ(plain.format, RecordFormat::kPairs);
  EXPECT_EQ(plain.prompt, "Q");
  EXPECT_EQ(plain.responses, (std::vector<std::string>{"good", "bad"}));
  EXPECT_EQ(*plain.ranks, (std::vector<std::int64_t>{1, 2}));
  EXPECT_FALSE(plain.rewards);

  const auto scored = read_one(R"({"prompt": "Q", "chosen": "g", "rejected": "b", "score_chosen": 8.5, "score_rejected": 3})");
  EXPECT_EQ(*scored.rewards, (std::vector<double>{8.5, 3}));

  // A pair annotated by lire-score: explicit rewards and ref_logps are read too.
  const auto annotated = read_one(
      R"({"prompt": "Q", "chosen": "g", "rejected": "b", "score_chosen": 8, "score_rejected": 3,)"
      R"( "rewards": [0.1, 0.9], "ref_logps": [-3, -4], "ref_token_counts": [2, 2]})");
  EXPECT_EQ(*annotated.rewards, (std::vector<double>{0.1, 0.9}));
  EXPECT_EQ(*annotated.ref_logps, (std::vector<double>{-3, -4}));
  EXPECT_EQ(*annotated.ranks, (std::vector<std::int64_t>{1, 2}));
}

TEST(CandidateList, AnthropicHHDialogues) {
  const auto list = read_one(
      R"({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: A joke?\n\nAssistant: Why did the chicken cross the road?",)"
      R"( "rejected": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: A joke?\n\nAssistant: No."})");
  EXPECT_EQ(list.format, RecordFormat::kHHDialogue);
  EXPECT_STREQ(record_format_name(list.format), "hh");
  EXPECT_EQ(list.prompt, "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: A joke?\n\nAssistant:");
  EXPECT_EQ(list.responses, (std::vector<std::string>{"Why did the chicken cross the road?", "No."}));
  EXPECT_EQ(*list.ranks, (std::vector<std::int64_t>{1, 2}));
  // The hh template leaves such a prompt as it is.
  EXPECT_EQ(apply_template("hh", list.prompt), list.prompt);

  // Responses sharing their first words: the prompt still ends at the cue.
  const auto shared = read_one(
      R"({"chosen": "\n\nHuman: Q\n\nAssistant: I think yes", "rejected": "\n\nHuman: Q\n\nAssistant: I think no"})");
  EXPECT_EQ(shared.prompt, "\n\nHuman: Q\n\nAssistant:");
  EXPECT_EQ(shared.responses, (std::vector<std::string>{"I think yes", "I think no"}));

  // Only one leading space is removed; an empty last turn stays empty.
  const auto spaces = read_one(R"({"chosen": "\n\nHuman: Q\n\nAssistant:  two", "rejected": "\n\nHuman: Q\n\nAssistant:"})");
  EXPECT_EQ(spaces.responses, (std::vector<std::string>{" two", ""}));
}

TEST(CandidateList, ProRecords) {
  // PRO's HH data: one prefix (a list of turns) per suffix, markers replaced.
  const auto hh = read_one(
      R"({"prefix": [["<|prompter|>Hi", "<|assistant|>Hello", "<|prompter|>A joke?", "<|assistant|>"],)"
      R"( ["<|prompter|>Hi", "<|assistant|>Hello", "<|prompter|>A joke?", "<|assistant|>"]],)"
      R"( "suffix": ["Sure: ...", "No."], "reward": [1.5, -0.5], "sft_index": 0, "meta": {}})");
  EXPECT_EQ(hh.format, RecordFormat::kPRO);
  EXPECT_EQ(hh.prompt, "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: A joke?\n\nAssistant:");
  EXPECT_EQ(hh.responses, (std::vector<std::string>{"Sure: ...", "No."}));
  EXPECT_EQ(*hh.rewards, (std::vector<double>{1.5, -0.5}));
  EXPECT_FALSE(hh.ranks);
  EXPECT_EQ(hh.raw["sft_index"], 0);

  // PRO's summarisation data: string prefixes; no reward -> list order is the ranking.
  const auto tldr = read_one(R"({"prefix": ["POST: text\nTL;DR:", "POST: text\nTL;DR:", "POST: text\nTL;DR:"],)"
                             R"( "suffix": [" a", " b", " c"]})");
  EXPECT_EQ(tldr.prompt, "POST: text\nTL;DR:");
  EXPECT_EQ(tldr.responses, (std::vector<std::string>{" a", " b", " c"}));
  EXPECT_EQ(*tldr.ranks, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_FALSE(tldr.rewards);
}

TEST(CandidateList, PreTokenizedRecords) {
  const auto ids_only = read_one(R"({"id": "t", "prompt_ids": [1, 5, 6], "responses_ids": [[7, 2], [8, 9, 2]], "rewards": [1, 0]})");
  EXPECT_EQ(ids_only.format, RecordFormat::kCanonical);
  EXPECT_EQ(ids_only.prompt, "");
  EXPECT_TRUE(ids_only.responses.empty());
  EXPECT_EQ(ids_only.size(), 2u);
  EXPECT_EQ(*ids_only.prompt_ids, (std::vector<std::int64_t>{1, 5, 6}));
  EXPECT_EQ((*ids_only.responses_ids)[1], (std::vector<std::int64_t>{8, 9, 2}));

  const auto both = read_one(R"({"prompt": "Q", "responses": ["a", "b"], "prompt_ids": [1], "responses_ids": [[3], [4]]})");
  EXPECT_EQ(both.responses.size(), 2u);
  EXPECT_EQ(both.responses_ids->size(), 2u);

  ReadOptions opts;
  opts.vocab_size = 10;
  EXPECT_EQ(read_text(R"({"prompt_ids": [9], "responses_ids": [[0]]})" "\n", opts).size(), 1u);
}

// ------------------------------------------------------------------- errors

TEST(CandidateList, MalformedRecordsNameFileLineAndReason) {
  const std::string ok = R"({"prompt": "Q", "responses": ["a", "b"]})" "\n";
  EXPECT_THAT(error_of(ok + "{not json\n"), StartsWith("F:2: invalid JSON"));
  EXPECT_THAT(error_of(ok + R"({"prompt": "Q", "responses": ["a", "b"], "rewards": [NaN, 1]})" "\n"),
              HasSubstr("F:2: invalid JSON"));
  EXPECT_THAT(error_of(ok + R"({"prompt": "Q", "responses": ["a", "b"], "rewards": [NaN, 1]})" "\n"),
              HasSubstr("NaN and Infinity are not JSON"));
  EXPECT_THAT(error_of("[1, 2]\n"), StartsWith("F:1: a record must be a JSON object"));
  EXPECT_THAT(error_of(R"({"responses": ["a"]})" "\n"), StartsWith("F:1: missing 'prompt'"));
  EXPECT_THAT(error_of(R"({"id": 1})" "\n"), StartsWith("F:1: missing 'prompt'"));
  EXPECT_THAT(error_of(R"({"prompt": "Q"})" "\n"), StartsWith("F:1: missing 'responses'"));
  EXPECT_THAT(error_of(R"({"prompt": 3, "responses": ["a"]})" "\n"), StartsWith("F:1: 'prompt' must be a string"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": "a"})" "\n"),
              StartsWith("F:1: 'responses' must be a list of strings"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", 2]})" "\n"),
              StartsWith("F:1: 'responses' must be a list of strings, but responses[1] is 2"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": []})" "\n"), StartsWith("F:1: 'responses' is an empty list"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "rewards": [1]})" "\n"),
              StartsWith("F:1: 'rewards' has 1 entries but the list has 2 responses"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "rewards": [1, "nan"]})" "\n"),
              StartsWith("F:1: rewards[1] must be a number, got \"nan\""));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "rewards": [1, 1e999]})" "\n"),
              StartsWith("F:1: invalid JSON ([json.exception.out_of_range.406] number overflow"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "rewards": 1})" "\n"),
              StartsWith("F:1: 'rewards' must be a list of numbers"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "ranks": [1, 0]})" "\n"),
              StartsWith("F:1: ranks[1] must be a positive integer, got 0"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "ranks": [1, 1.5]})" "\n"),
              StartsWith("F:1: ranks[1] must be a positive integer, got 1.5"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "labels": [0.5, 1.25]})" "\n"),
              StartsWith("F:1: labels[1] = 1.25 is outside [0, 1]"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "labels": [-0.5, 1]})" "\n"),
              StartsWith("F:1: labels[0] = -0.5 is outside [0, 1]"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "human": [true]})" "\n"),
              StartsWith("F:1: 'human' has 1 entries but the list has 2 responses"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "human": [true, 0]})" "\n"),
              StartsWith("F:1: human[1] must be true or false, got 0"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "ref_token_counts": [3, -1]})" "\n"),
              StartsWith("F:1: ref_token_counts[1] must be a positive integer"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "ref_logps": [-1, "x"]})" "\n"),
              StartsWith("F:1: ref_logps[1] must be a number"));
  EXPECT_THAT(error_of(R"({"id": [1], "prompt": "Q", "responses": ["a"]})" "\n"),
              StartsWith("F:1: 'id' must be a string or an integer"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a"], "chosen": "b", "rejected": "c"})" "\n"),
              StartsWith("F:1: ambiguous record"));
}

TEST(CandidateList, NonFiniteNumbersFromProgrammaticRecords) {
  // JSON text cannot hold NaN, but records built in memory (lire-sample) can.
  const nlohmann::json record = {{"prompt", "Q"}, {"responses", {"a", "b"}}, {"rewards", {1.0, std::nan("")}}};
  try {
    parse_candidate_list(record, "mem", 7);
    FAIL() << "expected a DataError";
  } catch (const lire::DataError& e) {
    EXPECT_STREQ(e.what(), "mem:7: rewards[1] is not finite");
  }
  const nlohmann::json pair = {{"prompt", "Q"}, {"chosen", "a"}, {"rejected", "b"},
                               {"score_chosen", 1.0}, {"score_rejected", INFINITY}};
  EXPECT_THROW(parse_candidate_list(pair, "mem", 1), lire::DataError);
  const auto ok = parse_candidate_list({{"prompt", "Q"}, {"responses", {"a"}}}, "mem", 3);
  EXPECT_EQ(ok.id, "mem:3");
}

TEST(CandidateList, MalformedPairsDialoguesAndProRecords) {
  EXPECT_THAT(error_of(R"({"prompt": "Q", "chosen": "a"})" "\n"),
              StartsWith("F:1: a pair record needs both 'chosen' and 'rejected'"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"})" "\n"),
              HasSubstr("conversational message lists are not supported"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "chosen": "a", "rejected": "b", "score_chosen": 1})" "\n"),
              StartsWith("F:1: give both 'score_chosen' and 'score_rejected'"));
  EXPECT_THAT(error_of(R"({"chosen": "A", "rejected": "B"})" "\n"),
              StartsWith("F:1: no 'prompt' and no \"\\n\\nAssistant:\" in the text"));
  EXPECT_THAT(error_of(R"({"chosen": "\n\nHuman: Q\n\nAssistant: A"})" "\n"),
              StartsWith("F:1: an HH dialogue record needs both 'chosen' and 'rejected'"));
  EXPECT_THAT(error_of(R"({"suffix": ["a", "b"]})" "\n"), StartsWith("F:1: a PRO record ('suffix') needs 'prefix'"));
  EXPECT_THAT(error_of(R"({"prefix": ["p"], "suffix": ["a", "b"]})" "\n"),
              StartsWith("F:1: 'prefix' has 1 entries but the list has 2 responses"));
  EXPECT_THAT(error_of(R"({"prefix": ["p", "q"], "suffix": ["a", "b"]})" "\n"),
              StartsWith("F:1: prefix[1] differs from prefix[0]"));
  EXPECT_THAT(error_of(R"({"prefix": ["p", "p"], "suffix": ["a", "b"], "reward": [1, "x"]})" "\n"),
              StartsWith("F:1: reward[1] must be a number"));
}

TEST(CandidateList, TokenIdsAreCheckedAgainstTheVocabulary) {
  ReadOptions opts;
  opts.vocab_size = 512;
  EXPECT_THAT(error_of(R"({"prompt_ids": [1, 512], "responses_ids": [[3]]})" "\n", opts),
              StartsWith("F:1: prompt_ids[1] = 512 is outside the vocabulary [0, 512)"));
  EXPECT_THAT(error_of(R"({"prompt_ids": [1], "responses_ids": [[3], [4, -1]]})" "\n", opts),
              StartsWith("F:1: responses_ids[1][1] = -1 is outside the vocabulary [0, 512)"));
  EXPECT_THAT(error_of(R"({"prompt_ids": [1], "responses_ids": [[3], []]})" "\n"),
              StartsWith("F:1: responses_ids[1] is empty"));
  EXPECT_THAT(error_of(R"({"prompt_ids": [1], "responses_ids": [[3.5]]})" "\n"),
              StartsWith("F:1: responses_ids[0][0] must be an integer token id"));
  EXPECT_THAT(error_of(R"({"prompt_ids": [1], "responses_ids": []})" "\n"),
              StartsWith("F:1: 'responses_ids' is an empty list"));
  EXPECT_THAT(error_of(R"({"prompt": "Q", "responses": ["a", "b"], "responses_ids": [[3]]})" "\n"),
              StartsWith("F:1: 'responses_ids' has 1 entries but the list has 2 responses"));
  // Without a vocabulary size only negative ids are rejected.
  EXPECT_THAT(error_of(R"({"prompt_ids": [99999], "responses_ids": [[3]]})" "\n"), "(no error)");
  EXPECT_THAT(error_of(R"({"prompt_ids": [-2], "responses_ids": [[3]]})" "\n"), StartsWith("F:1: prompt_ids[0] = -2"));
}

TEST(CandidateList, DuplicateIdsOnlyWhenAsked) {
  const std::string text = R"({"id": "a", "prompt": "Q", "responses": ["x"]})" "\n"
                           R"({"prompt": "Q", "responses": ["x"]})" "\n"
                           R"({"id": "a", "prompt": "R", "responses": ["y"]})" "\n";
  EXPECT_EQ(read_text(text).size(), 3u);
  ReadOptions opts;
  opts.check_duplicate_ids = true;
  EXPECT_THAT(error_of(text, opts), StartsWith("F:3: duplicate id 'a' (first on line 1)"));
}

TEST(CandidateList, MissingFileIsAnError) {
  EXPECT_THROW(read_candidate_lists("/nonexistent/lists.jsonl"), lire::DataError);
  EXPECT_THROW(read_candidate_lists("/tmp"), lire::DataError);
}

TEST(CandidateList, SkipInvalidCountsEverySkippedRecord) {
  const std::string text = R"({"prompt": "Q", "responses": ["a"]})" "\n"
                           "{broken\n"
                           "\n"
                           R"({"prompt": "Q", "responses": ["a", "b"], "rewards": [1]})" "\n"
                           R"({"prompt": "R", "responses": ["c"]})" "\n";
  ReadOptions opts;
  opts.skip_invalid = true;
  TempFile file(text);
  ReadStats stats;
  const auto lists = read_candidate_lists(file.path, opts, &stats);
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[1].line, 5u);
  EXPECT_EQ(stats.lines, 5u);
  EXPECT_EQ(stats.blank_lines, 1u);
  EXPECT_EQ(stats.records, 2u);
  EXPECT_EQ(stats.skipped, 2u);
  ASSERT_EQ(stats.errors.size(), 2u);
  EXPECT_THAT(stats.errors[0], HasSubstr(":2: invalid JSON"));
  EXPECT_THAT(stats.errors[1], HasSubstr(":4: 'rewards' has 1 entries"));

  opts.max_kept_errors = 1;
  CandidateListReader reader(file.path, opts);
  CandidateList list;
  while (reader.next(list)) {
  }
  EXPECT_EQ(reader.stats().skipped, 2u);
  EXPECT_EQ(reader.stats().errors.size(), 1u);
}

TEST(CandidateList, StreamingReaderEqualsWholeFileReader) {
  std::string text;
  for (int i = 0; i < 50; ++i) {
    text += R"({"id": ")" + std::to_string(i) + R"(", "prompt": "Q)" + std::to_string(i) + R"(", "responses": ["a", "b"], "rewards": [)" +
            std::to_string(i) + ", 0.5]}\n";
    if (i % 7 == 0) text += R"({"prompt": "P", "chosen": "c", "rejected": "r"})" "\n\n";
  }
  TempFile file(text);
  const auto whole = read_candidate_lists(file.path);
  CandidateListReader reader(file.path);
  CandidateList list;
  std::size_t n = 0;
  while (reader.next(list)) {
    ASSERT_LT(n, whole.size());
    EXPECT_EQ(list.id, whole[n].id);
    EXPECT_EQ(list.line, whole[n].line);
    EXPECT_EQ(list.prompt, whole[n].prompt);
    EXPECT_EQ(list.responses, whole[n].responses);
    EXPECT_EQ(list.rewards, whole[n].rewards);
    EXPECT_EQ(list.ranks, whole[n].ranks);
    EXPECT_EQ(list.raw, whole[n].raw);
    ++n;
  }
  EXPECT_EQ(n, whole.size());
  EXPECT_EQ(n, 58u);
  EXPECT_EQ(reader.stats().records, 58u);
  EXPECT_EQ(reader.stats().blank_lines, 8u);
  EXPECT_FALSE(reader.next(list));  // stays at the end
}

// ------------------------------------------------------------- tokenization

TEST(CandidateList, TokenizeRule) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const auto list = read_one(R"({"prompt": "Hello", "responses": ["world", "The GNU"]})");
  const auto t = tokenize(list, tokenizer);
  // prompt = [BOS] + encode(prompt); response = encode(response) + [EOS],
  // each response encoded on its own (so it starts with the dummy-prefix space).
  EXPECT_EQ(t.prompt_ids, concat({tokenizer.bos_id()}, tokenizer.encode("Hello")));
  ASSERT_EQ(t.response_ids.size(), 2u);
  EXPECT_EQ(t.response_ids[0], concat(tokenizer.encode("world"), {tokenizer.eos_id()}));
  EXPECT_EQ(t.response_ids[1], concat(tokenizer.encode("The GNU"), {tokenizer.eos_id()}));
  EXPECT_EQ(tokenizer.encode_pieces("world")[0].rfind("\xE2\x96\x81", 0), 0u);  // "▁..."
  EXPECT_FALSE(t.prompt_truncated);
  EXPECT_EQ(t.responses_truncated, 0u);

  TokenizeOptions no_eos;
  no_eos.append_eos = false;
  EXPECT_EQ(tokenize(list, tokenizer, no_eos).response_ids[0], tokenizer.encode("world"));
}

// Encoder-decoder (T5) prompts end with EOS, as HF's T5Tokenizer encodes the
// encoder input; a left-truncated prompt keeps its last tokens, EOS among them.
TEST(CandidateList, EncoderDecoderPromptsEndWithEos) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const auto list = read_one(R"({"prompt": "The GNU General Public License", "responses": ["world"]})");
  TokenizeOptions opts;
  opts.prompt_eos = true;
  const auto prompt = tokenizer.encode("The GNU General Public License");
  const auto t = tokenize(list, tokenizer, opts);
  EXPECT_EQ(t.prompt_ids, concat(concat({tokenizer.bos_id()}, prompt), {tokenizer.eos_id()}));
  EXPECT_EQ(t.response_ids[0], concat(tokenizer.encode("world"), {tokenizer.eos_id()}));
  opts.max_prompt_tokens = 4;
  EXPECT_EQ(tokenize(list, tokenizer, opts).prompt_ids,
            concat(concat({tokenizer.bos_id()}, std::vector<std::int64_t>(prompt.end() - 2, prompt.end())),
                   {tokenizer.eos_id()}));
  // Pre-tokenized prompt_ids are used as they are.
  const auto ids = read_one(R"({"prompt_ids": [5, 6, 7], "responses_ids": [[8]]})");
  EXPECT_EQ(tokenize(ids, tokenizer, opts).prompt_ids, (std::vector<std::int64_t>{5, 6, 7}));
}

TEST(CandidateList, TokenizeAppliesTheTemplate) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const auto list = read_one(R"({"prompt": "Translate.", "input": "Bonjour", "responses": ["Hello"]})");
  TokenizeOptions opts;
  opts.prompt_template = "alpaca";
  EXPECT_EQ(tokenize(list, tokenizer, opts).prompt_ids,
            concat({tokenizer.bos_id()}, tokenizer.encode(apply_template("alpaca", "Translate.", "Bonjour"))));
  // The raw template has no place for an input: an error naming the record.
  try {
    tokenize(list, tokenizer);
    FAIL() << "expected a DataError";
  } catch (const lire::DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr(":1: prompt template 'raw' takes no separate input"));
  }
  opts.prompt_template = "alpacca";
  EXPECT_THROW(tokenize(list, tokenizer, opts), lire::ConfigError);
}

TEST(CandidateList, TokenizeTruncates) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const std::string long_prompt = "The GNU General Public License, version 3 (2007).";
  const auto list = read_one(R"({"prompt": ")" + long_prompt + R"(", "responses": ["Hello world", "Hi"]})");
  const auto prompt = tokenizer.encode(long_prompt);
  const auto hello = tokenizer.encode("Hello world");  // 9 tokens
  const auto hi = tokenizer.encode("Hi");
  ASSERT_EQ(hello.size(), 9u);

  TokenizeOptions opts;
  opts.max_prompt_tokens = 5;
  opts.max_response_tokens = 9;
  const auto t = tokenize(list, tokenizer, opts);
  // Prompt: BOS kept, then the last 4 tokens.
  EXPECT_EQ(t.prompt_ids, concat({tokenizer.bos_id()}, std::vector<std::int64_t>(prompt.end() - 4, prompt.end())));
  EXPECT_TRUE(t.prompt_truncated);
  // "Hello world" fits in 9 tokens but its EOS does not: no EOS.
  EXPECT_EQ(t.response_ids[0], hello);
  // "Hi" and its EOS fit.
  EXPECT_EQ(t.response_ids[1], concat(hi, {tokenizer.eos_id()}));
  EXPECT_EQ(t.responses_truncated, 1u);

  opts.max_response_tokens = 4;
  EXPECT_EQ(tokenize(list, tokenizer, opts).response_ids[0], std::vector<std::int64_t>(hello.begin(), hello.begin() + 4));
  opts.max_prompt_tokens = 1;
  EXPECT_EQ(tokenize(list, tokenizer, opts).prompt_ids, std::vector<std::int64_t>{tokenizer.bos_id()});
  opts.max_prompt_tokens = -1;
  EXPECT_THROW(tokenize(list, tokenizer, opts), lire::ConfigError);
}

TEST(CandidateList, TokenizePassesPreTokenizedIdsThrough) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const auto list = read_one(R"({"prompt_ids": [5, 6, 7], "responses_ids": [[8, 9], [10]]})");
  TokenizeOptions opts;
  opts.prompt_template = "alpaca";  // not applied to ids
  const auto t = tokenize(list, tokenizer, opts);
  EXPECT_EQ(t.prompt_ids, (std::vector<std::int64_t>{5, 6, 7}));  // no BOS added
  EXPECT_EQ(t.response_ids, (std::vector<std::vector<std::int64_t>>{{8, 9}, {10}}));  // no EOS added

  // Truncation still applies; a leading BOS in the ids is kept.
  const auto with_bos = read_one(R"({"prompt_ids": [1, 5, 6, 7], "responses_ids": [[8, 9, 2]]})");
  opts.max_prompt_tokens = 2;
  opts.max_response_tokens = 2;
  const auto cut = tokenize(with_bos, tokenizer, opts);
  EXPECT_EQ(cut.prompt_ids, (std::vector<std::int64_t>{1, 7}));
  EXPECT_EQ(cut.response_ids[0], (std::vector<std::int64_t>{8, 9}));

  // Ids beyond the tokenizer's vocabulary are caught even when the reader had no vocab size.
  const auto outside = read_one(R"({"prompt_ids": [1, 600], "responses_ids": [[3]]})");
  EXPECT_THROW(tokenize(outside, tokenizer), lire::DataError);
}

TEST(CandidateList, TokenizeRejectsEmptySequences) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const auto list = read_one(R"({"prompt": "Q", "responses": ["", "a"]})");
  EXPECT_EQ(tokenize(list, tokenizer).response_ids[0], std::vector<std::int64_t>{tokenizer.eos_id()});
  TokenizeOptions opts;
  opts.append_eos = false;
  EXPECT_THROW(tokenize(list, tokenizer, opts), lire::DataError);
  const auto no_prompt = read_one(R"({"prompt_ids": [], "responses_ids": [[3]]})");
  EXPECT_THROW(tokenize(no_prompt, tokenizer), lire::DataError);
}

TEST(CandidateList, PretokenizedListsNeedNoTokenizer) {
  const auto list = parse_candidate_list(
      nlohmann::json::parse(R"({"prompt_ids": [1, 7, 8, 9], "responses_ids": [[10, 11], [12]]})"), "mem.jsonl", 3);
  TokenizeOptions opts;
  opts.max_prompt_tokens = 3;
  const auto t = tokenize_pretokenized(list, /*vocab_size=*/16, /*bos_id=*/1, opts);
  EXPECT_EQ(t.prompt_ids, (std::vector<std::int64_t>{1, 8, 9}));  // BOS kept, left-truncated
  EXPECT_EQ(t.response_ids, (std::vector<std::vector<std::int64_t>>{{10, 11}, {12}}));  // no EOS added
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { tokenize_pretokenized(list, 12, 1); }),
              HasSubstr("mem.jsonl:3: responses_ids[1][0] = 12 is outside the vocabulary [0, 12)"));
  const auto text = parse_candidate_list(nlohmann::json::parse(R"({"prompt": "hi", "responses": ["a"]})"),
                                         "mem.jsonl", 4);
  EXPECT_TRUE(needs_tokenizer(text));
  EXPECT_FALSE(needs_tokenizer(list));
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { tokenize_pretokenized(text, 16, 1); }),
              HasSubstr("mem.jsonl:4"));
  // A folder without tokenizer.model is fine until a list holds text.
  FolderTokenizer folder("/nonexistent-model-folder", 16, 1);
  EXPECT_EQ(folder.tokenize(list, {}).response_ids.size(), 2u);
  EXPECT_THROW(folder.tokenize(text, {}), lire::Error);
}

TEST(CandidateList, PromptOnlyRecordsReadAsEmptyListsWhenAllowed) {
  ReadOptions opts;
  opts.allow_prompt_only = true;
  const auto text = parse_candidate_list(nlohmann::json::parse(R"({"id": 5, "prompt": "hi", "reference": "x"})"),
                                         "p.jsonl", 2, opts);
  EXPECT_EQ(text.size(), 0u);
  EXPECT_EQ(text.prompt, "hi");
  EXPECT_EQ(text.id, "5");
  EXPECT_TRUE(needs_tokenizer(text));
  const auto ids = parse_candidate_list(nlohmann::json::parse(R"({"prompt_ids": [1, 4]})"), "p.jsonl", 3, opts);
  EXPECT_FALSE(needs_tokenizer(ids));  // pre-tokenized prompt and no response text
  const auto t = tokenize_pretokenized(ids, 16, 1);
  EXPECT_EQ(t.prompt_ids, (std::vector<std::int64_t>{1, 4}));
  EXPECT_TRUE(t.response_ids.empty());
  // Without the option, and for empty candidate lists even with it, the record is an error.
  EXPECT_THAT(lire::testing::error_message<lire::DataError>(
                  [] { parse_candidate_list(nlohmann::json::parse(R"({"prompt": "hi"})"), "p.jsonl", 4); }),
              HasSubstr("p.jsonl:4: missing 'responses'"));
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] {
                parse_candidate_list(nlohmann::json::parse(R"({"prompt": "hi", "responses": []})"), "p.jsonl", 5, opts);
              }),
              HasSubstr("p.jsonl:5: 'responses' is an empty list"));
  EXPECT_THROW(parse_candidate_list(nlohmann::json::parse(R"({"input": "x"})"), "p.jsonl", 6, opts), lire::DataError);
}

// ------------------------------------------------------------------ max_length

// ids of a pre-tokenized list: prompt [1 5 6 7] (1 = BOS), responses of 5, 2 and 3 tokens.
CandidateList three_responses() {
  return parse_candidate_list(
      nlohmann::json::parse(
          R"({"prompt_ids": [1, 5, 6, 7], "responses_ids": [[8, 9, 10, 11, 12], [13, 14], [15, 16, 17]]})"),
      "mem.jsonl", 3);
}

using Ids = std::vector<std::vector<std::int64_t>>;

TEST(CandidateList, MaxLengthCutsEveryResponseToTheRoomThePromptLeaves) {
  const auto list = three_responses();
  TokenizeOptions opts;
  opts.max_length = 7;  // 4 prompt tokens leave 3 for each response
  auto t = tokenize_pretokenized(list, 32, 1, opts);
  EXPECT_EQ(t.prompt_ids, (std::vector<std::int64_t>{1, 5, 6, 7}));
  EXPECT_FALSE(t.prompt_truncated);
  EXPECT_EQ(t.response_ids, (Ids{{8, 9, 10}, {13, 14}, {15, 16, 17}}));
  EXPECT_EQ(t.responses_truncated, 1u);

  // max_response_tokens below the room wins; above it, the room wins.
  opts.max_response_tokens = 2;
  t = tokenize_pretokenized(list, 32, 1, opts);
  EXPECT_EQ(t.response_ids, (Ids{{8, 9}, {13, 14}, {15, 16}}));
  EXPECT_EQ(t.responses_truncated, 2u);
  opts.max_response_tokens = 5;
  EXPECT_EQ(tokenize_pretokenized(list, 32, 1, opts).response_ids, (Ids{{8, 9, 10}, {13, 14}, {15, 16, 17}}));

  // One token of room: every response keeps its first token.
  opts.max_response_tokens = 0;
  opts.max_length = 5;
  t = tokenize_pretokenized(list, 32, 1, opts);
  EXPECT_EQ(t.response_ids, (Ids{{8}, {13}, {15}}));
  EXPECT_EQ(t.responses_truncated, 3u);

  // A limit everything fits under changes nothing.
  opts.max_length = 9;
  t = tokenize_pretokenized(list, 32, 1, opts);
  EXPECT_EQ(t.response_ids, (Ids{{8, 9, 10, 11, 12}, {13, 14}, {15, 16, 17}}));
  EXPECT_EQ(t.responses_truncated, 0u);
}

TEST(CandidateList, MaxLengthAppliesAfterThePromptCut) {
  const auto list = three_responses();
  TokenizeOptions opts;
  opts.max_prompt_tokens = 2;  // BOS + the last prompt token: [1, 7]
  opts.max_length = 5;         // leaves 3
  const auto t = tokenize_pretokenized(list, 32, 1, opts);
  EXPECT_EQ(t.prompt_ids, (std::vector<std::int64_t>{1, 7}));
  EXPECT_TRUE(t.prompt_truncated);
  EXPECT_EQ(t.response_ids, (Ids{{8, 9, 10}, {13, 14}, {15, 16, 17}}));
  EXPECT_EQ(t.responses_truncated, 1u);
}

TEST(CandidateList, MaxLengthWithNoRoomForAResponseIsAnError) {
  const auto list = three_responses();
  TokenizeOptions opts;
  opts.max_length = 4;  // the 4-token prompt fills it
  EXPECT_EQ(lire::testing::error_message<lire::DataError>([&] { tokenize_pretokenized(list, 32, 1, opts); }),
            "mem.jsonl:3: the prompt has 4 tokens, which leaves no room for a response under data.max_length=4 "
            "(set data.max_prompt_length below it)");
  opts.max_length = 2;
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { tokenize_pretokenized(list, 32, 1, opts); }),
              HasSubstr("mem.jsonl:3: the prompt has 4 tokens"));
  // A prompt cut below max_length leaves room again.
  opts.max_prompt_tokens = 1;
  EXPECT_EQ(tokenize_pretokenized(list, 32, 1, opts).response_ids, (Ids{{8}, {13}, {15}}));

  // The message names the line of the file the record came from.
  TempFile file(R"({"prompt_ids": [1, 2], "responses_ids": [[3]]})" "\n"
                R"({"prompt_ids": [1, 2, 3, 4, 5], "responses_ids": [[6]]})" "\n");
  const auto lists = read_candidate_lists(file.path);
  ASSERT_EQ(lists.size(), 2u);
  TokenizeOptions three;
  three.max_length = 3;
  EXPECT_EQ(tokenize_pretokenized(lists[0], 32, 1, three).response_ids, (Ids{{3}}));
  EXPECT_THAT(lire::testing::error_message<lire::DataError>([&] { tokenize_pretokenized(lists[1], 32, 1, three); }),
              StartsWith(file.path + ":2: the prompt has 5 tokens, which leaves no room"));
}

TEST(CandidateList, MaxLengthMustNotBeNegative) {
  const auto list = three_responses();
  TokenizeOptions opts;
  opts.max_length = -1;
  EXPECT_THAT(lire::testing::error_message<lire::ConfigError>([&] { tokenize_pretokenized(list, 32, 1, opts); }),
              HasSubstr("data.max_length"));
}

TEST(CandidateList, MaxLengthKeepsEosOnlyWhenTheWholeResponseFits) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const auto list = read_one(R"({"prompt": "Q", "responses": ["Hello world", "Hi"]})");
  const auto prompt = concat({tokenizer.bos_id()}, tokenizer.encode("Q"));
  const auto hello = tokenizer.encode("Hello world");  // 9 tokens
  const auto hi = tokenizer.encode("Hi");
  ASSERT_EQ(hello.size(), 9u);
  ASSERT_LT(hi.size() + 1, 9u);
  const auto p = static_cast<std::int64_t>(prompt.size());

  TokenizeOptions opts;
  opts.max_length = p + 10;  // "Hello world" + EOS fit exactly
  auto t = tokenize(list, tokenizer, opts);
  EXPECT_EQ(t.prompt_ids, prompt);
  EXPECT_EQ(t.response_ids[0], concat(hello, {tokenizer.eos_id()}));
  EXPECT_EQ(t.response_ids[1], concat(hi, {tokenizer.eos_id()}));
  EXPECT_EQ(t.responses_truncated, 0u);

  opts.max_length = p + 9;  // the words fit, their EOS does not: no EOS
  t = tokenize(list, tokenizer, opts);
  EXPECT_EQ(t.response_ids[0], hello);
  EXPECT_EQ(t.response_ids[1], concat(hi, {tokenizer.eos_id()}));
  EXPECT_EQ(t.responses_truncated, 1u);

  opts.max_length = p + 3;
  EXPECT_EQ(tokenize(list, tokenizer, opts).response_ids[0], std::vector<std::int64_t>(hello.begin(), hello.begin() + 3));
}

TEST(CandidateList, TokenizeOptionsComeFromTheDataSection) {
  lire::config::DataOptions data;
  data.prompt_template = "alpaca";
  data.append_eos = false;
  data.max_length = 512;
  data.max_prompt_length = 384;
  data.max_response_length = 256;
  const TokenizeOptions o = tokenize_options(data);
  EXPECT_EQ(o.prompt_template, "alpaca");
  EXPECT_FALSE(o.append_eos);
  EXPECT_EQ(o.max_length, 512);
  EXPECT_EQ(o.max_prompt_tokens, 384);
  EXPECT_EQ(o.max_response_tokens, 256);
}

// ------------------------------------------------------------------ data.fields

ReadOptions with_fields(std::map<std::string, std::string> fields) {
  ReadOptions opts;
  opts.fields = std::move(fields);
  return opts;
}

TEST(CandidateList, FieldsRenameARecordBeforeItIsRead) {
  const auto opts = with_fields({{"question", "prompt"}, {"answers", "responses"}, {"scores", "rewards"}});
  const auto lists = read_text(R"({"question": "Q?", "answers": ["a", "b"], "scores": [1, 0], "meta": 7})" "\n"
                               R"({"prompt": "P", "responses": ["c"]})" "\n",
                               opts);
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].prompt, "Q?");
  EXPECT_EQ(lists[0].responses, (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(lists[0].rewards);
  EXPECT_EQ(*lists[0].rewards, (std::vector<double>{1, 0}));
  EXPECT_EQ(lists[0].format, RecordFormat::kCanonical);
  // raw keeps the names as read, for writers.
  EXPECT_TRUE(lists[0].raw.contains("question"));
  EXPECT_FALSE(lists[0].raw.contains("prompt"));
  EXPECT_EQ(lists[0].raw["meta"], 7);
  // A record with the canonical names reads as usual.
  EXPECT_EQ(lists[1].prompt, "P");
  EXPECT_EQ(lists[1].responses, (std::vector<std::string>{"c"}));
  // Without the map the first record has no prompt.
  EXPECT_EQ(error_of(R"({"question": "Q?", "answers": ["a", "b"]})" "\n"), "F:1: missing 'prompt' (and no candidates: "
            "expected 'responses', 'chosen'/'rejected' or 'suffix')");
}

TEST(CandidateList, FieldsCanNameTheOtherFormats) {
  const auto pair = read_text(R"({"q": "P", "good": "x", "bad": "y", "s1": 2.5, "s2": 1})" "\n",
                              with_fields({{"q", "prompt"}, {"good", "chosen"}, {"bad", "rejected"},
                                           {"s1", "score_chosen"}, {"s2", "score_rejected"}}));
  ASSERT_EQ(pair.size(), 1u);
  EXPECT_EQ(pair[0].format, RecordFormat::kPairs);
  EXPECT_EQ(pair[0].responses, (std::vector<std::string>{"x", "y"}));
  ASSERT_TRUE(pair[0].rewards);
  EXPECT_EQ(*pair[0].rewards, (std::vector<double>{2.5, 1.0}));
  // Swapping two names is a renaming, not a clash.
  const auto swapped = read_text(R"({"prompt": "P", "chosen": "A", "rejected": "B"})" "\n",
                                 with_fields({{"chosen", "rejected"}, {"rejected", "chosen"}}));
  ASSERT_EQ(swapped.size(), 1u);
  EXPECT_EQ(swapped[0].responses, (std::vector<std::string>{"B", "A"}));
}

TEST(CandidateList, FieldsThatClashAreErrorsWithFileAndLine) {
  const auto opts = with_fields({{"question", "prompt"}, {"q", "prompt"}});
  EXPECT_EQ(error_of(R"({"question": "a", "responses": ["x"]})" "\n"
                     R"({"question": "a", "prompt": "b", "responses": ["x"]})" "\n",
                     opts),
            "F:2: field 'question' is mapped to 'prompt' but the record also has 'prompt'");
  EXPECT_EQ(error_of(R"({"question": "a", "q": "b", "responses": ["x"]})" "\n", opts),
            "F:1: fields 'q' and 'question' are both mapped to 'prompt'");
  // skip_invalid counts a clash like any bad record.
  auto skip = opts;
  skip.skip_invalid = true;
  ReadStats stats;
  TempFile file(R"({"question": "a", "prompt": "b", "responses": ["x"]})" "\n"
                R"({"q": "c", "responses": ["y"]})" "\n");
  const auto lists = read_candidate_lists(file.path, skip, &stats);
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].prompt, "c");
  EXPECT_EQ(stats.skipped, 1u);
}

TEST(CandidateList, FieldsMayOnlyTargetFieldsTheReaderKnows) {
  TempFile file(R"({"question": "a", "responses": ["x"]})" "\n");
  const std::string message = lire::testing::error_message<lire::ConfigError>(
      [&] { read_candidate_lists(file.path, with_fields({{"question", "promt"}})); });
  EXPECT_THAT(message, StartsWith("data.fields: 'question' maps to 'promt', which is not a field lire reads"));
  EXPECT_THAT(message, HasSubstr("did you mean prompt?"));
  // parse_candidate_list checks it too, whoever calls it.
  EXPECT_THROW(parse_candidate_list(nlohmann::json::parse(R"({"prompt": "a", "responses": ["x"]})"), "m", 1,
                                    with_fields({{"answers", "answer"}})),
               lire::ConfigError);
  // Every canonical name is a valid target.
  std::map<std::string, std::string> all;
  for (const auto& name : canonical_field_names()) all["x_" + name] = name;
  EXPECT_NO_THROW(check_field_map(all));
  EXPECT_EQ(canonical_field_names().size(), 20u);
}

TEST(CandidateList, FieldsAreCheckedWhenTheConfigIsRead) {
  // The same check when the YAML is read, so a typo fails before any data is
  // opened, with the config file's line.
  const auto cfg = lire::config::resolve(lire::config::ConfigTree::from_string(
      "data:\n  fields: {question: prompt, answers: responses}\n", "run.yaml"));
  EXPECT_EQ(cfg.data.fields, (std::map<std::string, std::string>{{"answers", "responses"}, {"question", "prompt"}}));
  const std::string message = lire::testing::error_message<lire::ConfigError>([] {
    lire::config::resolve(lire::config::ConfigTree::from_string("data:\n  fields:\n    question: promt\n", "run.yaml"));
  });
  EXPECT_THAT(message, StartsWith("run.yaml:"));
  EXPECT_THAT(message, HasSubstr("data.fields: 'question' maps to 'promt', which is not a field lire reads; "
                                 "did you mean prompt?"));
}

TEST(CandidateList, FieldsApplyToTheDuplicateIdCheck) {
  auto opts = with_fields({{"uid", "id"}});
  opts.check_duplicate_ids = true;
  const std::string a = R"({"uid": "a", "prompt": "p", "responses": ["x"]})" "\n";
  EXPECT_EQ(error_of(a + a, opts), "F:2: duplicate id 'a' (first on line 1)");
  EXPECT_EQ(read_text(a, opts)[0].id, "a");
}

}  // namespace

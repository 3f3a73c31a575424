// Candidate lists: one prompt and its K candidate responses with what is known
// about them (rewards, ranks, labels, reference log-probs, which are human),
// read from JSONL, one record a line. The unit every listwise loss consumes.
//
// Accepted records (docs/data.md has examples):
//   canonical  {"id", "prompt", "responses": [..], "rewards", "ranks", "labels",
//               "ref_logps", "ref_token_counts", "human", "input", "system"}
//   pairs      {"prompt", "chosen", "rejected"} -> responses [chosen, rejected],
//               ranks [1, 2], rewards [score_chosen, score_rejected] when given
//   HH raw     {"chosen": "\n\nHuman: ..\n\nAssistant: A", "rejected": "..B"} (no
//               "prompt"): prompt = the text both share, up to and including its
//               last "\n\nAssistant:"; responses = the two continuations with one
//               leading space removed (TRL's hh-rlhf rule: the cue is
//               "\n\nAssistant: ")
//   PRO        {"prefix": [p, ..], "suffix": [s, ..], "reward": [r, ..]} (one
//               prefix per suffix, each a string or a list of strings joined;
//               all must be equal; "<|prompter|>" / "<|assistant|>" become
//               "\n\nHuman: " / "\n\nAssistant: " and the prompt is right-stripped,
//               as PRO's HH collator does); without "reward" the list order is
//               the ranking (best first)
//   pre-tokenized  "prompt_ids": [int], "responses_ids": [[int], ..] in any of
//               the above (or alone): used exactly, no BOS/EOS/template added.
// Fields of the canonical record (rewards, ref_logps, ...) are read in every
// format, so files that lire-score annotated keep their shape; an explicit
// "rewards" wins over score_chosen/score_rejected and PRO's "reward".
// Anything malformed throws DataError "file:line: reason", or, with
// ReadOptions::skip_invalid, is skipped and counted in ReadStats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace lire::config {
struct DataOptions;
}

namespace lire::data {

class Tokenizer;

// Which record shape a list was read from.
enum class RecordFormat { kCanonical, kPairs, kHHDialogue, kPRO };
const char* record_format_name(RecordFormat format);  // "canonical", "pairs", "hh", "pro"

struct CandidateList {
  std::string id;                  // "id" (string, or a number as written), else "<file>:<line>"
  std::string prompt;              // prompt text ("" when only prompt_ids is given)
  std::string input;               // "input" (alpaca template), "" when absent
  std::string system;              // "system" (llama2-chat, vicuna), "" when absent
  std::vector<std::string> responses;  // candidate texts (empty when only responses_ids is given)
  std::optional<std::vector<double>> rewards;            // finite, one per candidate
  std::optional<std::vector<std::int64_t>> ranks;        // 1 = best; ties allowed
  std::optional<std::vector<double>> labels;             // psi in [0, 1]
  std::optional<std::vector<double>> ref_logps;          // reference sequence log-probs
  std::optional<std::vector<std::int64_t>> ref_token_counts;  // positive
  std::optional<std::vector<bool>> human;                // which responses are human-written
  std::optional<std::vector<std::int64_t>> prompt_ids;   // pre-tokenized prompt, used as given
  std::optional<std::vector<std::vector<std::int64_t>>> responses_ids;  // pre-tokenized responses
  RecordFormat format = RecordFormat::kCanonical;
  nlohmann::json raw;              // the record as read, for writers that add fields
  std::string file;                // source file
  std::size_t line = 0;            // 1-based line in `file`

  // Number of candidates K.
  std::size_t size() const { return responses_ids ? responses_ids->size() : responses.size(); }
  // "file:line", the prefix of every message about this record.
  std::string where() const;
};

struct ReadOptions {
  std::int64_t vocab_size = 0;       // token ids must lie in [0, vocab_size); 0 = unchecked (ids >= 0)
  bool skip_invalid = false;         // skip malformed records (counted in ReadStats) instead of throwing
  bool check_duplicate_ids = false;  // an explicit "id" seen twice is an error
  std::size_t max_kept_errors = 20;  // how many skip reasons ReadStats keeps verbatim
  // data.fields: a record's field names -> canonical names ({"question": "prompt"}),
  // applied to each record before it is read; empty = the names as documented.
  std::map<std::string, std::string> fields;
  // Accept records with a prompt and no candidates (lire-sample's and lire-eval's
  // prompt files): they read as lists of size 0.
  bool allow_prompt_only = false;
};

struct ReadStats {
  std::size_t lines = 0;          // lines read, blank ones included
  std::size_t blank_lines = 0;    // whitespace-only lines (ignored)
  std::size_t records = 0;        // records returned
  std::size_t skipped = 0;        // malformed records skipped (skip_invalid)
  std::vector<std::string> errors;  // the first max_kept_errors skip reasons, "file:line: reason"
};

// The field names a record may use, the canonical record's and the other
// formats' (prompt, responses, chosen, suffix, reward, ...): the targets
// data.fields may map to.
const std::vector<std::string>& canonical_field_names();

// Throws ConfigError "data.fields: ..." (with the closest name) when a target
// of `fields` is not one of canonical_field_names().
void check_field_map(const std::map<std::string, std::string>& fields);

// Parses one record (already JSON), its keys renamed by opts.fields first (two
// keys that end up with the same name are a DataError; `raw` keeps the names as
// read). Throws DataError "file:line: reason", ConfigError for a bad opts.fields.
CandidateList parse_candidate_list(const nlohmann::json& record, const std::string& file, std::size_t line,
                                   const ReadOptions& opts = {});

// Streams a JSONL file record by record, so big files are never loaded whole.
class CandidateListReader {
 public:
  // Throws DataError when the file cannot be opened, ConfigError for a bad opts.fields.
  explicit CandidateListReader(const std::string& path, ReadOptions opts = {});
  // Reads the next valid record into `list`; false at the end of the file.
  bool next(CandidateList& list);
  const ReadStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  ReadOptions opts_;
  std::ifstream in_;
  ReadStats stats_;
  std::unordered_map<std::string, std::size_t> id_lines_;  // explicit id -> first line (duplicate check)
};

// All records of a file. `stats` (optional) receives the reader's counts.
std::vector<CandidateList> read_candidate_lists(const std::string& path, const ReadOptions& opts = {},
                                                ReadStats* stats = nullptr);

// ---------------------------------------------------------------- tokenization
//
// Prompt and responses are tokenised separately and concatenated:
//   prompt   = [BOS if tokenizer.add_bos()] + encode(template(prompt, input, system))
//   response = encode(response) + [EOS if append_eos]
// so the response boundary is exact and a policy learns to stop. Encoding a
// response on its own gives it sentencepiece's dummy-prefix space ("▁" on its
// first piece): that is the rule, and it matches templates ending in ":" or
// "[/INST]" followed by a space and the answer. Pre-tokenized prompt_ids /
// responses_ids are used as given (no template, BOS or EOS); only truncation
// applies to them.
//
// Truncation (TRL's DPO rule, one prompt cut shared by every response of a list):
//   1. a prompt longer than max_prompt_tokens keeps its BOS (when it starts
//      with one) and its last tokens, max_prompt_tokens in all;
//   2. each response keeps its first min(max_response_tokens, max_length -
//      prompt tokens) tokens (each limit only when > 0), and its EOS only when
//      the whole response and EOS fit (a cut response did not end);
//   3. with max_length > 0, a prompt of max_length tokens or more leaves no room
//      for any response: a DataError "file:line: the prompt has N tokens, ...".

struct TokenizeOptions {
  std::string prompt_template = "raw";  // data.prompt_template (see prompt_template.h)
  bool append_eos = true;               // EOS after every text response, whatever add_eos_token says
  bool prompt_eos = false;              // EOS after a text prompt: set for encoder-decoder models (T5), whose
                                        // encoder input ends with EOS as HF's T5Tokenizer encodes it
  std::int64_t max_length = 0;          // data.max_length: 0 = no limit; else prompt + response <= max_length
                                        // (responses cut)
  std::int64_t max_prompt_tokens = 0;   // data.max_prompt_length: 0 = no limit; else keep BOS + the last
                                        // tokens (truncate left)
  std::int64_t max_response_tokens = 0; // data.max_response_length: 0 = no limit; else keep the first tokens
                                        // (truncate right);
                                        // EOS is kept only when the whole response and EOS fit
};

// The tokenize options of a `data` config section.
TokenizeOptions tokenize_options(const config::DataOptions& data);

struct TokenizedList {
  std::vector<std::int64_t> prompt_ids;
  std::vector<std::vector<std::int64_t>> response_ids;
  bool prompt_truncated = false;        // the prompt lost tokens to max_prompt_tokens
  std::size_t responses_truncated = 0;  // responses that lost tokens (or their EOS) to max_response_tokens
                                        // or max_length
};

// Applies the rule above. Throws DataError "file:line: reason" for an empty
// prompt or response, a prompt that leaves no room under max_length, an id
// outside the tokenizer's vocabulary, or an input/system the template cannot
// place; ConfigError for a negative limit, an unknown template or options the
// tokenizer cannot honour (no BOS/EOS token).
TokenizedList tokenize(const CandidateList& list, const Tokenizer& tokenizer, const TokenizeOptions& opts = {});

// The same for a pre-tokenized list (prompt_ids and responses_ids), which needs
// no tokenizer: ids are checked against `vocab_size`, and `bos_id` (-1: none)
// is the BOS a truncated prompt keeps. A list holding text is a DataError.
TokenizedList tokenize_pretokenized(const CandidateList& list, std::int64_t vocab_size, std::int64_t bos_id,
                                    const TokenizeOptions& opts = {});

// Whether a list needs a tokenizer (it holds text rather than ids).
inline bool needs_tokenizer(const CandidateList& list) {
  return !list.prompt_ids || (!list.responses_ids && !list.responses.empty());
}

// A model folder's tokenizer, loaded the first time a list holds text, so that
// pre-tokenized data works with folders that ship no tokenizer.model.
class FolderTokenizer {
 public:
  // `vocab_size` and `bos_id` (-1: none) come from the model's config.json.
  FolderTokenizer(std::string folder, std::int64_t vocab_size, std::int64_t bos_id);
  ~FolderTokenizer();
  FolderTokenizer(FolderTokenizer&&) noexcept;
  TokenizedList tokenize(const CandidateList& list, const TokenizeOptions& opts);

 private:
  std::string folder_;
  std::int64_t vocab_size_, bos_id_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace lire::data

// Candidate lists: parsing every record format (after the data.fields renaming),
// streaming JSONL, and the tokenization and truncation rule. See candidate_list.h.
#include "lire/data/candidate_list.h"

#include "lire/config/data_options.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "lire/core/error.h"
#include "lire/core/suggest.h"
#include "lire/data/prompt_template.h"
#include "lire/data/tokenizer.h"

namespace lire::data {
namespace {

using nlohmann::json;

constexpr const char* kAssistantCue = "\n\nAssistant:";

// Every message about a record starts with "file:line: ".
struct Where {
  const std::string& file;
  std::size_t line;
  [[noreturn]] void fail(const std::string& reason) const { throw DataError(str(file, ":", line, ": ", reason)); }
};

bool has(const json& record, const char* key) { return record.contains(key) && !record[key].is_null(); }

std::string short_dump(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// A JSON number that is an integer (2 or 2.0); nullopt otherwise.
std::optional<std::int64_t> as_integer(const json& value) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 9.0e15) return static_cast<std::int64_t>(v);
  }
  return std::nullopt;
}

const json& list_field(const json& record, const char* key, const Where& where, const char* what) {
  const json& value = record[key];
  if (!value.is_array()) where.fail(str("'", key, "' must be a list of ", what, ", got ", short_dump(value)));
  return value;
}

void check_count(std::size_t count, std::size_t k, const char* key, const Where& where) {
  if (count != k) where.fail(str("'", key, "' has ", count, " entries but the list has ", k, " responses"));
}

std::optional<std::vector<double>> finite_numbers(const json& record, const char* key, std::size_t k,
                                                  const Where& where) {
  if (!has(record, key)) return std::nullopt;
  const json& a = list_field(record, key, where, "numbers");
  check_count(a.size(), k, key, where);
  std::vector<double> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number()) where.fail(str(key, "[", i, "] must be a number, got ", short_dump(a[i])));
    const double v = a[i].get<double>();
    if (!std::isfinite(v)) where.fail(str(key, "[", i, "] is not finite"));
    out.push_back(v);
  }
  return out;
}

std::optional<std::vector<std::int64_t>> positive_integers(const json& record, const char* key, std::size_t k,
                                                           const Where& where) {
  if (!has(record, key)) return std::nullopt;
  const json& a = list_field(record, key, where, "positive integers");
  check_count(a.size(), k, key, where);
  std::vector<std::int64_t> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto v = as_integer(a[i]);
    if (!v || *v < 1) where.fail(str(key, "[", i, "] must be a positive integer, got ", short_dump(a[i])));
    out.push_back(*v);
  }
  return out;
}

std::vector<std::int64_t> token_ids(const json& value, const std::string& name, const ReadOptions& opts,
                                    const Where& where) {
  if (!value.is_array()) where.fail(str("'", name, "' must be a list of token ids, got ", short_dump(value)));
  std::vector<std::int64_t> out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto id = value[i].is_number_float() ? std::nullopt : as_integer(value[i]);
    if (!id) where.fail(str(name, "[", i, "] must be an integer token id, got ", short_dump(value[i])));
    if (*id < 0 || (opts.vocab_size > 0 && *id >= opts.vocab_size))
      where.fail(str(name, "[", i, "] = ", *id, " is outside the vocabulary [0, ",
                     opts.vocab_size > 0 ? str(opts.vocab_size) : std::string("inf"), ")"));
    out.push_back(*id);
  }
  return out;
}

std::string string_field(const json& record, const char* key, const Where& where) {
  if (!has(record, key)) return "";
  if (!record[key].is_string()) where.fail(str("'", key, "' must be a string, got ", short_dump(record[key])));
  return record[key].get<std::string>();
}

std::vector<std::string> string_list(const json& record, const char* key, const Where& where) {
  const json& a = record[key];
  if (!a.is_array()) where.fail(str("'", key, "' must be a list of strings, got ", short_dump(a)));
  if (a.empty()) where.fail(str("'", key, "' is an empty list"));
  std::vector<std::string> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string())
      where.fail(str("'", key, "' must be a list of strings, but ", key, "[", i, "] is ", short_dump(a[i])));
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (std::size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
}

// HH raw dialogues: prompt = the shared text up to and including its last
// "\n\nAssistant:"; responses = the rest of each, one leading space removed.
void parse_hh_dialogue(const json& record, CandidateList& list, const Where& where) {
  if (!has(record, "chosen") || !has(record, "rejected"))
    where.fail("an HH dialogue record needs both 'chosen' and 'rejected' (or give 'prompt' for a pair)");
  const std::string chosen = string_field(record, "chosen", where);
  const std::string rejected = string_field(record, "rejected", where);
  std::size_t common = 0;
  while (common < chosen.size() && common < rejected.size() && chosen[common] == rejected[common]) ++common;
  const std::size_t cue_size = std::char_traits<char>::length(kAssistantCue);
  // The cue must lie wholly inside the shared text: it starts at or before common - cue_size.
  const std::size_t cue = common >= cue_size ? chosen.rfind(kAssistantCue, common - cue_size) : std::string::npos;
  if (cue == std::string::npos)
    where.fail(
        "no 'prompt' and no \"\\n\\nAssistant:\" in the text 'chosen' and 'rejected' share, so the prompt "
        "cannot be found (an HH dialogue needs it; a pair needs 'prompt')");
  const std::size_t cut = cue + cue_size;
  list.prompt = chosen.substr(0, cut);
  for (const std::string* dialogue : {&chosen, &rejected}) {
    std::string response = dialogue->substr(cut);
    if (!response.empty() && response[0] == ' ') response.erase(0, 1);
    list.responses.push_back(std::move(response));
  }
  list.ranks = std::vector<std::int64_t>{1, 2};
}

void parse_pair(const json& record, CandidateList& list, const Where& where) {
  if (!has(record, "chosen") || !has(record, "rejected"))
    where.fail("a pair record needs both 'chosen' and 'rejected'");
  for (const char* key : {"chosen", "rejected"}) {
    if (!record[key].is_string())
      where.fail(str("'", key, "' must be a string, got ", short_dump(record[key]),
                     " (conversational message lists are not supported; flatten them with a template)"));
    list.responses.push_back(record[key].get<std::string>());
  }
  list.ranks = std::vector<std::int64_t>{1, 2};
  const bool sc = has(record, "score_chosen"), sr = has(record, "score_rejected");
  if (sc != sr) where.fail("give both 'score_chosen' and 'score_rejected' or neither");
  if (sc) {
    std::vector<double> rewards;
    for (const char* key : {"score_chosen", "score_rejected"}) {
      if (!record[key].is_number()) where.fail(str("'", key, "' must be a number, got ", short_dump(record[key])));
      rewards.push_back(record[key].get<double>());
      if (!std::isfinite(rewards.back())) where.fail(str("'", key, "' is not finite"));
    }
    list.rewards = rewards;
  }
}

void parse_pro(const json& record, CandidateList& list, const Where& where) {
  list.responses = string_list(record, "suffix", where);
  if (!has(record, "prefix")) where.fail("a PRO record ('suffix') needs 'prefix'");
  const json& prefix = record["prefix"];
  if (!prefix.is_array())
    where.fail(str("'prefix' must be a list with one prefix per suffix, got ", short_dump(prefix)));
  check_count(prefix.size(), list.responses.size(), "prefix", where);
  std::string shared;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    std::string text;
    if (prefix[i].is_string()) {
      text = prefix[i].get<std::string>();
    } else if (prefix[i].is_array()) {
      for (const auto& part : prefix[i]) {
        if (!part.is_string()) where.fail(str("prefix[", i, "] must be a string or a list of strings"));
        text += part.get<std::string>();
      }
    } else {
      where.fail(str("prefix[", i, "] must be a string or a list of strings, got ", short_dump(prefix[i])));
    }
    if (i == 0)
      shared = text;
    else if (text != shared)
      where.fail(str("prefix[", i, "] differs from prefix[0]; a list shares one prompt"));
  }
  if (shared.find("<|prompter|>") != std::string::npos || shared.find("<|assistant|>") != std::string::npos) {
    replace_all(shared, "<|prompter|>", "\n\nHuman: ");
    replace_all(shared, "<|assistant|>", "\n\nAssistant: ");
    const auto last = shared.find_last_not_of(" \t\n\r\f\v");
    shared.erase(last == std::string::npos ? 0 : last + 1);
  }
  list.prompt = shared;
  if (has(record, "reward")) {
    const json& r = record["reward"];
    if (!r.is_array()) where.fail(str("'reward' must be a list of numbers, got ", short_dump(r)));
    check_count(r.size(), list.responses.size(), "reward", where);
    std::vector<double> rewards;
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (!r[i].is_number()) where.fail(str("reward[", i, "] must be a number, got ", short_dump(r[i])));
      rewards.push_back(r[i].get<double>());
      if (!std::isfinite(rewards.back())) where.fail(str("reward[", i, "] is not finite"));
    }
    list.rewards = rewards;
  } else {
    std::vector<std::int64_t> ranks(list.responses.size());
    for (std::size_t i = 0; i < ranks.size(); ++i) ranks[i] = static_cast<std::int64_t>(i) + 1;
    list.ranks = ranks;
  }
}

// The record with its keys renamed by `fields` (name in the file -> canonical
// name). Two keys that end up with the same name are an error: a mapped key
// whose target the record also has (and does not map away), or two mapped keys
// with one target.
json rename_fields(const json& record, const std::map<std::string, std::string>& fields, const Where& where) {
  json out = json::object();
  std::map<std::string, std::string> source_of;  // new name -> the key it came from
  for (auto it = record.begin(); it != record.end(); ++it) {
    const auto mapped = fields.find(it.key());
    const std::string& name = mapped == fields.end() ? it.key() : mapped->second;
    const auto [seen, inserted] = source_of.emplace(name, it.key());
    if (!inserted) {
      const std::string& a = seen->second;
      const std::string& b = it.key();
      if (a == name || b == name)
        where.fail(str("field '", a == name ? b : a, "' is mapped to '", name, "' but the record also has '", name,
                       "'"));
      where.fail(str("fields '", std::min(a, b), "' and '", std::max(a, b), "' are both mapped to '", name, "'"));
    }
    out[name] = it.value();
  }
  return out;
}

// Whether the record, renamed by `fields`, has a non-null `key`.
bool has_renamed(const json& record, const char* key, const std::map<std::string, std::string>& fields) {
  if (fields.empty()) return has(record, key);
  for (auto it = record.begin(); it != record.end(); ++it) {
    const auto mapped = fields.find(it.key());
    if ((mapped == fields.end() ? it.key() : mapped->second) == key && !it.value().is_null()) return true;
  }
  return false;
}

}  // namespace

const std::vector<std::string>& canonical_field_names() {
  static const std::vector<std::string> names = {
      // canonical
      "id", "prompt", "responses", "rewards", "ranks", "labels", "ref_logps", "ref_token_counts", "human",
      "input", "system", "prompt_ids", "responses_ids",
      // pairs and HH dialogues
      "chosen", "rejected", "score_chosen", "score_rejected",
      // PRO
      "prefix", "suffix", "reward"};
  return names;
}

void check_field_map(const std::map<std::string, std::string>& fields) {
  const auto& names = canonical_field_names();
  for (const auto& [from, to] : fields)
    if (std::find(names.begin(), names.end(), to) == names.end())
      throw ConfigError(str("data.fields: '", from, "' maps to '", to, "', which is not a field lire reads",
                            did_you_mean(to, names), " (valid: ", join_sorted(names), ")"));
}

const char* record_format_name(RecordFormat format) {
  switch (format) {
    case RecordFormat::kCanonical: return "canonical";
    case RecordFormat::kPairs: return "pairs";
    case RecordFormat::kHHDialogue: return "hh";
    case RecordFormat::kPRO: return "pro";
  }
  return "?";
}

std::string CandidateList::where() const { return str(file, ":", line); }

CandidateList parse_candidate_list(const json& record_as_read, const std::string& file, std::size_t line,
                                   const ReadOptions& opts) {
  const Where where{file, line};
  if (!record_as_read.is_object())
    where.fail(str("a record must be a JSON object, got ", short_dump(record_as_read)));
  json renamed;
  if (!opts.fields.empty()) {
    check_field_map(opts.fields);
    renamed = rename_fields(record_as_read, opts.fields, where);
  }
  const json& record = opts.fields.empty() ? record_as_read : renamed;
  CandidateList list;
  list.file = file;
  list.line = line;

  if (has(record, "id")) {
    const json& id = record["id"];
    if (id.is_string())
      list.id = id.get<std::string>();
    else if (id.is_number_integer())
      list.id = id.dump();
    else
      where.fail(str("'id' must be a string or an integer, got ", short_dump(id)));
  } else {
    list.id = str(file, ":", line);
  }

  // The record's shape.
  const bool canonical = has(record, "responses") || has(record, "responses_ids");
  const bool paired = has(record, "chosen") || has(record, "rejected");
  const bool pro = has(record, "suffix");
  if (int(canonical) + int(paired) + int(pro) > 1)
    where.fail("ambiguous record: give the candidates once, as 'responses', 'chosen'/'rejected' or 'suffix'");
  if (paired) {
    if (has(record, "prompt")) {
      list.format = RecordFormat::kPairs;
      list.prompt = string_field(record, "prompt", where);
      parse_pair(record, list, where);
    } else {
      list.format = RecordFormat::kHHDialogue;
      parse_hh_dialogue(record, list, where);
    }
  } else if (pro) {
    list.format = RecordFormat::kPRO;
    parse_pro(record, list, where);
  } else if (canonical) {
    list.format = RecordFormat::kCanonical;
    if (has(record, "prompt"))
      list.prompt = string_field(record, "prompt", where);
    else if (!has(record, "prompt_ids"))
      where.fail("missing 'prompt'");
    if (has(record, "responses")) list.responses = string_list(record, "responses", where);
  } else if (!has(record, "prompt") && !has(record, "prompt_ids")) {
    where.fail("missing 'prompt' (and no candidates: expected 'responses', 'chosen'/'rejected' or 'suffix')");
  } else if (opts.allow_prompt_only) {
    list.format = RecordFormat::kCanonical;
    if (has(record, "prompt")) list.prompt = string_field(record, "prompt", where);
  } else {
    where.fail("missing 'responses' (or 'chosen'/'rejected', 'suffix', 'responses_ids')");
  }
  list.input = string_field(record, "input", where);
  list.system = string_field(record, "system", where);

  // Pre-tokenized ids.
  if (has(record, "prompt_ids")) list.prompt_ids = token_ids(record["prompt_ids"], "prompt_ids", opts, where);
  if (has(record, "responses_ids")) {
    const json& a = record["responses_ids"];
    if (!a.is_array()) where.fail(str("'responses_ids' must be a list of token-id lists, got ", short_dump(a)));
    if (a.empty()) where.fail("'responses_ids' is an empty list");
    if (!list.responses.empty()) check_count(a.size(), list.responses.size(), "responses_ids", where);
    std::vector<std::vector<std::int64_t>> ids;
    ids.reserve(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      ids.push_back(token_ids(a[i], str("responses_ids[", i, "]"), opts, where));
      if (ids.back().empty()) where.fail(str("responses_ids[", i, "] is empty"));
    }
    list.responses_ids = std::move(ids);
  }
  const std::size_t k = list.size();
  if (k == 0 && !(opts.allow_prompt_only && !canonical && !paired && !pro))
    where.fail("'responses' is an empty list");

  // Per-candidate fields, the same in every format.
  if (auto rewards = finite_numbers(record, "rewards", k, where)) list.rewards = std::move(rewards);
  if (auto ranks = positive_integers(record, "ranks", k, where)) list.ranks = std::move(ranks);
  list.labels = finite_numbers(record, "labels", k, where);
  if (list.labels) {
    for (std::size_t i = 0; i < k; ++i)
      if ((*list.labels)[i] < 0.0 || (*list.labels)[i] > 1.0)
        where.fail(str("labels[", i, "] = ", (*list.labels)[i], " is outside [0, 1]"));
  }
  list.ref_logps = finite_numbers(record, "ref_logps", k, where);
  list.ref_token_counts = positive_integers(record, "ref_token_counts", k, where);
  if (has(record, "human")) {
    const json& a = list_field(record, "human", where, "true/false values");
    check_count(a.size(), k, "human", where);
    std::vector<bool> human;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_boolean()) where.fail(str("human[", i, "] must be true or false, got ", short_dump(a[i])));
      human.push_back(a[i].get<bool>());
    }
    list.human = std::move(human);
  }
  list.raw = record_as_read;
  return list;
}

CandidateListReader::CandidateListReader(const std::string& path, ReadOptions opts)
    : path_(path), opts_(std::move(opts)) {
  check_field_map(opts_.fields);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw DataError(str(path, ": is a directory, not a JSONL file"));
  in_.open(path);
  if (!in_) throw DataError(str(path, ": cannot open file"));
}

bool CandidateListReader::next(CandidateList& list) {
  std::string text;
  while (std::getline(in_, text)) {
    const std::size_t line = ++stats_.lines;
    if (line == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 byte-order mark
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t\r") == std::string::npos) {
      ++stats_.blank_lines;
      continue;
    }
    try {
      json record;
      try {
        record = json::parse(text);
      } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
        std::string hint;
        if (text.find("NaN") != std::string::npos || text.find("Infinity") != std::string::npos)
          hint = "; NaN and Infinity are not JSON (a non-finite number?)";
        throw DataError(str(path_, ":", line, ": invalid JSON (", e.what(), ")", hint));
      }
      CandidateList parsed = parse_candidate_list(record, path_, line, opts_);
      if (opts_.check_duplicate_ids && has_renamed(record, "id", opts_.fields)) {
        const auto [it, inserted] = id_lines_.emplace(parsed.id, line);
        if (!inserted)
          throw DataError(str(path_, ":", line, ": duplicate id '", parsed.id, "' (first on line ", it->second, ")"));
      }
      list = std::move(parsed);
      ++stats_.records;
      return true;
    } catch (const DataError& e) {
      if (!opts_.skip_invalid) throw;
      ++stats_.skipped;
      if (stats_.errors.size() < opts_.max_kept_errors) stats_.errors.push_back(e.what());
    }
  }
  if (in_.bad()) throw DataError(str(path_, ": read error after line ", stats_.lines));
  return false;
}

std::vector<CandidateList> read_candidate_lists(const std::string& path, const ReadOptions& opts,
                                                ReadStats* stats) {
  CandidateListReader reader(path, opts);
  std::vector<CandidateList> lists;
  CandidateList list;
  while (reader.next(list)) lists.push_back(std::move(list));
  if (stats) *stats = reader.stats();
  return lists;
}

// ---------------------------------------------------------------- tokenize

namespace {

void check_vocab(const std::vector<std::int64_t>& ids, const std::string& name, std::int64_t vocab_size,
                 const CandidateList& list) {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size)
      throw DataError(str(list.where(), ": ", name, "[", i, "] = ", ids[i], " is outside the vocabulary [0, ",
                          vocab_size, ")"));
}

// The rule, with `tokenizer` null when the list is pre-tokenized (then
// vocab_size bounds the ids and bos_id, -1 for none, is the BOS a truncated
// prompt keeps).
TokenizedList tokenize_impl(const CandidateList& list, const Tokenizer* tokenizer, std::int64_t vocab_size,
                            std::int64_t bos_id, const TokenizeOptions& opts) {
  check_template_name(opts.prompt_template);
  if (opts.max_length < 0 || opts.max_prompt_tokens < 0 || opts.max_response_tokens < 0)
    throw ConfigError(str("data.max_length, data.max_prompt_length and data.max_response_length must be >= 0 "
                          "(0 = no limit), got ", opts.max_length, ", ", opts.max_prompt_tokens, " and ",
                          opts.max_response_tokens));
  TokenizedList out;

  // Prompt: [BOS] + encode(template(prompt)), or the given ids.
  bool keeps_bos = false;
  if (list.prompt_ids) {
    out.prompt_ids = *list.prompt_ids;
    check_vocab(out.prompt_ids, "prompt_ids", vocab_size, list);
    keeps_bos = !out.prompt_ids.empty() && bos_id >= 0 && out.prompt_ids[0] == bos_id;
  } else {
    if (!tokenizer) throw DataError(str(list.where(), ": the prompt is text, and there is no tokenizer to encode it"));
    std::string text;
    try {
      text = apply_template(opts.prompt_template, list.prompt, list.input, list.system);
    } catch (const ConfigError& e) {
      throw DataError(str(list.where(), ": ", e.what()));
    }
    if (tokenizer->add_bos()) {
      if (tokenizer->bos_id() < 0)
        throw ConfigError(str(tokenizer->model_path(), ": add_bos_token is true but the tokenizer has no BOS token"));
      out.prompt_ids.push_back(tokenizer->bos_id());
      keeps_bos = true;
    }
    const auto ids = tokenizer->encode(text);
    out.prompt_ids.insert(out.prompt_ids.end(), ids.begin(), ids.end());
    if (opts.prompt_eos) {
      if (tokenizer->eos_id() < 0)
        throw ConfigError(str(tokenizer->model_path(), ": an encoder-decoder prompt ends with EOS, and the tokenizer "
                                                       "has no EOS token"));
      out.prompt_ids.push_back(tokenizer->eos_id());
    }
  }
  const auto max_prompt = static_cast<std::size_t>(opts.max_prompt_tokens);
  if (max_prompt > 0 && out.prompt_ids.size() > max_prompt) {
    const std::size_t head = keeps_bos ? 1 : 0;
    std::vector<std::int64_t> kept(out.prompt_ids.begin(), out.prompt_ids.begin() + std::min(head, max_prompt));
    const std::size_t tail = max_prompt - kept.size();
    kept.insert(kept.end(), out.prompt_ids.end() - static_cast<std::ptrdiff_t>(tail), out.prompt_ids.end());
    out.prompt_ids = std::move(kept);
    out.prompt_truncated = true;
  }
  if (out.prompt_ids.empty())
    throw DataError(str(list.where(), ": the prompt has no tokens; the first response token needs a context "
                                      "(give a prompt, or a BOS token)"));

  // Responses: encode(response) + [EOS], or the given ids, cut to what the
  // limits leave: max_response_tokens, and max_length minus the (cut) prompt.
  std::size_t max_response = static_cast<std::size_t>(opts.max_response_tokens);
  if (opts.max_length > 0) {
    const auto max_length = static_cast<std::size_t>(opts.max_length);
    if (out.prompt_ids.size() >= max_length)
      throw DataError(str(list.where(), ": the prompt has ", out.prompt_ids.size(),
                          " tokens, which leaves no room for a response under data.max_length=", max_length,
                          " (set data.max_prompt_length below it)"));
    const std::size_t room = max_length - out.prompt_ids.size();  // >= 1
    max_response = max_response > 0 ? std::min(max_response, room) : room;
  }
  const std::size_t k = list.size();
  out.response_ids.reserve(k);
  for (std::size_t i = 0; i < k; ++i) {
    std::vector<std::int64_t> ids;
    bool eos = false;
    if (list.responses_ids) {
      ids = (*list.responses_ids)[i];
      check_vocab(ids, str("responses_ids[", i, "]"), vocab_size, list);
    } else {
      if (!tokenizer) throw DataError(str(list.where(), ": response ", i, " is text, and there is no tokenizer to encode it"));
      ids = tokenizer->encode(list.responses[i]);
      eos = opts.append_eos;
      if (eos && tokenizer->eos_id() < 0)
        throw ConfigError(str(tokenizer->model_path(), ": data.append_eos is true but the tokenizer has no EOS token"));
    }
    if (max_response > 0 && ids.size() + (eos ? 1 : 0) > max_response) {
      if (ids.size() > max_response) ids.resize(max_response);
      eos = false;  // a cut response did not end: no EOS
      ++out.responses_truncated;
    }
    if (eos) ids.push_back(tokenizer->eos_id());
    if (ids.empty())
      throw DataError(str(list.where(), ": response ", i, " has no tokens (an empty text without EOS)"));
    out.response_ids.push_back(std::move(ids));
  }
  return out;
}

}  // namespace

TokenizedList tokenize(const CandidateList& list, const Tokenizer& tokenizer, const TokenizeOptions& opts) {
  return tokenize_impl(list, &tokenizer, tokenizer.vocab_size(), tokenizer.bos_id(), opts);
}

TokenizedList tokenize_pretokenized(const CandidateList& list, std::int64_t vocab_size, std::int64_t bos_id,
                                    const TokenizeOptions& opts) {
  if (needs_tokenizer(list))
    throw DataError(str(list.where(), ": the record holds text, and there is no tokenizer to encode it"));
  return tokenize_impl(list, nullptr, vocab_size, bos_id, opts);
}

TokenizeOptions tokenize_options(const config::DataOptions& data) {
  TokenizeOptions o;
  o.prompt_template = data.prompt_template;
  o.append_eos = data.append_eos;
  o.max_length = data.max_length;
  o.max_prompt_tokens = data.max_prompt_length;
  o.max_response_tokens = data.max_response_length;
  return o;
}

FolderTokenizer::FolderTokenizer(std::string folder, std::int64_t vocab_size, std::int64_t bos_id)
    : folder_(std::move(folder)), vocab_size_(vocab_size), bos_id_(bos_id) {}
FolderTokenizer::~FolderTokenizer() = default;
FolderTokenizer::FolderTokenizer(FolderTokenizer&&) noexcept = default;

TokenizedList FolderTokenizer::tokenize(const CandidateList& list, const TokenizeOptions& opts) {
  if (!needs_tokenizer(list)) return tokenize_pretokenized(list, vocab_size_, bos_id_, opts);
  if (!tokenizer_) tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_folder(folder_));
  return data::tokenize(list, *tokenizer_, opts);
}

}  // namespace lire::data

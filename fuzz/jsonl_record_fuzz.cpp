// Fuzz target: the JSONL readers of candidate lists and scored lists, every
// record format they accept (canonical, pairs, HH dialogues, PRO,
// pre-tokenized; docs/data.md) and the streaming and indexed readers around
// them.
//
// The input is a JSONL file (written to a scratch file: the readers take a
// path). It goes through
//   - read_scored_lists (lire-loss's format);
//   - read_candidate_lists under four ReadOptions: the defaults; skip_invalid
//     with prompt-only records, duplicate-id checks and a vocabulary bound;
//     a data.fields renaming; and skip_invalid with the renaming;
//     then, for every list, training_targets, subsample and (pre-tokenized
//     lists) tokenize_pretokenized with truncation limits;
//   - ListDataset::open (on_error skip, max_responses 2, an eval split) and
//     get() of every record.
// lire::Error (DataError, ConfigError) is the expected outcome for bad input.
// What the readers return must be consistent (checked below): one value per
// candidate in every per-candidate field, ids inside the vocabulary,
// truncation within its limits, the same records from both readers.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "lire/core/error.h"
#include "lire/data/candidate_list.h"
#include "lire/data/list_dataset.h"
#include "lire/data/scored_list.h"

namespace {

using namespace lire::data;

constexpr int64_t kVocab = 1000;

template <typename T>
bool fits(const std::optional<std::vector<T>>& field, std::size_t k) {
  return !field || field->size() == k;
}

void check_list(const CandidateList& list, const ReadOptions& opts) {
  const std::size_t k = list.size();
  LIRE_FUZZ_EXPECT(k > 0 || opts.allow_prompt_only, "a list has candidates unless prompt-only records are allowed");
  LIRE_FUZZ_EXPECT(list.responses.empty() || list.responses.size() == k, "one response text per candidate");
  LIRE_FUZZ_EXPECT(fits(list.rewards, k) && fits(list.ranks, k) && fits(list.labels, k) && fits(list.ref_logps, k) &&
                       fits(list.ref_token_counts, k) && fits(list.human, k),
                   "one value per candidate in every per-candidate field");
  if (list.ranks)
    for (int64_t r : *list.ranks) LIRE_FUZZ_EXPECT(r >= 1, "ranks are positive");
  if (list.labels)
    for (double l : *list.labels) LIRE_FUZZ_EXPECT(l >= 0.0 && l <= 1.0, "labels lie in [0, 1]");
  const auto check_ids = [&](const std::vector<int64_t>& ids) {
    for (int64_t id : ids)
      LIRE_FUZZ_EXPECT(id >= 0 && (opts.vocab_size == 0 || id < opts.vocab_size), "token ids inside the vocabulary");
  };
  if (list.prompt_ids) check_ids(*list.prompt_ids);
  if (list.responses_ids)
    for (const auto& ids : *list.responses_ids) {
      LIRE_FUZZ_EXPECT(!ids.empty(), "pre-tokenized responses are not empty");
      check_ids(ids);
    }
}

void use_list(const CandidateList& list, const ReadOptions& opts) {
  check_list(list, opts);
  try {
    const TrainingTargets targets = training_targets(list);
    LIRE_FUZZ_EXPECT(targets.values.size() == list.size(), "one training target per candidate");
  } catch (const lire::DataError&) {
  }
  const CandidateList sub = subsample(list, 2, 42);
  LIRE_FUZZ_EXPECT(sub.size() == std::min<std::size_t>(list.size(), 2), "subsample keeps min(K, 2) candidates");
  check_list(sub, opts);
  if (!needs_tokenizer(list)) {
    TokenizeOptions topts;
    topts.max_length = 12;
    topts.max_prompt_tokens = 6;
    topts.max_response_tokens = 4;
    try {
      const TokenizedList t = tokenize_pretokenized(list, kVocab, /*bos_id=*/1, topts);
      LIRE_FUZZ_EXPECT(t.response_ids.size() == list.size(), "one tokenized response per candidate");
      LIRE_FUZZ_EXPECT(!t.prompt_ids.empty() && t.prompt_ids.size() <= 6, "prompt cut to max_prompt_tokens");
      for (const auto& ids : t.response_ids)
        LIRE_FUZZ_EXPECT(!ids.empty() && ids.size() <= 4 && t.prompt_ids.size() + ids.size() <= 12,
                         "responses cut to max_response_tokens and max_length");
    } catch (const lire::Error&) {
    }
  }
}

std::vector<ReadOptions> option_sets() {
  std::vector<ReadOptions> sets(4);
  sets[1].skip_invalid = true;
  sets[1].allow_prompt_only = true;
  sets[1].check_duplicate_ids = true;
  sets[1].vocab_size = kVocab;
  const std::map<std::string, std::string> fields = {
      {"question", "prompt"}, {"answers", "responses"}, {"score", "rewards"}, {"good", "chosen"}, {"bad", "rejected"}};
  sets[2].fields = fields;
  sets[3].fields = fields;
  sets[3].skip_invalid = true;
  return sets;
}

void read_candidates(const std::string& path, const ReadOptions& opts, const char* step) {
  try {
    ReadStats stats;
    const std::vector<CandidateList> lists = read_candidate_lists(path, opts, &stats);
    LIRE_FUZZ_EXPECT(stats.records == lists.size(), "stats count the records returned");
    LIRE_FUZZ_EXPECT(stats.records + stats.skipped + stats.blank_lines == stats.lines,
                     "every line is a record, skipped or blank");
    for (const auto& list : lists) use_list(list, opts);
    lire::fuzz::note(step);
  } catch (const lire::Error& e) {
    lire::fuzz::note(step, e);
  }
}

void read_dataset(const std::string& path, const std::vector<std::string>& skip_ids) {
  ListDatasetOptions opts;
  opts.on_error = "skip";
  opts.max_responses = 2;
  opts.eval_fraction = 0.25;
  opts.require_targets = false;
  try {
    const ListDataset ds = ListDataset::open(path, opts);
    // The same records as the streaming reader with skip_invalid (ids compared in order).
    LIRE_FUZZ_EXPECT(ds.size() == skip_ids.size(), "ListDataset and CandidateListReader keep the same records");
    for (std::size_t i = 0; i < ds.size(); ++i) {
      const CandidateList list = ds.get(i);
      LIRE_FUZZ_EXPECT(list.id == skip_ids[i], "ListDataset::get returns the record the reader returned");
      LIRE_FUZZ_EXPECT(list.size() <= 2, "max_responses applies");
    }
    const auto [train, eval] = ds.split();
    LIRE_FUZZ_EXPECT(train.size() + eval.size() == ds.size(), "the split covers every record");
    lire::fuzz::note("ListDataset");
  } catch (const lire::Error& e) {
    lire::fuzz::note("ListDataset", e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static lire::fuzz::ScratchFile scratch(".jsonl");
  static const std::vector<ReadOptions> sets = option_sets();
  const std::string& path = scratch.write(data, size);

  try {
    for (const ScoredList& list : read_scored_lists(path)) {
      const std::size_t k = list.logps.size();
      LIRE_FUZZ_EXPECT(list.rewards.empty() || list.rewards.size() == k, "scored list: one reward per logp");
      LIRE_FUZZ_EXPECT(list.ref_logps.empty() || list.ref_logps.size() == k, "scored list: one ref_logp per logp");
      LIRE_FUZZ_EXPECT(!list.sft_index || (*list.sft_index >= -1 && *list.sft_index < static_cast<int64_t>(k)),
                       "scored list: sft_index in range");
    }
    lire::fuzz::note("read_scored_lists");
  } catch (const lire::Error& e) {
    lire::fuzz::note("read_scored_lists", e);
  }

  const char* steps[] = {"read_candidate_lists (defaults)", "read_candidate_lists (skip, prompt-only, ids, vocab)",
                         "read_candidate_lists (fields)", "read_candidate_lists (fields, skip)"};
  for (std::size_t s = 0; s < sets.size(); ++s) read_candidates(path, sets[s], steps[s]);

  // The streaming reader with exactly ListDataset's options, as the dataset's reference.
  ReadOptions dataset_like;
  dataset_like.skip_invalid = true;
  std::vector<std::string> ids;
  bool reader_ok = true;
  try {
    CandidateListReader reader(path, dataset_like);
    CandidateList list;
    while (reader.next(list)) ids.push_back(list.id);
  } catch (const lire::Error& e) {
    lire::fuzz::note("CandidateListReader (skip)", e);
    reader_ok = false;
  }
  if (reader_ok) read_dataset(path, ids);
  return 0;
}

// Training datasets over a JSONL file of candidate lists, with bounded memory.
//
// ListDataset::open makes one pass over the file and keeps, for every valid
// non-blank line, only its byte offset and line number (16 bytes a record, never
// the records): a 10 GB file costs its record count times 16 bytes. Every record
// is parsed once at open (parse_candidate_list, the reader's own validation), so
// bad data fails before training starts with "file:line: reason"; get(i) seeks
// to the offset and parses the line again.
//
// Around it, the pieces a trainer needs for deterministic, resumable data order:
//   split_indices  a seeded train/eval split (data.eval_fraction)
//   EpochOrder     a seeded permutation per epoch, so a data position is
//                  (epoch, index within the epoch) and resume is exact
//   subsample      data.max_responses: a seeded subset of K responses per list
//   training_targets  the values a listwise loss trains on, and what they are
// All randomness is std::mt19937_64 (whose output the standard fixes) with our
// own Fisher-Yates and bounded draws, never std::shuffle or
// std::uniform_int_distribution (implementation-defined), so orders are the
// same on every platform and standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lire/data/candidate_list.h"

namespace lire::data {

struct ListDatasetOptions {
  std::string on_error = "fail";   // data.on_error: "fail" (first bad record throws) | "skip" (left out, counted)
  double eval_fraction = 0.0;      // data.eval_fraction: share of records held out for eval, in [0, 1)
  std::uint64_t seed = 1234;       // seed of the eval split and of max_responses subsets
  std::size_t max_responses = 0;   // data.max_responses: keep at most this many responses a list; 0 = all
  std::int64_t vocab_size = 0;     // pre-tokenized ids must lie in [0, vocab_size); 0 = unchecked
  bool require_targets = true;     // a record without rewards, ranks or labels is an error at open
  // data.fields: a record's field names -> canonical names, applied before each
  // record is read (ReadOptions::fields); empty = the names as documented.
  std::map<std::string, std::string> fields;
};

class ListDataset {
 public:
  // Indexes and validates `path`. Throws DataError "file:line: reason" for the
  // first bad record (on_error "fail"), DataError when the file cannot be read,
  // ConfigError for invalid options (fields included).
  static ListDataset open(const std::string& path, const ListDatasetOptions& opts = {});

  // Number of valid records.
  std::size_t size() const { return index_.size(); }
  // Record i (0 <= i < size()), with max_responses applied. Opens its own
  // stream, so concurrent const calls are safe. Throws DataError when i is out
  // of range or the file changed since open.
  CandidateList get(std::size_t i) const;
  // 1-based line of record i in the file.
  std::size_t line(std::size_t i) const;

  // Counts from open: lines, blank lines, records, skipped and the first 20 reasons.
  const ReadStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }
  const ListDatasetOptions& options() const { return opts_; }

  // split_indices(size(), options().eval_fraction, options().seed).
  std::pair<std::vector<std::size_t>, std::vector<std::size_t>> split() const;

 private:
  struct Entry {
    std::uint64_t offset;  // byte offset of the line's first character
    std::uint64_t line;    // 1-based line number
  };
  static_assert(sizeof(Entry) == 16, "an index entry is 16 bytes");

  std::string path_;
  ListDatasetOptions opts_;
  ReadOptions read_opts_;
  std::vector<Entry> index_;
  ReadStats stats_;
};

// Deterministic split of [0, n) into (train, eval): eval holds round(n *
// eval_fraction) indices, the first ones of a seeded Fisher-Yates permutation;
// both lists come back sorted. ConfigError unless 0 <= eval_fraction < 1.
std::pair<std::vector<std::size_t>, std::vector<std::size_t>> split_indices(std::size_t n, double eval_fraction,
                                                                            std::uint64_t seed);

// The order records are visited in each epoch: with `shuffle`, a permutation of
// `indices` seeded by seed ^ mix(epoch) (splitmix64), else `indices` as given.
// The same (indices, seed, epoch) always gives the same order.
//
// Length grouping (group_by_length): the epoch's order is then cut into
// windows of `window` records; each window is sorted by length, longest
// first (ties keep their order), cut into runs of `group` records, and the
// runs are visited in a seeded order (the window's longest run first, as HF's
// LengthGroupedSampler, so a run out of memory shows at once). A run is one
// micro-batch of one rank when `group` is the per-rank batch and `window` a
// multiple of the global step, so batches hold lists of similar lengths and
// carry little padding. Deterministic like the plain order.
class EpochOrder {
 public:
  EpochOrder(std::vector<std::size_t> indices, std::uint64_t seed, bool shuffle);
  // lengths[record] for every record in indices; group >= 1; window a multiple of group.
  void group_by_length(std::vector<std::size_t> lengths, std::size_t group, std::size_t window);
  // The order of `epoch` (0-based); the reference stays valid until the next call.
  const std::vector<std::size_t>& order(std::size_t epoch);
  std::size_t size() const { return indices_.size(); }

 private:
  std::vector<std::size_t> indices_;
  std::uint64_t seed_;
  bool shuffle_;
  std::vector<std::size_t> lengths_;  // empty: no grouping
  std::size_t group_ = 0, window_ = 0;
  std::size_t cached_epoch_ = 0;
  bool has_cache_ = false;
  std::vector<std::size_t> cache_;
};

// A copy of `list` keeping k of its responses, chosen by `seed`, in their
// original order, with every per-response field (responses, responses_ids,
// rewards, ranks, labels, ref_logps, ref_token_counts, human) cut alike. k = 0
// or k >= K returns the list unchanged. `raw` is left as read.
CandidateList subsample(const CandidateList& list, std::size_t k, std::uint64_t seed);

// The seed ListDataset gives subsample for the record on `line`: a mix of the
// dataset seed and the line, so a record keeps the same responses every epoch
// and whatever the split.
std::uint64_t subsample_seed(std::uint64_t dataset_seed, std::size_t line);

// What a listwise loss trains on, by preference:
//   rewards  "rewards": the rewards as given (the trainer applies its configured
//            label_transform)
//   ranks    "ranks":   values = -rank (higher is better; use label_transform
//            rank-winrate). Pairs have ranks [1, 2] from the reader.
//   labels   "labels":  psi in [0, 1] as given (label_transform none)
struct TrainingTargets {
  std::vector<double> values;  // one per response
  std::string kind;            // "rewards" | "ranks" | "labels"
};

// Throws DataError "file:line: ..." for a list with none of the three.
TrainingTargets training_targets(const CandidateList& list);

}  // namespace lire::data

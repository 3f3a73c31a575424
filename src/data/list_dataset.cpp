// ListDataset: an offset index over a JSONL file of candidate lists, plus the
// seeded split, epoch order and response subsampling. See list_dataset.h.
#include "lire/data/list_dataset.h"

#include "lire/core/portable_random.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "lire/core/error.h"

namespace lire::data {

using nlohmann::json;

namespace {


// Fisher-Yates, written out (std::shuffle's algorithm is implementation-defined).
template <typename T>
void fisher_yates(std::vector<T>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(uniform_below(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

bool is_blank(const std::string& text) { return text.find_first_not_of(" \t\r") == std::string::npos; }

// Parses one line of `file` (CR already removed) into a list; DataError "file:line: reason".
CandidateList parse_line(const std::string& text, const std::string& file, std::size_t line,
                         const ReadOptions& opts) {
  json record;
  try {
    record = json::parse(text);
  } catch (const json::exception& e) {
    std::string hint;
    if (text.find("NaN") != std::string::npos || text.find("Infinity") != std::string::npos)
      hint = "; NaN and Infinity are not JSON (a non-finite number?)";
    throw DataError(str(file, ":", line, ": invalid JSON (", e.what(), ")", hint));
  }
  return parse_candidate_list(record, file, line, opts);
}

template <typename T>
void keep(std::optional<std::vector<T>>& field, const std::vector<std::size_t>& kept) {
  if (!field) return;
  std::vector<T> out;
  out.reserve(kept.size());
  for (std::size_t i : kept) out.push_back((*field)[i]);
  field = std::move(out);
}

}  // namespace

// ---------------------------------------------------------------- ListDataset

ListDataset ListDataset::open(const std::string& path, const ListDatasetOptions& opts) {
  if (opts.on_error != "fail" && opts.on_error != "skip")
    throw ConfigError(str("data.on_error must be 'fail' or 'skip', got '", opts.on_error, "'"));
  if (!(opts.eval_fraction >= 0.0 && opts.eval_fraction < 1.0))
    throw ConfigError(str("data.eval_fraction must lie in [0, 1), got ", opts.eval_fraction));
  if (opts.vocab_size < 0) throw ConfigError(str("vocab_size must be >= 0, got ", opts.vocab_size));
  check_field_map(opts.fields);

  ListDataset ds;
  ds.path_ = path;
  ds.opts_ = opts;
  ds.read_opts_.vocab_size = opts.vocab_size;
  ds.read_opts_.skip_invalid = opts.on_error == "skip";
  ds.read_opts_.fields = opts.fields;
  const bool skip = ds.read_opts_.skip_invalid;

  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw DataError(str(path, ": is a directory, not a JSONL file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(str(path, ": cannot open file"));

  std::string text;
  std::uint64_t offset = 0;
  while (std::getline(in, text)) {
    const std::uint64_t line_offset = offset;
    offset += text.size() + 1;  // the '\n' getline consumed (one too many on an unterminated last line: harmless)
    const std::size_t line = ++ds.stats_.lines;
    std::uint64_t start = line_offset;
    if (line == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0) {  // UTF-8 byte-order mark
      text.erase(0, 3);
      start += 3;
    }
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (is_blank(text)) {
      ++ds.stats_.blank_lines;
      continue;
    }
    try {
      const CandidateList list = parse_line(text, path, line, ds.read_opts_);
      if (opts.require_targets) training_targets(list);
      ds.index_.push_back(Entry{start, line});
      ++ds.stats_.records;
    } catch (const DataError& e) {
      if (!skip) throw;
      ++ds.stats_.skipped;
      if (ds.stats_.errors.size() < ds.read_opts_.max_kept_errors) ds.stats_.errors.push_back(e.what());
    }
  }
  if (in.bad()) throw DataError(str(path, ": read error after line ", ds.stats_.lines));
  ds.index_.shrink_to_fit();
  return ds;
}

std::size_t ListDataset::line(std::size_t i) const {
  if (i >= index_.size())
    throw DataError(str(path_, ": record ", i, " is out of range (the dataset has ", index_.size(), " records)"));
  return static_cast<std::size_t>(index_[i].line);
}

CandidateList ListDataset::get(std::size_t i) const {
  const std::size_t line_no = line(i);
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw DataError(str(path_, ": cannot open file"));
  in.seekg(static_cast<std::streamoff>(index_[i].offset));
  std::string text;
  if (!in || !std::getline(in, text))
    throw DataError(str(path_, ":", line_no, ": cannot read the record (the file changed since it was opened?)"));
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (is_blank(text))
    throw DataError(str(path_, ":", line_no, ": the record is blank (the file changed since it was opened?)"));
  ReadOptions strict = read_opts_;
  strict.skip_invalid = false;  // it was valid at open; an error now is a real error
  CandidateList list = parse_line(text, path_, line_no, strict);
  if (opts_.max_responses > 0 && list.size() > opts_.max_responses)
    list = subsample(list, opts_.max_responses, subsample_seed(opts_.seed, line_no));
  return list;
}

std::pair<std::vector<std::size_t>, std::vector<std::size_t>> ListDataset::split() const {
  return split_indices(size(), opts_.eval_fraction, opts_.seed);
}

// ---------------------------------------------------------------- split, epochs

std::pair<std::vector<std::size_t>, std::vector<std::size_t>> split_indices(std::size_t n, double eval_fraction,
                                                                            std::uint64_t seed) {
  if (!(eval_fraction >= 0.0 && eval_fraction < 1.0))
    throw ConfigError(str("eval_fraction must lie in [0, 1), got ", eval_fraction));
  const auto n_eval = static_cast<std::size_t>(std::llround(static_cast<double>(n) * eval_fraction));
  std::vector<std::size_t> perm(n);
  for (std::size_t i = 0; i < n; ++i) perm[i] = i;
  std::mt19937_64 rng(splitmix64(seed));
  fisher_yates(perm, rng);
  std::vector<std::size_t> eval(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(n_eval));
  std::vector<std::size_t> train(perm.begin() + static_cast<std::ptrdiff_t>(n_eval), perm.end());
  std::sort(eval.begin(), eval.end());
  std::sort(train.begin(), train.end());
  return {std::move(train), std::move(eval)};
}

EpochOrder::EpochOrder(std::vector<std::size_t> indices, std::uint64_t seed, bool shuffle)
    : indices_(std::move(indices)), seed_(seed), shuffle_(shuffle) {}

void EpochOrder::group_by_length(std::vector<std::size_t> lengths, std::size_t group, std::size_t window) {
  if (group == 0 || window == 0 || window % group != 0)
    throw Error(str("length grouping: window (", window, ") must be a positive multiple of the group (", group, ")"));
  for (auto i : indices_)
    if (i >= lengths.size()) throw Error(str("length grouping: no length for record ", i));
  lengths_ = std::move(lengths);
  group_ = group;
  window_ = window;
  has_cache_ = false;
}

const std::vector<std::size_t>& EpochOrder::order(std::size_t epoch) {
  if (!shuffle_ && lengths_.empty()) return indices_;
  if (has_cache_ && cached_epoch_ == epoch) return cache_;
  cache_ = indices_;
  std::mt19937_64 rng(seed_ ^ splitmix64(static_cast<std::uint64_t>(epoch)));
  if (shuffle_) fisher_yates(cache_, rng);
  if (!lengths_.empty()) {
    std::vector<std::size_t> grouped;
    grouped.reserve(cache_.size());
    for (std::size_t begin = 0; begin < cache_.size(); begin += window_) {
      const std::size_t end = std::min(cache_.size(), begin + window_);
      std::vector<std::size_t> w(cache_.begin() + begin, cache_.begin() + end);
      std::stable_sort(w.begin(), w.end(), [&](std::size_t a, std::size_t b) { return lengths_[a] > lengths_[b]; });
      // Runs of `group`: the longest first, the other full ones in a seeded
      // order (sorted without shuffle), a short run (the epoch's end) last so
      // that every full run stays aligned with a micro-batch.
      std::vector<std::size_t> runs;
      for (std::size_t r = 0; r * group_ < w.size(); ++r) runs.push_back(r);
      const std::size_t full = w.size() / group_;
      if (shuffle_ && full > 2) {
        std::vector<std::size_t> middle(runs.begin() + 1, runs.begin() + static_cast<std::ptrdiff_t>(full));
        fisher_yates(middle, rng);
        std::copy(middle.begin(), middle.end(), runs.begin() + 1);
      }
      for (auto r : runs)
        for (std::size_t i = r * group_; i < std::min(w.size(), (r + 1) * group_); ++i) grouped.push_back(w[i]);
    }
    cache_ = std::move(grouped);
  }
  cached_epoch_ = epoch;
  has_cache_ = true;
  return cache_;
}

// ---------------------------------------------------------------- subsample

std::uint64_t subsample_seed(std::uint64_t dataset_seed, std::size_t line) {
  return splitmix64(dataset_seed ^ splitmix64(static_cast<std::uint64_t>(line)));
}

CandidateList subsample(const CandidateList& list, std::size_t k, std::uint64_t seed) {
  const std::size_t n = list.size();
  if (k == 0 || k >= n) return list;
  std::vector<std::size_t> perm(n);
  for (std::size_t i = 0; i < n; ++i) perm[i] = i;
  std::mt19937_64 rng(seed);
  // Partial Fisher-Yates: the first k slots become a uniform k-subset.
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(uniform_below(rng, n - i));
    std::swap(perm[i], perm[j]);
  }
  std::vector<std::size_t> kept(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(k));
  std::sort(kept.begin(), kept.end());  // original order

  CandidateList out = list;
  if (!out.responses.empty()) {
    std::vector<std::string> responses;
    responses.reserve(k);
    for (std::size_t i : kept) responses.push_back(list.responses[i]);
    out.responses = std::move(responses);
  }
  keep(out.responses_ids, kept);
  keep(out.rewards, kept);
  keep(out.ranks, kept);
  keep(out.labels, kept);
  keep(out.ref_logps, kept);
  keep(out.ref_token_counts, kept);
  keep(out.human, kept);
  return out;
}

// ---------------------------------------------------------------- targets

TrainingTargets training_targets(const CandidateList& list) {
  TrainingTargets t;
  if (list.rewards) {
    t.values = *list.rewards;
    t.kind = "rewards";
  } else if (list.ranks) {
    t.values.reserve(list.ranks->size());
    for (std::int64_t r : *list.ranks) t.values.push_back(-static_cast<double>(r));
    t.kind = "ranks";
  } else if (list.labels) {
    t.values = *list.labels;
    t.kind = "labels";
  } else {
    throw DataError(str(list.where(), ": the list has no 'rewards', 'ranks' or 'labels' to train on"));
  }
  return t;
}

}  // namespace lire::data

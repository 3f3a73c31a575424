// Scored candidate lists: one JSON object per line, a prompt's candidates with
// the numbers a loss needs. Used by lire-loss to evaluate losses on lists whose
// policy log-probs are already known (e.g. written by lire-score).
//
//   {"id": "p1", "logps": [-12.5, -14.0], "rewards": [0.7, 0.1],
//    "ref_logps": [-12.9, -13.2], "token_counts": [9, 11], "sft_index": 0}
//
// logps is required; rewards is required except for the sft loss; ref_logps,
// token_counts and sft_index are optional, but a field present on one line must
// be present on all. Lists may have different lengths (batches are padded).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lire::data {

struct ScoredList {
  std::string id;                     // "id" (a string or number), or "<file>:<line>"
  std::vector<double> logps;          // policy sequence log-probs, one per candidate
  std::vector<double> rewards;        // rewards (or labels), empty when absent
  std::vector<double> ref_logps;      // reference log-probs, empty when absent
  std::vector<double> token_counts;   // response token counts, empty when absent
  std::optional<std::int64_t> sft_index;  // SFT target candidate
};

// Reads a JSONL file. Blank lines are skipped; anything else malformed (bad
// JSON, a missing or non-numeric field, lists of different lengths, a NaN
// spelled as a string, fields on some lines only) throws DataError "file:line: reason".
std::vector<ScoredList> read_scored_lists(const std::string& path);

}  // namespace lire::data

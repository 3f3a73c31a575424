// How lire-sample and lire-score read their input records: the data section's
// field names (data.fields) and data.on_error. With `skip`, a malformed record
// is left out of the output, counted and reported; with `fail` (the default)
// the first one stops the command with its file:line.
#pragma once

#include <string>

#include <spdlog/spdlog.h>

#include "lire/config/config.h"
#include "lire/data/candidate_list.h"

namespace lire::cli {

inline data::ReadOptions input_read_options(const config::Config& cfg) {
  data::ReadOptions read;
  read.fields = cfg.data.fields;
  read.skip_invalid = cfg.data.on_error == "skip";
  return read;
}

// Warns of the records `reader` skipped (the first reasons, then the count);
// `log`: this process reports (rank 0).
inline void report_skipped(const data::CandidateListReader& reader, const std::string& path, bool log) {
  const auto& stats = reader.stats();
  if (!log || stats.skipped == 0) return;
  for (const auto& reason : stats.errors) spdlog::warn("skipped {}", reason);
  spdlog::warn("{}: {} malformed record(s) skipped (data.on_error: skip)", path, stats.skipped);
}

}  // namespace lire::cli

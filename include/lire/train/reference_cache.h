// Reference log-probs computed once and kept on disk (train.reference: auto
// with a frozen reference): one table per dataset file, [N records, K_max]
// sequence log-probs (float64, NaN where a list has fewer responses) and token
// counts, in a safetensors file whose metadata holds the key it was computed
// for. The key names everything the numbers depend on: the model folder and
// adapter (file names, sizes and modification times, config.json's text), the
// data file (path, size, modification time, records), the tokenization and
// truncation options, max_responses and its seed, and the compute dtype. A
// cache whose key differs is never used silently: resume fails naming the
// first differing entry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace lire::train {

struct ReferenceTable {
  torch::Tensor logps;         // [N, K_max] float64, NaN where absent
  torch::Tensor token_counts;  // [N, K_max] int64, 0 where absent
};

// What identifies a folder's content cheaply: config.json's text (when
// present) and the name, size and mtime of every regular file in it.
nlohmann::json folder_fingerprint(const std::string& folder);
// Path, size and modification time of one file.
nlohmann::json file_fingerprint(const std::string& path);

// The first top-level entry where two keys differ ("" when equal), for messages.
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b);

// Writes `table` with `key` to `path` atomically.
void save_reference_table(const std::string& path, const nlohmann::json& key, const ReferenceTable& table);

// Reads `path` when it exists; nullopt when it does not. A file written for
// another key throws lire::Error naming the file and the differing entry.
std::optional<ReferenceTable> load_reference_table(const std::string& path, const nlohmann::json& key);

}  // namespace lire::train

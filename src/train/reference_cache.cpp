// On-disk reference log-prob tables (see the header).
#include "lire/train/reference_cache.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/io/safetensors.h"

namespace lire::train {
namespace fs = std::filesystem;

nlohmann::json file_fingerprint(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw Error(str(path, ": cannot read the file (", ec.message(), ")"));
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  return {{"path", fs::absolute(path).lexically_normal().string()}, {"size", size}, {"mtime", mtime}};
}

nlohmann::json folder_fingerprint(const std::string& folder) {
  nlohmann::json files = nlohmann::json::object();
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw Error(str(folder, ": not a folder"));
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    const auto mtime = entry.last_write_time().time_since_epoch().count();
    files[entry.path().filename().string()] = {{"size", entry.file_size()}, {"mtime", mtime}};
  }
  nlohmann::json out = {{"path", fs::absolute(folder).lexically_normal().string()}, {"files", files}};
  std::ifstream config((fs::path(folder) / "config.json").string());
  if (config) {
    std::stringstream text;
    text << config.rdbuf();
    out["config.json"] = text.str();
  }
  return out;
}

std::string first_difference(const nlohmann::json& a, const nlohmann::json& b) {
  if (a == b) return "";
  if (!a.is_object() || !b.is_object()) return "(the whole key)";
  for (auto it = a.begin(); it != a.end(); ++it)
    if (!b.contains(it.key()) || b.at(it.key()) != it.value()) return it.key();
  for (auto it = b.begin(); it != b.end(); ++it)
    if (!a.contains(it.key())) return it.key();
  return "(the whole key)";
}

void save_reference_table(const std::string& path, const nlohmann::json& key, const ReferenceTable& table) {
  fs::create_directories(fs::path(path).parent_path());
  io::save_safetensors(path, {{"logps", table.logps.to(torch::kFloat64).cpu().contiguous()},
                              {"token_counts", table.token_counts.to(torch::kLong).cpu().contiguous()}},
                       {{"format", "lire-reference"}, {"key", key.dump()}});
}

std::optional<ReferenceTable> load_reference_table(const std::string& path, const nlohmann::json& key) {
  if (!fs::exists(path)) return std::nullopt;
  const auto file = io::SafetensorsFile::open(path);
  const auto& meta = file->header().metadata;
  const auto it = meta.find("key");
  if (it == meta.end()) throw Error(str(path, ": not a lire reference table (no 'key' in its metadata)"));
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception&) {
    throw Error(str(path, ": the key in its metadata is not valid JSON"));
  }
  if (stored != key)
    throw Error(str(path, ": these reference log-probs were computed for other inputs (", first_difference(stored, key),
                    " differs); delete the file to recompute them"));
  ReferenceTable t;
  t.logps = file->tensor("logps").clone();
  t.token_counts = file->tensor("token_counts").clone();
  if (t.logps.dim() != 2 || t.token_counts.sizes() != t.logps.sizes())
    throw Error(str(path, ": logps and token_counts must be [records, K] tables of one shape"));
  return t;
}

}  // namespace lire::train

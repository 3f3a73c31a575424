// Reading and writing JSONL files in tests.
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lire::testing {

// Every line of `path` parsed as JSON (a malformed line throws).
inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// One record per line.
inline void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& records) {
  std::ofstream out(path);
  for (const auto& r : records) out << r.dump() << "\n";
}

// The file's bytes.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace lire::testing

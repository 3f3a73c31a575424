#include "lire/data/scored_list.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lire/core/error.h"

namespace lire::data {
namespace {

std::vector<double> numbers(const nlohmann::json& record, const char* key, const std::string& where,
                            bool required) {
  std::vector<double> out;
  if (!record.contains(key) || record[key].is_null()) {
    if (required) throw DataError(str(where, ": missing field '", key, "'"));
    return out;
  }
  const auto& a = record[key];
  if (!a.is_array()) throw DataError(str(where, ": field '", key, "' must be a list of numbers"));
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number())
      throw DataError(str(where, ": ", key, "[", i, "] must be a number, got ", a[i].dump()));
    out.push_back(a[i].get<double>());
    if (!std::isfinite(out.back()))
      throw DataError(str(where, ": ", key, "[", i, "] is not finite"));
  }
  return out;
}

}  // namespace

std::vector<ScoredList> read_scored_lists(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(str(path, ": cannot open file"));
  std::vector<ScoredList> lists;
  std::string line;
  std::size_t line_no = 0;
  std::vector<bool> has_field;  // per optional field: present on the first record?
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = str(path, ":", line_no);
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers out of range (1e999)
      throw DataError(str(where, ": invalid JSON (", e.what(), ")"));
    }
    if (!record.is_object()) throw DataError(str(where, ": a record must be a JSON object"));
    ScoredList list;
    if (record.contains("id") && !record["id"].is_null())
      list.id = record["id"].is_string() ? record["id"].get<std::string>() : record["id"].dump();
    else
      list.id = where;
    list.logps = numbers(record, "logps", where, true);
    list.rewards = numbers(record, "rewards", where, false);
    list.ref_logps = numbers(record, "ref_logps", where, false);
    list.token_counts = numbers(record, "token_counts", where, false);
    const std::size_t k = list.logps.size();
    const std::pair<const char*, const std::vector<double>*> fields[] = {
        {"rewards", &list.rewards}, {"ref_logps", &list.ref_logps}, {"token_counts", &list.token_counts}};
    std::vector<bool> present;
    for (const auto& [name, values] : fields) {
      const bool has = record.contains(name) && !record[name].is_null();
      present.push_back(has);
      if (has && values->size() != k)
        throw DataError(str(where, ": '", name, "' has ", values->size(), " entries but 'logps' has ", k));
    }
    for (double c : list.token_counts)
      if (c <= 0) throw DataError(str(where, ": token_counts must be positive"));
    if (record.contains("sft_index") && !record["sft_index"].is_null()) {
      if (!record["sft_index"].is_number_integer())
        throw DataError(str(where, ": 'sft_index' must be an integer"));
      const auto index = record["sft_index"].get<std::int64_t>();
      if (index < -1 || index >= static_cast<std::int64_t>(k))
        throw DataError(str(where, ": 'sft_index' ", index, " is outside [-1, ", k, ")"));
      list.sft_index = index;
    }
    present.push_back(list.sft_index.has_value());
    if (lists.empty()) {
      has_field = present;
    } else {
      const char* names[] = {"rewards", "ref_logps", "token_counts", "sft_index"};
      for (std::size_t f = 0; f < present.size(); ++f) {
        if (present[f] != has_field[f])
          throw DataError(str(where, ": field '", names[f], "' is ", present[f] ? "present" : "missing",
                              " here but ", has_field[f] ? "present" : "missing", " on the first record"));
      }
    }
    lists.push_back(std::move(list));
  }
  if (in.bad()) throw DataError(str(path, ": read error"));
  return lists;
}

}  // namespace lire::data

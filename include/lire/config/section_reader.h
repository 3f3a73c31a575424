// SectionReader: turns one config section (a JSON object) into a typed options
// struct. Each getter records the key as known and validates type and range;
// finish() then rejects any key that no getter asked for, suggesting the
// closest known key ("unknown key loss.temprature; did you mean
// loss.temperature?"). Every error is a ConfigError naming where the key was
// set (file:line or override) and the full dotted key.
//
//   SectionReader r(tree, "loss");
//   options.temperature = r.number("temperature", 2.0, NumberRange::positive());
//   options.reduction = r.choice("reduction", "rax", {"rax", "list-sum", "list-mean"});
//   r.finish();
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lire/config/config_tree.h"

namespace lire::config {

struct NumberRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;  // true: value must be > lo (else >= lo)
  bool hi_open = false;  // true: value must be < hi (else <= hi)

  static NumberRange positive() { return {0.0, std::numeric_limits<double>::infinity(), true, false}; }
  static NumberRange non_negative() { return {0.0, std::numeric_limits<double>::infinity(), false, false}; }
  static NumberRange unit_interval() { return {0.0, 1.0, false, false}; }
  static NumberRange closed(double lo, double hi) { return {lo, hi, false, false}; }
  bool contains(double v) const;
  std::string describe() const;  // "> 0", ">= 0", "in [0, 1]"
};

class SectionReader {
 public:
  // Reads section `name` (a dotted path, e.g. "loss" or "rewards.rm") of `tree`;
  // a missing or null section reads as empty. Throws if it is not a mapping.
  SectionReader(const ConfigTree& tree, std::string name);
  // Reads a bare JSON object (e.g. options handed to lire::losses::make);
  // `name` prefixes keys in messages, and there is no file location.
  SectionReader(const nlohmann::json& node, std::string name);

  const std::string& name() const { return name_; }
  bool has(const std::string& key) const;  // present and not null

  // Each getter returns `fallback` when the key is absent or null.
  // number(): integer or float (not bool, not string).
  double number(const std::string& key, double fallback, NumberRange range = {});
  // integer(): an integer (a float with an integral value is accepted).
  std::int64_t integer(const std::string& key, std::int64_t fallback,
                       std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t hi = std::numeric_limits<std::int64_t>::max());
  bool boolean(const std::string& key, bool fallback);
  std::string string(const std::string& key, const std::string& fallback);
  // A string from `choices`; anything else is an error listing the choices.
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& choices);
  // A list of strings; a single string is taken as a one-element list.
  std::vector<std::string> string_list(const std::string& key, const std::vector<std::string>& fallback);
  // The raw node (nullptr when absent) for keys with free-form values.
  const nlohmann::json* raw(const std::string& key);
  // A nested mapping, read with its own SectionReader (e.g. "rewards.rm").
  SectionReader section(const std::string& key);
  // Marks a key as known without reading it (it is validated elsewhere).
  void allow(const std::string& key);
  // The keys set in this section (null ones left out), sorted.
  std::vector<std::string> keys() const;

  // Throws ConfigError for the first key (in sorted order) no getter asked for;
  // keys set to null read as absent and are never errors.
  void finish() const;

  // Throws ConfigError "<where>: <name>.<key>: <message>".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  const nlohmann::json* lookup(const std::string& key);
  std::string where(const std::string& key) const;  // "file:line: " or "override '...': " or ""

  const ConfigTree* tree_ = nullptr;  // null for bare JSON
  nlohmann::json node_;
  std::string name_;
  std::set<std::string> known_;
};

}  // namespace lire::config

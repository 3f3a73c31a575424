// SectionReader: typed, validated access to one config section; every getter
// records its key so that finish() can reject the keys nobody asked for.
#include "lire/config/section_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "lire/core/error.h"
#include "lire/core/suggest.h"

namespace lire::config {
namespace {

using json = nlohmann::json;

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[64];
  auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, ptr);
}

// "string \"abc\"", "integer 3", "number 2.5", "boolean true", "null", "a list", "a mapping".
std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::string: return str("string ", v.dump());
    case json::value_t::boolean: return str("boolean ", v.get<bool>() ? "true" : "false");
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return str("integer ", v.dump());
    case json::value_t::number_float: return str("number ", format_number(v.get<double>()));
    case json::value_t::null: return "null";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "a mapping";
    default: return v.type_name();
  }
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

std::string prefix_of(const ConfigTree* tree, const std::string& dotted_key) {
  if (!tree) return "";
  const std::string where = tree->location(dotted_key).to_string();
  return where.empty() ? where : where + ": ";
}

json checked_section(const json* node, const std::string& where, const std::string& name) {
  if (!node || node->is_null()) return json::object();
  if (!node->is_object())
    throw ConfigError(str(where, name, ": expected a mapping, got ", describe(*node)));
  return *node;
}

}  // namespace

bool NumberRange::contains(double v) const {
  if (std::isnan(v)) return false;
  const bool above = lo_open ? v > lo : v >= lo;
  const bool below = hi_open ? v < hi : v <= hi;
  return above && below;
}

std::string NumberRange::describe() const {
  const bool has_lo = !(std::isinf(lo) && lo < 0);
  const bool has_hi = !(std::isinf(hi) && hi > 0);
  if (has_lo && has_hi)
    return str("in ", lo_open ? "(" : "[", format_number(lo), ", ", format_number(hi), hi_open ? ")" : "]");
  if (has_lo) return str(lo_open ? "> " : ">= ", format_number(lo));
  if (has_hi) return str(hi_open ? "< " : "<= ", format_number(hi));
  return "any number";
}

SectionReader::SectionReader(const ConfigTree& tree, std::string name)
    : tree_(&tree), name_(std::move(name)) {
  node_ = checked_section(tree.find(name_), prefix_of(tree_, name_), name_);
}

SectionReader::SectionReader(const nlohmann::json& node, std::string name) : name_(std::move(name)) {
  node_ = checked_section(&node, "", name_);
}

bool SectionReader::has(const std::string& key) const {
  auto it = node_.find(key);
  return it != node_.end() && !it->is_null();
}

const nlohmann::json* SectionReader::lookup(const std::string& key) {
  known_.insert(key);
  auto it = node_.find(key);
  if (it == node_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string SectionReader::where(const std::string& key) const {
  return prefix_of(tree_, key.empty() ? name_ : name_ + "." + key);
}

void SectionReader::fail(const std::string& key, const std::string& message) const {
  std::string full = name_;
  if (!key.empty()) full = full.empty() ? key : full + "." + key;
  throw ConfigError(str(where(key), full, ": ", message));
}

double SectionReader::number(const std::string& key, double fallback, NumberRange range) {
  const json* v = lookup(key);
  if (!v) return fallback;
  if (!v->is_number()) fail(key, str("expected a number, got ", describe(*v)));
  const double value = v->get<double>();
  if (std::isnan(value)) fail(key, "must be a number, got nan");
  if (!range.contains(value)) fail(key, str("must be ", range.describe(), ", got ", format_number(value)));
  return value;
}

std::int64_t SectionReader::integer(const std::string& key, std::int64_t fallback, std::int64_t lo,
                                    std::int64_t hi) {
  const json* v = lookup(key);
  if (!v) return fallback;
  std::int64_t value = 0;
  if (v->is_number_integer() && !v->is_number_unsigned()) {
    value = v->get<std::int64_t>();
  } else if (v->is_number_unsigned()) {
    const std::uint64_t u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail(key, str("integer ", u, " is out of range"));
    value = static_cast<std::int64_t>(u);
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    // 2^63 is the first double above the int64 range.
    if (!std::isfinite(d) || d != std::floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
      fail(key, str("expected an integer, got ", describe(*v)));
    value = static_cast<std::int64_t>(d);
  } else {
    fail(key, str("expected an integer, got ", describe(*v)));
  }
  const bool has_lo = lo != std::numeric_limits<std::int64_t>::min();
  const bool has_hi = hi != std::numeric_limits<std::int64_t>::max();
  if (value < lo || value > hi) {
    if (has_lo && has_hi) fail(key, str("must be in [", lo, ", ", hi, "], got ", value));
    if (has_lo) fail(key, str("must be >= ", lo, ", got ", value));
    fail(key, str("must be <= ", hi, ", got ", value));
  }
  return value;
}

bool SectionReader::boolean(const std::string& key, bool fallback) {
  const json* v = lookup(key);
  if (!v) return fallback;
  if (!v->is_boolean()) fail(key, str("expected true or false, got ", describe(*v)));
  return v->get<bool>();
}

std::string SectionReader::string(const std::string& key, const std::string& fallback) {
  const json* v = lookup(key);
  if (!v) return fallback;
  if (!v->is_string()) {
    const bool scalar = v->is_number() || v->is_boolean();
    fail(key, str("expected a string, got ", describe(*v),
                  scalar ? " (quote it to use it as a string)" : ""));
  }
  return v->get<std::string>();
}

std::string SectionReader::choice(const std::string& key, const std::string& fallback,
                                  const std::vector<std::string>& choices) {
  const std::string value = string(key, fallback);
  if (!has(key)) return value;
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
  fail(key, str("must be one of ", join(choices, ", "), ", got '", value, "'", did_you_mean(value, choices)));
}

std::vector<std::string> SectionReader::string_list(const std::string& key,
                                                    const std::vector<std::string>& fallback) {
  const json* v = lookup(key);
  if (!v) return fallback;
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) fail(key, str("expected a list of strings, got ", describe(*v)));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& item = (*v)[i];
    if (!item.is_string())
      fail(key, str("expected a list of strings, but item ", i + 1, " is ", describe(item)));
    out.push_back(item.get<std::string>());
  }
  return out;
}

const nlohmann::json* SectionReader::raw(const std::string& key) { return lookup(key); }

SectionReader SectionReader::section(const std::string& key) {
  known_.insert(key);
  const std::string child = name_.empty() ? key : name_ + "." + key;
  if (tree_) return SectionReader(*tree_, child);
  auto it = node_.find(key);
  return SectionReader(it == node_.end() ? json() : *it, child);
}

void SectionReader::allow(const std::string& key) { known_.insert(key); }

std::vector<std::string> SectionReader::keys() const {
  std::vector<std::string> out;
  for (auto it = node_.begin(); it != node_.end(); ++it)
    if (!it.value().is_null()) out.push_back(it.key());
  return out;  // nlohmann::json objects iterate in key order
}

void SectionReader::finish() const {
  const auto full = [&](const std::string& key) { return name_.empty() ? key : name_ + "." + key; };
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    // A null value reads as absent (docs/config.md): `key=null` unsets a key
    // even where the section no longer takes it (loss.temperature=null after
    // switching loss.name away from lire).
    if (known_.count(it.key()) || it.value().is_null()) continue;
    std::vector<std::string> candidates;
    for (const auto& known : known_) candidates.push_back(full(known));
    const std::string key = full(it.key());
    throw ConfigError(str(where(it.key()), "unknown key ", key, did_you_mean(key, candidates)));
  }
}

}  // namespace lire::config

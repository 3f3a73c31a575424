// Typed, checked reads of one JSON object's keys (config.json,
// adapter_config.json): a wrong type or value is a ConfigError
// "<file>: <key>: <reason>". Private to src/io.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lire/core/error.h"

namespace lire::io::detail {

// "string \"abc\"", "integer 3", "number 2.5", "boolean true", "null", "a list", "an object".
template <typename Json>
std::string describe_json(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string: return str("string ", v.dump());
    case Json::value_t::boolean: return str("boolean ", v.template get<bool>() ? "true" : "false");
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return str("integer ", v.dump());
    case Json::value_t::number_float: return str("number ", v.dump());
    case Json::value_t::null: return "null";
    case Json::value_t::array: return "a list";
    case Json::value_t::object: return "an object";
    default: return v.type_name();
  }
}

// Reads and parses a JSON file whose top level must be an object.
template <typename Json>
Json read_json_object(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(str(file, ": cannot open (", std::filesystem::exists(file) ? "unreadable" : "no such file", ")"));
  std::ostringstream text;
  text << in.rdbuf();
  Json parsed;
  try {
    parsed = Json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(str(file, ": not valid JSON: ", e.what()));
  }
  if (!parsed.is_object()) throw ConfigError(str(file, ": expected a JSON object at the top level, got ", describe_json(parsed)));
  return parsed;
}

// `<folder>/<name>` when `path` is a directory, else `path` itself.
inline std::string file_in_folder(const std::string& path, const std::string& name) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return (std::filesystem::path(path) / name).string();
  if (!std::filesystem::exists(path, ec))
    throw ConfigError(str(path, ": no such folder (expected a folder holding ", name, ")"));
  return path;
}

template <typename Json>
class JsonFields {
 public:
  // `prefix` is prepended to key names in messages (e.g. "rope_scaling.").
  JsonFields(const Json& object, std::string file, std::string prefix = "")
      : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& reason) const {
    throw ConfigError(str(file_, ": ", prefix_, key, ": ", reason));
  }

  // The value, or nullptr when the key is absent. Null values are returned.
  const Json* find(const std::string& key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  // Present and not null.
  bool has(const std::string& key) const {
    const Json* v = find(key);
    return v && !v->is_null();
  }

  std::int64_t integer_value(const std::string& key, const Json& v) const {
    if (v.is_number_integer()) return v.template get<std::int64_t>();
    if (v.is_number_unsigned()) {
      const auto u = v.template get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(key, str("integer ", u, " is too large"));
      return static_cast<std::int64_t>(u);
    }
    fail(key, str("expected an integer, got ", describe_json(v)));
  }

  // A required-typed integer: absent -> fallback; null is a type error.
  std::int64_t integer(const std::string& key, std::int64_t fallback) const {
    const Json* v = find(key);
    return v ? integer_value(key, *v) : fallback;
  }
  // An integer whose HF default is None: absent or null -> nullopt.
  std::optional<std::int64_t> optional_integer(const std::string& key) const {
    const Json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    return integer_value(key, *v);
  }
  // Like integer(), and > 0.
  std::int64_t positive_integer(const std::string& key, std::int64_t fallback) const {
    const std::int64_t n = integer(key, fallback);
    if (n <= 0) fail(key, str("must be a positive integer, got ", n));
    return n;
  }

  double number_value(const std::string& key, const Json& v) const {
    if (!v.is_number()) fail(key, str("expected a number, got ", describe_json(v)));
    const double x = v.template get<double>();
    if (!std::isfinite(x)) fail(key, "must be finite");
    return x;
  }
  double number(const std::string& key, double fallback) const {
    const Json* v = find(key);
    return v ? number_value(key, *v) : fallback;
  }
  double positive_number(const std::string& key, double fallback) const {
    const double x = number(key, fallback);
    if (!(x > 0)) fail(key, str("must be > 0, got ", x));
    return x;
  }

  bool boolean(const std::string& key, bool fallback) const {
    const Json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail(key, str("expected true or false, got ", describe_json(*v)));
    return v->template get<bool>();
  }

  std::string string(const std::string& key, const std::string& fallback) const {
    const Json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) fail(key, str("expected a string, got ", describe_json(*v)));
    return v->template get<std::string>();
  }
  // A string whose HF default is None: absent or null -> nullopt.
  std::optional<std::string> optional_string(const std::string& key) const {
    const Json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) fail(key, str("expected a string or null, got ", describe_json(*v)));
    return v->template get<std::string>();
  }

  const std::string& file() const { return file_; }

 private:
  const Json& object_;
  std::string file_;
  std::string prefix_;
};

}  // namespace lire::io::detail

// ConfigTree: YAML (yaml-cpp) to nlohmann::json with YAML 1.2 core-schema
// scalar typing, dotted-key overrides, key locations, and a block-YAML writer
// whose output reads back to an equal tree.
#include "lire/config/config_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "lire/core/error.h"

namespace lire::config {
namespace {

using json = nlohmann::json;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_octal_digit(char c) { return c >= '0' && c <= '7'; }

bool all_of(const std::string& s, std::size_t from, bool (*pred)(char)) {
  if (from >= s.size()) return false;
  for (std::size_t i = from; i < s.size(); ++i)
    if (!pred(s[i])) return false;
  return true;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?  (YAML 1.2 core schema float)
bool is_core_float(const std::string& s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t int_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  std::size_t frac_digits = 0;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && (!dot || frac_digits == 0)) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && is_digit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

// The offset of the first byte of `s` that is not part of well-formed UTF-8
// (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF), or npos.
// yaml-cpp passes such bytes through; the tree must not hold them (JSON
// output of the tree, e.g. error messages and stored configs, would fail).
std::size_t invalid_utf8_at(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return i;
    }
    i += n + 1;
  }
  return std::string::npos;
}

// Parses an unsigned magnitude in `base`; false on overflow of uint64.
bool parse_magnitude(const std::string& digits, int base, std::uint64_t& out) {
  const char* first = digits.data();
  const char* last = digits.data() + digits.size();
  auto [ptr, ec] = std::from_chars(first, last, out, base);
  return ec == std::errc() && ptr == last;
}

// The type of a plain (unquoted) scalar under the YAML 1.2 core schema.
// `fail` receives a message when the scalar looks like an integer that does
// not fit in 64 bits.
template <typename Fail>
json resolve_plain(const std::string& s, Fail&& fail) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;

  // Integers: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
  const bool negative = s[0] == '-';
  const std::size_t sign = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  std::string digits;
  int base = 0;
  if (all_of(s, sign, is_digit)) {
    digits = s.substr(sign);
    base = 10;
  } else if (s.size() > 2 && s[0] == '0' && s[1] == 'x' && all_of(s, 2, is_hex_digit)) {
    digits = s.substr(2);
    base = 16;
  } else if (s.size() > 2 && s[0] == '0' && s[1] == 'o' && all_of(s, 2, is_octal_digit)) {
    digits = s.substr(2);
    base = 8;
  }
  if (base != 0) {
    std::uint64_t magnitude = 0;
    const std::uint64_t limit = negative ? std::uint64_t(std::numeric_limits<std::int64_t>::max()) + 1
                                         : std::uint64_t(std::numeric_limits<std::int64_t>::max());
    if (!parse_magnitude(digits, base, magnitude) || magnitude > limit)
      fail(str("integer ", s, " does not fit in 64 bits"));
    if (negative) return magnitude == limit ? std::numeric_limits<std::int64_t>::min()
                                            : -static_cast<std::int64_t>(magnitude);
    return static_cast<std::int64_t>(magnitude);
  }

  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF")
    return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return -std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  if (is_core_float(s)) {
    std::istringstream in(s);
    in.imbue(std::locale::classic());
    double value = 0.0;
    in >> value;
    // Over/underflow: istream sets failbit; strtod semantics are what we want.
    if (in.fail()) value = std::strtod(s.c_str(), nullptr);
    return value;
  }
  return s;
}

// yaml-cpp 0.7 (Debian 12) never returns from LoadAll on a document that
// starts with a token no node can start with, e.g. "," or "\"a\", b": each
// pass adds a null document without consuming the token, forever, allocating
// as it goes (jbeder/yaml-cpp#1040; fixed upstream after 0.8 by #1319).
// Counting the documents with our own loop over the parser, which stops when
// a document starts where the previous one did, detects that input first; it
// throws the position and what to fix. Returns the number of documents.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  YAML::Mark start = YAML::Mark::null_mark();
};

std::size_t count_documents(const std::string& yaml) {
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  DocumentCounter counter;
  std::size_t documents = 0;
  int previous = -1;
  while (parser.HandleNextDocument(counter)) {
    if (counter.start.pos == previous)
      throw YAML::ParserException(counter.start,
                                  "unexpected token: no YAML node starts here (a ',' outside [...] or {...}?)");
    previous = counter.start.pos;
    ++documents;
  }
  return documents;
}

// Converts yaml-cpp nodes to json, recording each mapping key's location.
class Converter {
 public:
  Converter(std::string file, std::string override_text, std::map<std::string, Location>* locations)
      : file_(std::move(file)), override_(std::move(override_text)), locations_(locations) {}

  json convert(const YAML::Node& node, const std::string& path) const {
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Sequence: {
        json out = json::array();
        for (const auto& item : node) out.push_back(convert(item, path));
        return out;
      }
      case YAML::NodeType::Map: {
        json out = json::object();
        std::map<std::string, int> first_lines;
        for (auto it = node.begin(); it != node.end(); ++it) {
          // Copies: the iterator hands out a temporary proxy.
          const YAML::Node key_node = it->first;
          const YAML::Node value_node = it->second;
          if (!key_node.IsScalar())
            fail(key_node.Mark(), str("mapping keys must be plain strings",
                                      path.empty() ? "" : " (in '" + path + "')"));
          const std::string key = key_node.Scalar();
          check_utf8(key_node, key, "key");
          const int line = key_node.Mark().line + 1;
          if (out.contains(key)) {
            fail(key_node.Mark(),
                 str("duplicate key '", path.empty() ? key : path + "." + key, "'",
                     file_.empty() ? std::string() : str(" (first set at line ", first_lines[key], ")")));
          }
          first_lines[key] = line;
          const std::string child = path.empty() ? key : path + "." + key;
          if (locations_) {
            Location where;
            where.file = file_;
            where.line = file_.empty() ? 0 : line;
            where.override = override_;
            (*locations_)[child] = where;
          }
          out[key] = convert(value_node, child);
        }
        return out;
      }
    }
    return nullptr;
  }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    throw ConfigError(str(prefix(mark), message));
  }

  std::string prefix(const YAML::Mark& mark) const {
    if (!override_.empty()) return str("override '", override_, "': ");
    if (mark.line >= 0) return str(file_, ":", mark.line + 1, ": ");
    return str(file_, ": ");
  }

 private:
  void check_utf8(const YAML::Node& node, const std::string& text, const char* what) const {
    const std::size_t bad = invalid_utf8_at(text);
    if (bad == std::string::npos) return;
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[bad]));
    fail(node.Mark(), str("invalid UTF-8 in a ", what, " (byte ", byte, " at offset ", bad,
                          "); a config must be UTF-8 text"));
  }

  json scalar(const YAML::Node& node) const {
    check_utf8(node, node.Scalar(), "value");
    const std::string& tag = node.Tag();
    // "!" marks quoted and block scalars; "!!str" an explicit string.
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return node.Scalar();
    return resolve_plain(node.Scalar(), [&](const std::string& m) { fail(node.Mark(), m); });
  }

  std::string file_;
  std::string override_;
  std::map<std::string, Location>* locations_;
};

std::vector<std::string> split_dotted(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

std::string type_word(const json& v) {
  switch (v.type()) {
    case json::value_t::object: return "a mapping";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::null: return "null";
    default: return "a number";
  }
}

// ------------------------------------------------------------------ to_yaml

std::string format_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buffer[64];
  auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  std::string s(buffer, ptr);
  // "1" would read back as an integer; "1e+20" is a core-schema float already.
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

bool plain_char(char c) {
  return is_key_char(c) || c == '.' || c == '/' || c == '+' || c == ' ' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// True when `s` can be written unquoted and reads back as this same string.
bool plain_safe(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return false;
  const unsigned char first = static_cast<unsigned char>(s.front());
  if (!(is_key_char(s.front()) || s.front() == '.' || s.front() == '/' || first >= 0x80) ||
      s.front() == '-')
    return false;
  for (char c : s)
    if (!plain_char(c)) return false;
  const json back = resolve_plain(s, [](const std::string&) {});
  return back.is_string();
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "\\x%02x", u);
          out += hex;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_string(const std::string& s) { return plain_safe(s) ? s : quote(s); }

std::string format_scalar(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer: return std::to_string(v.get<std::int64_t>());
    case json::value_t::number_unsigned: return std::to_string(v.get<std::uint64_t>());
    case json::value_t::number_float: return format_double(v.get<double>());
    case json::value_t::string: return format_string(v.get<std::string>());
    case json::value_t::object: return "{}";
    case json::value_t::array: return "[]";
    default: return quote(v.dump());
  }
}

bool is_block(const json& v) { return (v.is_object() || v.is_array()) && !v.empty(); }

// Lines of `v` (a non-empty container) without indentation of their own.
void emit(const json& v, std::vector<std::string>& lines) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string key = format_string(it.key());
      // YAML limits implicit ("key: value") keys to 1024 characters; a longer
      // one is written as an explicit key ("? key" then ": value").
      const bool explicit_key = key.size() > 1000;
      if (explicit_key) lines.push_back("? " + key);
      const std::string lead = explicit_key ? ":" : key + ":";
      if (!is_block(it.value())) {
        lines.push_back(lead + " " + format_scalar(it.value()));
        continue;
      }
      lines.push_back(lead);
      std::vector<std::string> child;
      emit(it.value(), child);
      for (auto& line : child) lines.push_back("  " + line);
    }
  } else {
    for (const auto& item : v) {
      if (!is_block(item)) {
        lines.push_back("- " + format_scalar(item));
        continue;
      }
      std::vector<std::string> child;
      emit(item, child);
      for (std::size_t i = 0; i < child.size(); ++i) lines.push_back((i == 0 ? "- " : "  ") + child[i]);
    }
  }
}

}  // namespace

std::string Location::to_string() const {
  if (!file.empty()) return line > 0 ? str(file, ":", line) : file;
  if (!override.empty()) return str("override '", override, "'");
  return "";
}

ConfigTree::ConfigTree() : root_(nlohmann::json::object()) {}

ConfigTree ConfigTree::from_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) throw ConfigError(str("config file '", path, "' not found"));
    throw ConfigError(str("cannot read config file '", path, "': ", std::strerror(errno)));
  }
  if (S_ISDIR(info.st_mode)) throw ConfigError(str("config file '", path, "' is a directory"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(str("cannot read config file '", path, "': ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(str("cannot read config file '", path, "': ", std::strerror(errno)));
  return from_string(text.str(), path);
}

ConfigTree ConfigTree::from_string(const std::string& yaml, const std::string& name) {
  std::vector<YAML::Node> documents;
  try {
    if (count_documents(yaml) > 0) documents = YAML::LoadAll(yaml);
  } catch (const YAML::Exception& e) {
    if (e.mark.line >= 0) throw ConfigError(str(name, ":", e.mark.line + 1, ": ", e.msg));
    throw ConfigError(str(name, ": ", e.msg));
  }
  ConfigTree tree;
  if (documents.empty()) return tree;
  if (documents.size() > 1)
    throw ConfigError(str(name, ": expected one YAML document, found ", documents.size()));
  const YAML::Node& doc = documents.front();
  if (doc.IsNull()) return tree;
  Converter converter(name, "", &tree.locations_);
  if (!doc.IsMap()) {
    const json value = converter.convert(doc, "");
    converter.fail(doc.Mark(), str("the top level must be a mapping of sections, got ", type_word(value)));
  }
  tree.root_ = converter.convert(doc, "");
  return tree;
}

void ConfigTree::apply_override(const std::string& assignment) {
  const auto fail = [&](const std::string& message) -> void {
    throw ConfigError(str("override '", assignment, "': ", message));
  };
  const std::size_t eq = assignment.find('=');
  if (eq == std::string::npos) fail("expected key=value (e.g. loss.beta=0.1)");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  if (key.empty()) fail("empty key before '='");
  for (const auto& part : split_dotted(key)) {
    if (part.empty()) fail(str("invalid key '", key, "': empty component"));
    for (char c : part)
      if (!is_key_char(c))
        fail(str("invalid key '", key, "': keys are dotted names of letters, digits, '_' and '-'"));
  }
  if (trim(text).empty()) fail(str("empty value; write ", key, "=null to unset"));

  YAML::Node node;
  try {
    // Load reads the first document only, and takes "," for null.
    const std::size_t documents = count_documents(text);
    if (documents > 1) fail(str("cannot parse value '", text, "': it holds ", documents, " YAML documents"));
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(str("cannot parse value '", text, "': ", e.msg));
  }
  const std::string head = trim(text);
  if ((node.IsMap() && head.front() != '{') || (node.IsSequence() && head.front() != '[')) {
    fail(str("cannot parse value '", text, "': expected a scalar or a flow collection ([a, b] or {k: v})"));
  }
  std::map<std::string, Location> nested;
  Converter converter("", assignment, &nested);
  const json value = converter.convert(node, key);
  Location where;
  where.override = assignment;
  set(key, value, where);
  for (auto& [path, location] : nested) locations_[path] = location;
}

void ConfigTree::apply_overrides(const std::vector<std::string>& assignments) {
  for (const auto& assignment : assignments) apply_override(assignment);
}

void ConfigTree::set(const std::string& dotted_key, const nlohmann::json& value, Location where) {
  const std::string context = where.override.empty() ? std::string() : str("override '", where.override, "': ");
  if (dotted_key.empty()) throw ConfigError(str(context, "empty key"));
  const std::vector<std::string> parts = split_dotted(dotted_key);
  for (const auto& part : parts)
    if (part.empty()) throw ConfigError(str(context, "invalid key '", dotted_key, "': empty component"));

  const bool has_location = !where.to_string().empty();
  nlohmann::json* node = &root_;
  std::string path;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    path = path.empty() ? parts[i] : path + "." + parts[i];
    auto it = node->find(parts[i]);
    if (it == node->end() || it->is_null()) {
      (*node)[parts[i]] = nlohmann::json::object();
      if (has_location) locations_[path] = where;
      node = &(*node)[parts[i]];
    } else if (!it->is_object()) {
      const Location existing = location(path);
      throw ConfigError(str(context, "cannot set ", dotted_key, ": ", path, " is ", type_word(*it),
                            ", not a mapping",
                            existing.to_string().empty() ? "" : " (set at " + existing.to_string() + ")"));
    } else {
      node = &*it;
    }
  }
  (*node)[parts.back()] = value;

  // The old value's keys (and their locations) are gone.
  const std::string prefix = dotted_key + ".";
  for (auto it = locations_.lower_bound(prefix); it != locations_.end() && it->first.compare(0, prefix.size(), prefix) == 0;)
    it = locations_.erase(it);
  if (has_location) {
    locations_[dotted_key] = where;
  } else {
    locations_.erase(dotted_key);
  }
}

const nlohmann::json* ConfigTree::find(const std::string& dotted_key) const {
  if (dotted_key.empty()) return &root_;
  const nlohmann::json* node = &root_;
  for (const auto& part : split_dotted(dotted_key)) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

Location ConfigTree::location(const std::string& dotted_key) const {
  std::string key = dotted_key;
  while (!key.empty()) {
    auto it = locations_.find(key);
    if (it != locations_.end()) return it->second;
    const std::size_t dot = key.rfind('.');
    if (dot == std::string::npos) break;
    key.resize(dot);
  }
  return {};
}

std::string ConfigTree::to_yaml() const {
  if (!is_block(root_)) return format_scalar(root_) + "\n";
  std::vector<std::string> lines;
  emit(root_, lines);
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

void write_folder_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& fill) {
  namespace fs = std::filesystem;
  const fs::path out(path);
  const fs::path tmp = out.parent_path() / str(out.filename().string(), ".tmp.", ::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  // The old folder is renamed aside, the new one renamed into place, and only
  // then is the old one deleted: a kill at any point leaves `path` either the
  // complete old folder, the complete new one, or absent (never half deleted).
  const fs::path old = out.parent_path() / str(out.filename().string(), ".old.", ::getpid());
  bool moved_aside = false;
  try {
    fill(tmp.string());
    fs::remove_all(old);
    if (fs::exists(out)) {
      fs::rename(out, old);
      moved_aside = true;
    }
    fs::rename(tmp, out);
  } catch (...) {
    std::error_code ec;
    if (moved_aside && !fs::exists(out, ec)) fs::rename(old, out, ec);  // put the old one back
    fs::remove_all(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::remove_all(old, ec);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temp = str(path, ".tmp.", ::getpid());
  const auto fail = [&](const std::string& what, int error) {
    ::unlink(temp.c_str());
    throw Error(str("cannot write '", path, "': ", what, std::strerror(error)));
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int error = errno;
    throw Error(str("cannot write '", path, "': cannot create '", temp, "': ", std::strerror(error)));
  }
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      fail("", error);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail("fsync: ", error);
  }
  if (::close(fd) != 0) fail("close: ", errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("rename: ", errno);
}

}  // namespace lire::config

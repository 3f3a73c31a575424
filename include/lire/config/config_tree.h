// ConfigTree: the one configuration tree of a run. YAML file first, then
// `section.key=value` overrides (values are YAML scalars or flow collections,
// e.g. `lora.targets=[q_proj,v_proj]`), then one validation pass by the typed
// section readers (config.h). Remembers where every key came from (file:line or
// the override) so that errors can name it.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lire::config {

// Where a key was set: a YAML file and line (1-based), or a command-line override.
struct Location {
  std::string file;      // YAML file path; empty when set by an override or in code
  int line = 0;          // 1-based line in `file`; 0 when unknown
  std::string override;  // the `key=value` text when set on the command line

  // "configs/hh4.yaml:12", "override 'loss.beta=0.1'", or "" when unknown.
  std::string to_string() const;
};

class ConfigTree {
 public:
  ConfigTree();  // an empty mapping

  // Parses a YAML file whose top level is a mapping (an empty file is an empty
  // tree). Plain scalars become null/bool/integer/float/string following YAML
  // 1.2's core schema; quoted scalars stay strings. Throws ConfigError naming
  // file and line on a YAML syntax error or a non-mapping top level.
  static ConfigTree from_file(const std::string& path);
  static ConfigTree from_string(const std::string& yaml, const std::string& name = "<string>");

  // Applies `a.b.c=value`; creates intermediate mappings. Throws ConfigError on
  // a missing '=', an empty key, or an unparsable value, quoting the override.
  void apply_override(const std::string& assignment);
  void apply_overrides(const std::vector<std::string>& assignments);

  // Sets a value from code (e.g. --threads N sets runtime.threads).
  void set(const std::string& dotted_key, const nlohmann::json& value, Location where = {});

  const nlohmann::json& root() const { return root_; }
  // The node at a dotted key, or nullptr.
  const nlohmann::json* find(const std::string& dotted_key) const;
  // Where a dotted key was set; falls back to its nearest ancestor's location.
  Location location(const std::string& dotted_key) const;

  // Block-style YAML that from_string() reads back to an equal tree.
  std::string to_yaml() const;

 private:
  nlohmann::json root_;
  std::map<std::string, Location> locations_;  // dotted key -> where it was set
};

// Writes `text` to `path` atomically (temp file in the same folder, then rename).
void write_file_atomically(const std::string& path, const std::string& text);

// Writes a folder atomically: `fill` writes everything into a fresh sibling
// "<path>.tmp.<pid>", which then replaces `path`: an existing folder there is
// renamed to "<path>.old.<pid>" first and deleted once the new one is in
// place, so a kill leaves `path` complete (old or new) or absent, never half
// deleted. If `fill` throws, the temporary folder is removed and `path` is
// left as it was.
void write_folder_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& fill);

}  // namespace lire::config

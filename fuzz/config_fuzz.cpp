// Fuzz target: the YAML config loader (ConfigTree::from_string, yaml-cpp to
// JSON with YAML 1.2 core-schema typing), `key=value` overrides and the
// section validation of config::resolve.
//
// The input is a YAML file, optionally followed by a line "#overrides" (a
// YAML comment, so seeds stay valid YAML) and then one override per line, as
// lire's apps take them on the command line. The tree is then resolved, and
// its YAML form (to_yaml, what --print-config and run directories store) must
// read back to the same tree.
// lire::Error (ConfigError) is the expected outcome for bad input.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "lire/config/config.h"
#include "lire/core/error.h"

namespace {

constexpr const char* kOverridesMarker = "\n#overrides\n";

// The tree as text for comparison: dump() writes NaN as null on both sides,
// which json's operator== (NaN != NaN) would not accept.
std::string canonical(const nlohmann::json& value) { return value.dump(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string yaml = input;
  std::vector<std::string> overrides;
  const std::size_t marker = input.find(kOverridesMarker);
  if (marker != std::string::npos) {
    yaml = input.substr(0, marker + 1);
    std::size_t start = marker + std::char_traits<char>::length(kOverridesMarker);
    while (start <= input.size()) {
      std::size_t end = input.find('\n', start);
      if (end == std::string::npos) end = input.size();
      if (end > start) overrides.push_back(input.substr(start, end - start));
      start = end + 1;
    }
  }

  lire::config::ConfigTree tree;
  try {
    tree = lire::config::ConfigTree::from_string(yaml, "fuzz.yaml");
    lire::fuzz::note("from_string");
  } catch (const lire::Error& e) {
    lire::fuzz::note("from_string", e);
    return 0;
  }
  for (const auto& assignment : overrides) {
    try {
      tree.apply_override(assignment);
      lire::fuzz::note("override");
    } catch (const lire::Error& e) {
      lire::fuzz::note("override", e);
      // A rejected override leaves the tree as it was; go on with the next.
    }
  }

  // The YAML form reads back to the same tree.
  const std::string text = tree.to_yaml();
  try {
    const auto back = lire::config::ConfigTree::from_string(text, "to_yaml");
    if (canonical(back.root()) != canonical(tree.root())) {
      std::fprintf(stderr, "to_yaml does not read back:\n--- tree\n%s\n--- yaml\n%s--- read back\n%s\n",
                   tree.root().dump().c_str(), text.c_str(), back.root().dump().c_str());
      LIRE_FUZZ_EXPECT(false, "to_yaml() reads back to an equal tree");
    }
  } catch (const lire::Error& e) {
    std::fprintf(stderr, "to_yaml output is rejected: %s\n--- yaml\n%s", e.what(), text.c_str());
    LIRE_FUZZ_EXPECT(false, "to_yaml() output is valid YAML");
  }

  try {
    const lire::config::Config cfg = lire::config::resolve(tree);
    (void)cfg;
    lire::fuzz::note("resolve");
  } catch (const lire::Error& e) {
    lire::fuzz::note("resolve", e);
  }
  return 0;
}

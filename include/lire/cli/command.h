// The frame every lire command-line tool runs in (apps/ hold only thin mains):
//   --config FILE        YAML config (optional)
//   section.key=value    any number of positional overrides
//   --print-config       print the resolved config as YAML and exit
//   --threads N          LibTorch intra-op threads (runtime.threads; 0 = all cores)
//   --version            "lire-x 0.1.0 (commit ..., LibTorch ...)"
// It validates the whole config, applies the runtime section, runs the tool's
// body, and turns any exception into one line on stderr and a non-zero exit
// (1 for errors, 2 for command-line usage errors).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "lire/config/config.h"

namespace CLI {
class App;
class Validator;
}

namespace lire::cli {

struct Tool {
  std::string name;         // "lire-loss"
  std::string description;  // one line for --help
  // Adds the tool's own flags (binding them to variables the body captures).
  std::function<void(CLI::App&)> add_flags;
  // Writes flags that stand for config keys into the tree (after the config
  // file and the overrides, so they win), before it is resolved. Optional.
  std::function<void(config::ConfigTree&)> configure;
  // The work; returns the exit code. The config is resolved and the runtime applied.
  std::function<int(const config::Config&)> body;
};

int run(const Tool& tool, int argc, char** argv);

// The decoding flags of lire-sample and lire-eval, each a shorthand for a key of
// the `sample` section: --strategy, --num-samples, --max-new-tokens,
// --temperature, --top-k, --top-p, --seed.
class SampleFlags {
 public:
  void add(CLI::App& app);
  // Sets sample.<key> for every flag given (the location reads "--flag value").
  void apply(config::ConfigTree& tree) const;

 private:
  std::optional<std::string> strategy_;
  std::optional<std::int64_t> num_samples_, max_new_tokens_, top_k_, seed_;
  std::optional<double> temperature_, top_p_;
};

// Flag checks whose failures read "--flag: expected a positive integer, got '0'"
// (CLI11's PositiveNumber prints its range up to DBL_MAX, 300 digits).
CLI::Validator positive_integer();
CLI::Validator non_negative_integer();

// "0.1.0 (commit abc123, LibTorch 1.13.0 (CPU))".
std::string version_string();

}  // namespace lire::cli

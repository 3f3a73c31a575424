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

#include <functional>
#include <string>

#include "lire/config/config.h"

namespace CLI {
class App;
}

namespace lire::cli {

struct Tool {
  std::string name;         // "lire-loss"
  std::string description;  // one line for --help
  // Adds the tool's own flags (binding them to variables the body captures).
  std::function<void(CLI::App&)> add_flags;
  // The work; returns the exit code. The config is resolved and the runtime applied.
  std::function<int(const config::Config&)> body;
};

int run(const Tool& tool, int argc, char** argv);

// "0.1.0 (commit abc123, LibTorch 1.13.0 (CPU))".
std::string version_string();

}  // namespace lire::cli

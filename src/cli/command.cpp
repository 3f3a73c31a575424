#include "lire/cli/command.h"

#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/torch_runtime.h"
#include "lire/version.h"

namespace lire::cli {

std::string version_string() {
  return str(LIRE_VERSION, " (commit ", LIRE_GIT_COMMIT, ", ", torch_description(), ")");
}

int run(const Tool& tool, int argc, char** argv) {
  CLI::App app{tool.description, tool.name};
  app.set_version_flag("--version", tool.name + " " + version_string());
  std::string config_path;
  std::vector<std::string> overrides;
  bool print_config = false;
  int threads = -1;
  app.add_option("--config", config_path, "YAML config file")->check(CLI::ExistingFile);
  app.add_flag("--print-config", print_config, "print the resolved config and exit");
  app.add_option("--threads", threads, "LibTorch intra-op threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("overrides", overrides, "config overrides, section.key=value (e.g. loss.beta=0.1)");
  if (tool.add_flags) tool.add_flags(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help/version (exit 0) or the usage error
    return rc == 0 ? 0 : 2;      // usage errors exit 2, whatever CLI11's own code
  }

  try {
    for (const auto& o : overrides) {
      if (o.find('=') == std::string::npos)
        throw ConfigError(str("unexpected argument '", o, "': overrides are section.key=value"));
    }
    config::ConfigTree tree = config::load(config_path, overrides);
    if (threads >= 0) {
      config::Location where;
      where.override = str("--threads ", threads);
      tree.set("runtime.threads", threads, where);
    }
    config::Config cfg = config::resolve(tree);
    if (print_config) {
      std::cout << cfg.tree.to_yaml();
      return 0;
    }
    const int n = apply_runtime(cfg.runtime);
    spdlog::debug("{} {}: {} intra-op threads", tool.name, version_string(), n);
    return tool.body(cfg);
  } catch (const c10::Error& e) {  // LibTorch's own checks: drop the C++ backtrace
    std::cerr << tool.name << ": error: " << e.what_without_backtrace() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << tool.name << ": error: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace lire::cli

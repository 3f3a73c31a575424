#include "lire/cli/command.h"

#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/local_launcher.h"
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
      ->check(non_negative_integer());
  app.add_option("overrides", overrides, "config overrides, section.key=value (e.g. loss.beta=0.1)");
  if (tool.add_flags) tool.add_flags(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Usage errors: one line (CLI11's app.exit adds a second) and exit 2, whatever CLI11's own code.
    std::cerr << tool.name << ": error: " << e.what() << " (see " << tool.name << " --help)" << std::endl;
    return 2;
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
    if (tool.configure) tool.configure(tree);
    config::Config cfg = config::resolve(tree);
    if (print_config) {
      std::cout << cfg.tree.to_yaml();
      return 0;
    }
    const int n = apply_runtime(cfg.runtime);
    spdlog::debug("{} {}: {} intra-op threads", tool.name, version_string(), n);
    return tool.body(cfg);
  } catch (const c10::Error& e) {  // LibTorch's own checks: drop the C++ backtrace
    report_error_line(tool.name + ": error: " + e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    report_error_line(tool.name + ": error: " + e.what());
    return 1;
  }
}

namespace {

CLI::Validator integer_at_least(long long lowest, const std::string& what) {
  return CLI::Validator(
      [lowest, what](std::string& text) -> std::string {
        std::size_t used = 0;
        long long value = 0;
        try {
          value = std::stoll(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != text.size() || value < lowest) return str("expected ", what, ", got '", text, "'");
        return "";
      },
      lowest > 0 ? "POSITIVE" : "NONNEGATIVE");
}

}  // namespace

CLI::Validator positive_integer() { return integer_at_least(1, "a positive integer"); }
CLI::Validator non_negative_integer() { return integer_at_least(0, "a non-negative integer"); }

void SampleFlags::add(CLI::App& app) {
  app.add_option("--strategy", strategy_, "sample.strategy: greedy | sample | beam | diverse-beam");
  app.add_option("--num-samples", num_samples_, "sample.num_samples: responses per prompt");
  app.add_option("--max-new-tokens", max_new_tokens_, "sample.max_new_tokens");
  app.add_option("--temperature", temperature_, "sample.temperature");
  app.add_option("--top-k", top_k_, "sample.top_k (0 = off)");
  app.add_option("--top-p", top_p_, "sample.top_p (1 = off)");
  app.add_option("--seed", seed_, "sample.seed");
}

void SampleFlags::apply(config::ConfigTree& tree) const {
  const auto set = [&](const char* flag, const char* key, const auto& value) {
    if (!value) return;
    config::Location where;
    const nlohmann::json v = *value;
    where.override = str(flag, " ", v.is_string() ? v.get<std::string>() : v.dump());
    tree.set(std::string("sample.") + key, v, where);
  };
  set("--strategy", "strategy", strategy_);
  set("--num-samples", "num_samples", num_samples_);
  set("--max-new-tokens", "max_new_tokens", max_new_tokens_);
  set("--temperature", "temperature", temperature_);
  set("--top-k", "top_k", top_k_);
  set("--top-p", "top_p", top_p_);
  set("--seed", "seed", seed_);
}

}  // namespace lire::cli

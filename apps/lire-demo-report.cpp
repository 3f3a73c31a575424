// lire-demo-report: the embedded demo's before/after table from lire-eval
// report folders (docs/demo.md), and its headline line:
//
//   lire-demo-report --headline lire --report SFT=out/demo/eval/sft --report lire=out/demo/eval/lire ...
//
//   | policy | mean reward | win rate vs SFT (95% CI) | KL to SFT |
//   ...
//   win rate aligned (lire) vs SFT: 78.3% (95% CI 71.0-85.1%)
#include <cmath>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lire/cli/command.h"
#include "lire/core/error.h"

namespace {

using nlohmann::json;

struct Row {
  std::string name;
  json report;
};

json read_report(const std::string& folder) {
  const std::string path = folder + "/report.json";
  std::ifstream in(path);
  if (!in) throw lire::Error(lire::str(path, ": cannot read (is ", folder, " a lire-eval report folder?)"));
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("sources") || !j["sources"].is_array() || j["sources"].empty())
    throw lire::Error(lire::str(path, ": not a lire-eval report (no sources)"));
  return j;
}

double number(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_number()) throw lire::Error(lire::str(where, ": no number '", key, "'"));
  return j[key].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> reports;
  std::string headline, baseline_name = "SFT";
  lire::cli::Tool tool;
  tool.name = "lire-demo-report";
  tool.description = "Print the demo's before/after table from lire-eval report folders.";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--report", reports, "NAME=REPORT_DIR, one per policy, in table order (repeatable)")
        ->required()
        ->allow_extra_args(false);
    app.add_option("--headline", headline, "the NAME whose win rate the last line states");
    app.add_option("--baseline-name", baseline_name, "what the baseline is called (default SFT)");
  };
  tool.body = [&](const lire::config::Config&) {
    std::vector<Row> rows;
    for (const auto& r : reports) {
      const auto eq = r.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == r.size())
        throw lire::ConfigError(lire::str("'", r, "': expected NAME=REPORT_DIR"));
      rows.push_back({r.substr(0, eq), read_report(r.substr(eq + 1))});
    }
    const std::string source = rows.front().report["sources"][0].value("name", "reward");
    std::cout << fmt::format("| policy | mean reward ({}) | win rate vs {} (95% CI) | KL to {} |\n", source,
                             baseline_name, baseline_name)
              << "|---|---|---|---|\n";
    const Row* head = nullptr;
    for (const auto& row : rows) {
      const json& s = row.report["sources"][0];
      const std::string where = row.name + " report";
      std::string kl = "-";
      if (row.report.contains("kl") && row.report["kl"].is_object()) {
        const double v = number(row.report["kl"], "mean", where);
        kl = fmt::format("{:.3f}", std::abs(v) < 5e-4 ? 0.0 : v);  // no "-0.000"
      }
      std::cout << fmt::format("| {} | {:.3f} | {:.1f}% ({:.1f}-{:.1f}%) | {} |\n", row.name,
                               number(s, "mean_reward", where), 100.0 * number(s, "win_rate", where),
                               100.0 * number(s, "ci_lower", where), 100.0 * number(s, "ci_upper", where), kl);
      if (row.name == headline) head = &row;
    }
    if (!headline.empty()) {
      if (!head) throw lire::ConfigError(lire::str("--headline ", headline, ": no report of that name"));
      const json& s = head->report["sources"][0];
      const double level =
          head->report.contains("bootstrap") ? head->report["bootstrap"].value("level", 0.95) : 0.95;
      std::cout << fmt::format("win rate aligned ({}) vs {}: {:.1f}% ({:.0f}% CI {:.1f}-{:.1f}%)\n", head->name,
                               baseline_name, 100.0 * number(s, "win_rate", ""), 100.0 * level,
                               100.0 * number(s, "ci_lower", ""), 100.0 * number(s, "ci_upper", ""));
    }
    return 0;
  };
  return lire::cli::run(tool, argc, argv);
}

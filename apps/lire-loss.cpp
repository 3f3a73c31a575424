// lire-loss: evaluate registered preference losses (and their ranking metrics)
// on scored candidate lists whose log-probs are already known.
//
//   lire-loss --data lists.jsonl [--config FILE] [loss.name=lipo loss.beta=0.05 ...]
//   lire-loss --data lists.jsonl --all --output report.json
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "lire/cli/command.h"
#include "lire/config/config_tree.h"
#include "lire/core/error.h"
#include "lire/data/scored_list.h"
#include "lire/losses/evaluate.h"
#include "lire/losses/registry.h"

namespace {

std::string format_row(const lire::losses::LossReport& r) {
  char line[256];
  auto metric = [&](const char* name) {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? 0.0 : it->second;
  };
  std::snprintf(line, sizeof line, "%-14s %12.6f %10.4f %8.4f %10.4f %10.4f", r.loss_name.c_str(), r.loss,
                metric("pair_accuracy"), metric("ndcg"), metric("margin"), metric("valid_pair_fraction"));
  return line;
}

nlohmann::json to_json(const lire::losses::LossReport& r) {
  return {{"loss", r.loss_name}, {"value", r.loss}, {"numerator", r.numerator},
          {"denominator", r.denominator}, {"metrics", r.metrics}, {"metric_counts", r.counts},
          {"lists", r.lists}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_path, output_path;
  bool all = false;
  int64_t batch_size = 64;
  lire::cli::Tool tool;
  tool.name = "lire-loss";
  tool.description = "Evaluate preference losses and ranking metrics on scored candidate lists (JSONL).";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--data", data_path, "JSONL scored lists (logps, rewards, ...)")->required();
    app.add_flag("--all", all, "evaluate every registered loss with its default options");
    app.add_option("--batch-size", batch_size, "lists per padded batch")->check(lire::cli::positive_integer());
    app.add_option("--output", output_path, "write the report (with the resolved config) as JSON");
  };
  tool.body = [&](const lire::config::Config& cfg) {
    const auto lists = lire::data::read_scored_lists(data_path);
    if (lists.empty()) throw lire::DataError(data_path + ": no lists");
    std::vector<lire::losses::LossReport> reports;
    if (all) {
      const bool has_rewards = !lists.front().rewards.empty();
      for (const auto& name : lire::losses::names()) {
        if (name == "sft" && !lists.front().sft_index) continue;  // nothing to measure
        if (name != "sft" && !has_rewards) continue;
        reports.push_back(lire::losses::evaluate(*lire::losses::make(name), lists, batch_size, cfg.runtime.device));
      }
    } else {
      reports.push_back(lire::losses::evaluate(*lire::losses::make(cfg.loss), lists, batch_size, cfg.runtime.device));
    }
    std::cout << lists.size() << " lists from " << data_path << "\n";
    std::cout << "loss                  value   pair_acc     ndcg     margin  pair_frac\n";
    nlohmann::json out = {{"data", data_path}, {"lists", lists.size()},
                          {"config", cfg.tree.root()}, {"reports", nlohmann::json::array()}};
    for (const auto& r : reports) {
      std::cout << format_row(r) << "\n";
      out["reports"].push_back(to_json(r));
    }
    if (!output_path.empty()) {
      lire::config::write_file_atomically(output_path, out.dump(2) + "\n");
      std::cout << "report written to " << output_path << "\n";
    }
    return 0;
  };
  return lire::cli::run(tool, argc, argv);
}

// resolve(): one validation pass over the whole tree, section by section.
#include "lire/config/config.h"

#include <algorithm>

#include "lire/config/section_reader.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"
#include "lire/generate/generate_options.h"

namespace lire::config {
namespace {

std::string prefix(const ConfigTree& tree, const std::string& key) {
  const std::string where = tree.location(key).to_string();
  return where.empty() ? where : where + ": ";
}

}  // namespace

const std::vector<std::string>& section_names() {
  static const std::vector<std::string> names = {"model", "lora",    "data",   "loss",   "train",  "eval",
                                                 "sample", "rewards", "evolve", "output", "runtime"};
  return names;
}

Config resolve(const ConfigTree& tree) {
  const nlohmann::json& root = tree.root();
  if (!root.is_null() && !root.is_object())
    throw ConfigError(str("the configuration must be a mapping of sections, got ", root.type_name()));
  const auto& names = section_names();
  if (root.is_object()) {
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (std::find(names.begin(), names.end(), it.key()) != names.end()) continue;
      throw ConfigError(str(prefix(tree, it.key()), "unknown section '", it.key(), "'",
                            did_you_mean(it.key(), names), " (sections: ", join_sorted(names), ")"));
    }
  }

  Config cfg;
  cfg.tree = tree;
  for (const auto& name : names) {
    if (name == "model") {
      SectionReader reader(tree, "model");
      cfg.model = read_model_options(reader);
    } else if (name == "lora") {
      SectionReader reader(tree, "lora");
      cfg.lora = read_lora_options(reader);
    } else if (name == "data") {
      SectionReader reader(tree, "data");
      cfg.data = read_data_options(reader);
    } else if (name == "loss") {
      SectionReader reader(tree, "loss");
      cfg.loss = losses::read_loss_options(reader);
    } else if (name == "train") {
      SectionReader reader(tree, "train");
      cfg.train = read_train_options(reader);
    } else if (name == "eval") {
      SectionReader reader(tree, "eval");
      cfg.eval = read_eval_options(reader);
    } else if (name == "output") {
      SectionReader reader(tree, "output");
      cfg.output = read_output_options(reader);
    } else if (name == "sample") {
      SectionReader reader(tree, "sample");
      cfg.sample = read_sample_options(reader);
    } else if (name == "rewards") {
      SectionReader reader(tree, "rewards");
      cfg.rewards = read_rewards_options(reader);
    } else if (name == "runtime") {
      SectionReader reader(tree, "runtime");
      cfg.runtime = read_runtime_options(reader);
    } else if (name == "evolve") {
      SectionReader reader(tree, "evolve");
      cfg.evolve = read_evolve_options(reader);
    } else {
      throw Error(str("resolve(): section '", name, "' has no reader"));
    }
  }
  // Names that point into another section.
  const auto check_sources = [&](const std::vector<std::string>& names, const std::string& key) {
    for (const auto& n : names) {
      if (cfg.rewards.find(n)) continue;
      std::vector<std::string> known;
      for (const auto& s : cfg.rewards.sources) known.push_back(s.name);
      throw ConfigError(str(prefix(tree, key), key, ": '", n, "' is not a reward source of the rewards section",
                            known.empty() ? std::string(" (it has none)") : did_you_mean(n, known)));
    }
  };
  check_sources(cfg.sample.rewards, "sample.rewards");
  check_sources(cfg.eval.rewards, "eval.rewards");
  check_sources(cfg.evolve.rewards, "evolve.rewards");
  // The Evolve driver's pool statistics read the pool's rewards fields, which
  // a label source does not write: fail here, not after sampling a pool.
  for (const auto& n : cfg.evolve.rewards)
    if (is_label_source(*cfg.rewards.find(n)))
      throw ConfigError(str(prefix(tree, "evolve.rewards"), "evolve.rewards: '", n, "' is a ",
                            cfg.rewards.find(n)->type, " source: it writes labels, and Evolve's pool statistics read "
                            "rewards"));
  if (cfg.evolve.steps > 0) {
    // Each step samples evolve.samples (and eval_samples) responses with the sample section's decoding.
    for (const auto& [key, n] : {std::pair<std::string, std::int64_t>{"evolve.samples", cfg.evolve.samples},
                                 {"evolve.eval_samples", cfg.evolve.eval_samples}}) {
      generate::GenerateOptions g = cfg.sample.generate;
      g.num_samples = n;
      try {
        generate::validate(g);
      } catch (const ConfigError& e) {
        throw ConfigError(str(prefix(tree, key), key, " ", n, " does not fit the sample section: ", e.what()));
      }
    }
  }
  return cfg;
}

ConfigTree load(const std::string& path, const std::vector<std::string>& overrides) {
  ConfigTree tree = path.empty() ? ConfigTree() : ConfigTree::from_file(path);
  tree.apply_overrides(overrides);
  return tree;
}

}  // namespace lire::config

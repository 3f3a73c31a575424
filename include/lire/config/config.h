// The resolved configuration of a command: the tree (for printing and storing
// in run directories) plus one typed options struct per section that this
// version of lire implements. resolve() validates the whole tree in one pass:
// unknown top-level sections, unknown keys, wrong types and out-of-range values
// are ConfigErrors naming the file/line or override and the dotted key.
#pragma once

#include <string>
#include <vector>

#include "lire/config/config_tree.h"
#include "lire/config/data_options.h"
#include "lire/config/evolve_options.h"
#include "lire/config/lora_options.h"
#include "lire/config/model_options.h"
#include "lire/config/rewards_options.h"
#include "lire/config/runtime_options.h"
#include "lire/config/sample_options.h"
#include "lire/config/train_options.h"
#include "lire/losses/loss_options.h"

namespace lire::config {

// The top-level sections, in DESIGN.md's order.
const std::vector<std::string>& section_names();

struct Config {
  ConfigTree tree;
  ModelOptions model;
  LoraOptions lora;
  DataOptions data;
  losses::LossOptions loss;
  TrainOptions train;
  EvalOptions eval;
  OutputOptions output;
  SampleOptions sample;
  RewardsOptions rewards;
  EvolveOptions evolve;
  RuntimeOptions runtime;
};

Config resolve(const ConfigTree& tree);

// Loads `path` (empty: no file, an empty tree) and applies the overrides.
ConfigTree load(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace lire::config

// lire-score: annotates candidate lists with reference log-probs (a policy)
// and rewards (reward models), streaming, batched, resumable, written atomically.
#pragma once

#include <string>
#include <vector>

#include "lire/config/config.h"

namespace lire::cli {

struct ScoreArgs {
  std::string data;                        // input JSONL (any accepted record format)
  std::string output;                      // output JSONL
  std::string policy;                      // policy folder (overrides model.path); "" = no ref_logps
  std::string adapter;                     // PEFT adapter for the policy (overrides model.adapter)
  std::vector<std::string> reward_models;  // "[NAME=]DIR", in order (after `rewards`)
  std::vector<std::string> rewards;        // reward sources of the config's rewards section, in order
  bool overwrite = false;                  // replace fields the input already has
  bool resume = false;                     // continue from <output>.partial
  int64_t batch_size = 8;                  // lists per batch
  int64_t max_sequences = 16;              // sequences per forward pass
  bool progress = true;                    // progress bar on stderr
};

// Runs the job; returns the exit code (errors throw).
int run_score(const ScoreArgs& args, const config::Config& config);

}  // namespace lire::cli

// lire-eval: reward-model win rates of a policy against a baseline on test
// prompts (docs/evaluation.md). The policy's responses are generated (--policy,
// decoded with the `sample` section, one response per prompt) or read from a
// file (--responses, e.g. lire-sample's output); the baseline's are the data's
// human-written/SFT target responses or another file (--baseline). Every
// reward source scores both; the report has mean rewards, win rates with
// bootstrap confidence intervals, their average over sources, negative flips
// (file baselines), KL(pi || pi_ref) with --reference, and length statistics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lire/config/config.h"

namespace lire::cli {

struct EvalArgs {
  std::string data;                        // test prompts/lists JSONL
  std::string output;                      // report folder
  std::string policy;                      // policy folder (default model.path when no --responses)
  std::string adapter;                     // PEFT adapter for the policy
  std::string responses;                   // policy responses file (instead of a policy)
  std::string baseline;                    // baseline responses file (default: the data's targets)
  std::string reference;                   // reference model folder for KL(pi || pi_ref)
  std::vector<std::string> rewards;        // reward sources of the rewards section
  std::vector<std::string> reward_models;  // "[NAME=]DIR" hf-seq-cls sources
  bool overwrite = false;                  // replace an existing report folder
  int64_t max_sequences = 16;              // sequences per forward pass (reward models, reference)
  bool progress = true;
};

// Runs the job; returns the exit code (errors throw).
int run_eval(const EvalArgs& args, const config::Config& config);

}  // namespace lire::cli

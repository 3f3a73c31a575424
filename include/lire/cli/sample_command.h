// lire-sample: candidate pools from a policy. For every prompt of the input
// (prompt records, or existing candidate lists whose responses are replaced or,
// with sample.keep_human, kept and flagged human), K new responses are
// generated and written as canonical candidate lists with their token ids,
// optionally scored by reward sources in the same pass; streaming, resumable,
// written atomically. docs/sampling.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lire/config/config.h"

namespace lire::cli {

struct SampleArgs {
  std::string data;                        // input JSONL: prompts or candidate lists
  std::string output;                      // output JSONL
  std::string policy;                      // policy folder (overrides model.path)
  std::string adapter;                     // PEFT adapter (overrides model.adapter)
  std::vector<std::string> rewards;        // reward sources of the rewards section (after sample.rewards)
  std::vector<std::string> reward_models;  // "[NAME=]DIR" hf-seq-cls sources, after those
  bool resume = false;                     // continue from <output>.partial
  int64_t max_sequences = 16;              // reward-model sequences per forward pass
  bool progress = true;                    // progress bar on stderr
};

// Runs the job; returns the exit code (errors throw).
int run_sample(const SampleArgs& args, const config::Config& config);

// The fields of a record that describe its candidates (dropped when a pool
// replaces them): responses, responses_ids, rewards, rewards_*, ranks, labels,
// ref_logps, ref_token_counts, human, the pair/HH/PRO fields, and lire-sample's
// own sample_logps and finish.
bool is_candidate_field(const std::string& name);

}  // namespace lire::cli

// lire-sample: generate candidate pools with a policy (optionally scored).
// See README.md and docs/sampling.md.
#include <CLI/CLI.hpp>

#include "lire/cli/command.h"
#include "lire/cli/sample_command.h"

int main(int argc, char** argv) {
  lire::cli::SampleArgs args;
  lire::cli::SampleFlags sample_flags;
  bool no_progress = false;
  lire::cli::Tool tool;
  tool.name = "lire-sample";
  tool.description = "Generate candidate lists (K responses per prompt) with a policy, optionally scored.";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--data", args.data, "input JSONL: prompts or candidate lists")->required();
    app.add_option("--output", args.output, "output JSONL of candidate lists (written atomically)")->required();
    app.add_option("--policy", args.policy, "policy model folder (default: model.path)");
    app.add_option("--adapter", args.adapter, "PEFT LoRA adapter folder for the policy (merged at load)");
    sample_flags.add(app);
    app.add_option("--reward", args.rewards, "NAME of a reward source of the rewards section to score with (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--reward-model", args.reward_models,
                   "[NAME=]DIR of a sequence-classification reward model to score with (repeatable)")
        ->allow_extra_args(false);
    app.add_flag("--resume", args.resume, "continue an interrupted run from OUTPUT.partial");
    app.add_option("--max-sequences", args.max_sequences, "reward-model sequences per forward pass")
        ->check(lire::cli::positive_integer());
    app.add_flag("--no-progress", no_progress, "no progress bar");
  };
  tool.configure = [&](lire::config::ConfigTree& tree) { sample_flags.apply(tree); };
  tool.body = [&](const lire::config::Config& cfg) {
    args.progress = !no_progress;
    return lire::cli::run_sample(args, cfg);
  };
  return lire::cli::run(tool, argc, argv);
}

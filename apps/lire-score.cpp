// lire-score: add reference log-probs (--policy) and rewards (--reward-model)
// to candidate lists. See README.md and docs/data.md.
#include <CLI/CLI.hpp>

#include "lire/cli/command.h"
#include "lire/cli/score_command.h"

int main(int argc, char** argv) {
  lire::cli::ScoreArgs args;
  bool no_progress = false;
  lire::cli::Tool tool;
  tool.name = "lire-score";
  tool.description = "Annotate candidate lists with reference log-probs and reward-model scores.";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--data", args.data, "input JSONL candidate lists")->required();
    app.add_option("--output", args.output, "output JSONL (written atomically)")->required();
    app.add_option("--policy", args.policy, "policy model folder: adds ref_logps and ref_token_counts");
    app.add_option("--adapter", args.adapter, "PEFT LoRA adapter folder for the policy (merged at load)");
    app.add_option("--reward-model", args.reward_models,
                   "[NAME=]DIR of a sequence-classification reward model: adds rewards (several: rewards_NAME)")
        ->allow_extra_args(false);
    app.add_option("--reward", args.rewards,
                   "NAME of a reward source of the config's rewards section (repeatable; before --reward-model)")
        ->allow_extra_args(false);
    app.add_flag("--overwrite", args.overwrite, "replace fields the input already has");
    app.add_flag("--resume", args.resume, "continue an interrupted run from OUTPUT.partial");
    app.add_option("--batch-size", args.batch_size, "lists per batch")->check(lire::cli::positive_integer());
    app.add_option("--max-sequences", args.max_sequences, "sequences per forward pass")
        ->check(lire::cli::positive_integer());
    app.add_flag("--no-progress", no_progress, "no progress bar");
  };
  tool.body = [&](const lire::config::Config& cfg) {
    args.progress = !no_progress;
    return lire::cli::run_score(args, cfg);
  };
  return lire::cli::run(tool, argc, argv);
}

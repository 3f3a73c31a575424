// lire-eval: reward-model win rates of a policy against a baseline.
// See README.md and docs/evaluation.md.
#include <CLI/CLI.hpp>

#include "lire/cli/command.h"
#include "lire/cli/eval_command.h"

int main(int argc, char** argv) {
  lire::cli::EvalArgs args;
  lire::cli::SampleFlags sample_flags;
  bool no_progress = false;
  lire::cli::Tool tool;
  tool.name = "lire-eval";
  tool.description = "Win rates of a policy's responses against a baseline under one or more reward sources.";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--data", args.data, "test prompts or candidate lists (JSONL)")->required();
    app.add_option("--output", args.output, "report folder: report.json, report.md, examples.jsonl")->required();
    app.add_option("--policy", args.policy, "policy model folder to generate with (default: model.path)");
    app.add_option("--adapter", args.adapter, "PEFT LoRA adapter folder for the policy (merged at load)");
    app.add_option("--responses", args.responses, "the policy's responses (JSONL, e.g. lire-sample's output)");
    app.add_option("--baseline", args.baseline,
                   "the baseline's responses (JSONL); default: the data's human-written/target responses");
    app.add_option("--reference", args.reference, "reference model folder: report KL(pi || pi_ref)");
    app.add_option("--reward", args.rewards, "NAME of a reward source of the rewards section (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--reward-model", args.reward_models,
                   "[NAME=]DIR of a sequence-classification reward model (repeatable)")
        ->allow_extra_args(false);
    sample_flags.add(app);
    app.add_flag("--overwrite", args.overwrite, "replace an existing report folder");
    app.add_option("--max-sequences", args.max_sequences, "sequences per forward pass (reward models, reference)")
        ->check(lire::cli::positive_integer());
    app.add_flag("--no-progress", no_progress, "no progress bar");
  };
  tool.configure = [&](lire::config::ConfigTree& tree) { sample_flags.apply(tree); };
  tool.body = [&](const lire::config::Config& cfg) {
    args.progress = !no_progress;
    return lire::cli::run_eval(args, cfg);
  };
  return lire::cli::run(tool, argc, argv);
}

// lire-train: fine-tune a causal LM on candidate lists with any registered
// loss (LoRA or full), with evaluation, checkpoints and exact resume.
// See README.md and docs/training.md.
#include <CLI/CLI.hpp>

#include "lire/cli/command.h"
#include "lire/train/trainer.h"

int main(int argc, char** argv) {
  lire::train::TrainJob job;
  bool no_progress = false;
  for (int i = 0; i < argc; ++i) job.command_line += (i ? " " : "") + std::string(argv[i]);
  lire::cli::Tool tool;
  tool.name = "lire-train";
  tool.description = "Fine-tune a causal LM on scored candidate lists (LIRE, LiPO, DPO, ...).";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--output", job.output, "run directory (must be empty unless resuming); required");
    auto* resume = app.add_flag("--resume", job.resume,
                                "continue from the newest checkpoint in --output (start fresh if there is none)");
    app.add_option("--resume-from", job.resume_from, "continue from this checkpoint folder")->excludes(resume);
    app.add_flag("--no-progress", no_progress, "no progress bar");
  };
  tool.body = [&](const lire::config::Config& cfg) {
    job.config = cfg;
    job.progress = !no_progress;
    lire::train::train(job);
    return 0;
  };
  return lire::cli::run(tool, argc, argv);
}

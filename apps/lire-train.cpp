// lire-train: fine-tune a causal LM on candidate lists with any registered
// loss (LoRA or full), with evaluation, checkpoints and exact resume.
// See README.md and docs/training.md.
//
// SIGTERM and SIGINT stop the run at the next step boundary with a checkpoint
// of that step, and lire-train exits with 128 + the signal's number (143, 130)
// so that schedulers requeue it; further signals while it stops are ignored
// (docs/training.md, "Stopping, crashes and requeueing").
#include <csignal>

#include <CLI/CLI.hpp>

#include "lire/cli/command.h"
#include "lire/core/local_launcher.h"
#include "lire/train/trainer.h"

namespace {

extern "C" void on_stop_signal(int signal) { lire::train::request_stop(signal); }

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // system calls in progress (a checkpoint's writes) carry on
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  lire::train::TrainJob job;
  bool no_progress = false;
  int nproc = 1;
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
    app.add_option("--nproc", nproc,
                   "data-parallel processes on this machine (starts N ranks as torchrun would; docs/distributed.md)");
  };
  tool.body = [&](const lire::config::Config& cfg) {
    if (nproc > 1 || nproc < 1) {
      // The same command line without --nproc, once per rank.
      std::vector<std::string> args;
      for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--nproc") {
          ++i;
          continue;
        }
        if (a.rfind("--nproc=", 0) == 0) continue;
        args.push_back(a);
      }
      return lire::launch_local_ranks(nproc, args);
    }
    job.config = cfg;
    job.progress = !no_progress;
    install_stop_handlers();
    try {
      lire::train::train(job);
    } catch (const lire::train::Stopped& stopped) {
      return lire::train::stopped_exit_status(stopped.signal());
    }
    return 0;
  };
  return lire::cli::run(tool, argc, argv);
}

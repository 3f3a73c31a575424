// lire-bench-generate: generation throughput of a causal LM or T5 folder with each
// decoding strategy of the generation engine (generate/generate.h): prompts/s
// and generated tokens/s for greedy, sampling (K samples sharing the prompt's
// cache, or a T5 prompt's encoder pass), beam and diverse beam search. Prompts are random token ids of a
// fixed length; EOS is disabled so every response runs to max_new_tokens.
//
// A benchmark, not a test: it prints figures and asserts nothing (docs/perf.md
// records a run). Usage:
//   lire-bench-generate MODEL_DIR [--prompts 32] [--prompt-len 32] [--new 64]
//                       [--batch 8] [--threads 0] [--dtype auto] [--device auto]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lire/core/torch_runtime.h"
#include "lire/generate/generate.h"
#include "lire/models/language_model.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: lire-bench-generate MODEL_DIR [--prompts N] [--prompt-len N] [--new N] [--batch N] "
                 "[--threads N] [--dtype D] [--device D]\n";
    return 2;
  }
  const std::string folder = argv[1];
  long prompts_n = 32, prompt_len = 32, new_tokens = 64, batch = 8, threads = 0;
  std::string dtype = "auto", device = "auto";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--prompts") prompts_n = std::stol(value);
    else if (flag == "--prompt-len") prompt_len = std::stol(value);
    else if (flag == "--new") new_tokens = std::stol(value);
    else if (flag == "--batch") batch = std::stol(value);
    else if (flag == "--threads") threads = std::stol(value);
    else if (flag == "--dtype") dtype = value;
    else if (flag == "--device") device = value;
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  try {
    lire::config::RuntimeOptions runtime;
    runtime.threads = static_cast<int>(threads);
    runtime.device = device;
    const int used_threads = lire::apply_runtime(runtime);
    lire::models::LoadOptions load;
    load.dtype = dtype;
    load.device = device;
    const auto model = lire::models::load_language_model(folder, load);
    const auto vocab = model.vocab_size();
    std::mt19937_64 rng(1);
    std::vector<std::vector<std::int64_t>> prompts(static_cast<std::size_t>(prompts_n));
    for (auto& p : prompts) {
      // Llama: BOS first; T5: EOS last. Ids 0-2 are special in both.
      if (!model.is_t5()) p.push_back(1);
      while (static_cast<long>(p.size()) < prompt_len - (model.is_t5() ? 1 : 0))
        p.push_back(3 + static_cast<std::int64_t>(rng() % (vocab - 3)));
      if (model.is_t5()) p.push_back(model.eos_ids().front());
    }
    std::printf("model %s (%s), %s, %d threads; %ld prompts of %ld tokens, %ld new tokens each, %ld prompts a batch\n",
                folder.c_str(), model.describe().c_str(), lire::torch_description().c_str(), used_threads, prompts_n, prompt_len, new_tokens,
                batch);
    std::printf("%-36s %10s %12s %14s\n", "strategy", "seconds", "prompts/s", "new tokens/s");
    struct Case {
      std::string label, strategy;
      long samples, beams, groups;
    };
    const std::vector<Case> cases = {{"greedy", "greedy", 1, 1, 1},
                                     {"sample K=1 (T 0.7, top-k 40)", "sample", 1, 1, 1},
                                     {"sample K=4 (shared prompt cache)", "sample", 4, 1, 1},
                                     {"beam 4, K=4", "beam", 4, 4, 1},
                                     {"diverse-beam 4 beams / 2 groups, K=4", "diverse-beam", 4, 4, 2}};
    for (const auto& c : cases) {
      lire::generate::GenerateOptions o;
      o.strategy = c.strategy;
      o.num_samples = c.samples;
      o.num_beams = c.beams;
      o.num_beam_groups = c.groups;
      o.temperature = 0.7;
      o.top_k = 40;
      o.max_new_tokens = new_tokens;
      o.batch_prompts = batch;
      o.eos_ids = {-1};
      lire::generate::generate(model, {prompts[0]}, o);  // warm-up
      const auto t0 = std::chrono::steady_clock::now();
      const auto out = lire::generate::generate(model, prompts, o);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double tokens = 0;
      for (const auto& p : out)
        for (const auto& g : p) tokens += static_cast<double>(g.ids.size());
      std::printf("%-36s %10.3f %12.1f %14.0f\n", c.label.c_str(), s, prompts_n / s, tokens / s);
    }
  } catch (const std::exception& e) {
    std::cerr << "lire-bench-generate: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

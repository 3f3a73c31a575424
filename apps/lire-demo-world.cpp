// lire-demo-world: write the embedded demo's task world (prompt sets, a
// sentencepiece tokenizer, a random-init tiny Llama). See docs/demo.md.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "lire/cli/command.h"
#include "lire/demo/task_world.h"

int main(int argc, char** argv) {
  lire::demo::TaskWorldOptions o;
  std::string output;
  lire::cli::Tool tool;
  tool.name = "lire-demo-world";
  tool.description =
      "Write the demo's task world (sort words, judged by rouge-l): SFT lists, alignment and eval prompts, "
      "a sentencepiece tokenizer and a random-init tiny Llama. Same options and seed -> identical files.";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--output", output, "folder to write into (data/, tokenizer/, model-init/, world.json)")->required();
    app.add_option("--seed", o.seed, "seed of every random choice")->capture_default_str();
    app.add_option("--train-prompts", o.train_prompts, "alignment prompts (data/prompts.jsonl)")->capture_default_str();
    app.add_option("--eval-prompts", o.eval_prompts, "held-out prompts (data/eval.jsonl)")->capture_default_str();
    app.add_option("--sft-lists", o.sft_lists, "SFT lists (data/sft.jsonl)")->capture_default_str();
    app.add_option("--sft-noise", o.sft_noise, "share of SFT responses with two adjacent words swapped")
        ->capture_default_str();
    app.add_option("--lexicon-size", o.lexicon_size, "words of the built-in lexicon to use (4-32)")->capture_default_str();
    app.add_option("--min-words", o.min_words, "fewest words per prompt")->capture_default_str();
    app.add_option("--max-words", o.max_words, "most words per prompt")->capture_default_str();
    app.add_option("--vocab-size", o.vocab_size, "tokenizer pieces (0 = automatic)")->capture_default_str();
    app.add_option("--hidden", o.hidden_size, "model hidden size")->capture_default_str();
    app.add_option("--intermediate", o.intermediate_size, "MLP size (0 = 8/3 hidden, rounded up to 16)")
        ->capture_default_str();
    app.add_option("--layers", o.layers, "decoder layers")->capture_default_str();
    app.add_option("--heads", o.heads, "attention heads")->capture_default_str();
    app.add_option("--kv-heads", o.kv_heads, "key/value heads (0 = heads)")->capture_default_str();
    app.add_option("--max-positions", o.max_position_embeddings, "max_position_embeddings")->capture_default_str();
    app.add_option("--init-std", o.initializer_range, "std of the normal weight init (HF's initializer_range)")
        ->capture_default_str();
  };
  tool.body = [&](const lire::config::Config&) {
    const auto summary = lire::demo::write_task_world(output, o);
    spdlog::info("task world in {}: {} SFT lists, {} train and {} eval prompts; tokenizer of {} pieces; "
                 "model {} ({} parameters)",
                 output, o.sft_lists, o.train_prompts, o.eval_prompts, summary.vocab_size, summary.model_folder,
                 summary.parameters);
    return 0;
  };
  return lire::cli::run(tool, argc, argv);
}

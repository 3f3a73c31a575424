// The embedded demo's task world: a small, deterministic task whose quality a
// rule reward judges with partial credit, plus everything needed to align a
// model on it offline (docs/demo.md).
//
// The task is sorting words: the prompt "sort: pear fig apple =" asks for
// "apple fig pear" (ASCII order). Prompts draw 3-6 distinct words from a
// built-in lexicon of short words; the reward is `rouge-l` against the sorted
// reference, so a response with one pair out of order, a missing or a repeated
// word still earns partial credit, which listwise losses learn from.
//
// write_task_world() writes, from one seed (same seed -> byte-identical files):
//   data/sft.jsonl       SFT lists: prompt, one correct response (rewards [1], human [true]), reference
//   data/prompts.jsonl   alignment prompts {"id", "prompt", "reference"}
//   data/eval.jsonl      held-out prompts, whose word sets appear in neither file above
//   tokenizer/           corpus.txt and the sentencepiece model trained on it (tokenizer.model, .vocab)
//   model-init/          a random-init Llama in Hugging Face format (config.json,
//                        model.safetensors, tokenizer files) that lire-train and
//                        lire-sample load unchanged
//   world.json           the options and counts (what made these files)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lire::demo {

// The built-in lexicon: 32 short lowercase ASCII words, sorted, distinct, some
// sharing a prefix (pea, peach, pear) so that order is not the first letter alone.
const std::vector<std::string>& default_lexicon();

// One task instance.
struct SortExample {
  std::string prompt;     // "sort: pear fig apple ="
  std::string reference;  // "apple fig pear"
};

// The instance for `words` in the order the prompt shows them.
SortExample sort_example(const std::vector<std::string>& words);

struct TaskWorldOptions {
  std::uint64_t seed = 1;              // every file is a function of the options, the seed included
  std::int64_t lexicon_size = 24;      // the first N words of default_lexicon(), in [4, 32]
  std::int64_t min_words = 3;          // words per prompt, drawn uniformly in [min_words, max_words]
  std::int64_t max_words = 6;
  std::int64_t train_prompts = 512;    // data/prompts.jsonl
  std::int64_t eval_prompts = 128;     // data/eval.jsonl
  std::int64_t sft_lists = 2048;       // data/sft.jsonl
  double sft_noise = 0.0;              // share of SFT responses with two adjacent words swapped, in [0, 1)
  // Tokenizer: a word-level sentencepiece model (each word of the task one
  // piece); 0 = every word of the corpus (lexicon size + 5: <unk> <s> </s> "sort:" "=").
  std::int64_t vocab_size = 0;
  // Model (LlamaForCausalLM, float32, untied head).
  std::int64_t hidden_size = 64;
  std::int64_t intermediate_size = 0;  // 0 = 8/3 hidden rounded up to a multiple of 16 (Llama's ratio)
  std::int64_t layers = 2;
  std::int64_t heads = 4;
  std::int64_t kv_heads = 0;           // 0 = heads
  std::int64_t max_position_embeddings = 64;
  double initializer_range = 0.02;     // std of the normal init of linear and embedding weights (HF's)
};

// The three prompt sets of a world (deterministic in the options).
struct TaskWorldData {
  std::vector<SortExample> sft;    // references, before sft_noise
  std::vector<SortExample> train;
  std::vector<SortExample> eval;
};

// Checks the options; throws ConfigError naming the option.
void validate(const TaskWorldOptions& options);

// The prompt sets: prompts are distinct within each set, and no eval prompt's
// word set is the word set of an SFT or train prompt. Throws ConfigError when
// the lexicon has too few word sets for the counts asked.
TaskWorldData make_task_world_data(const TaskWorldOptions& options);

struct TaskWorldSummary {
  std::int64_t vocab_size = 0;     // tokenizer pieces = config.json vocab_size
  std::int64_t parameters = 0;     // model parameters
  std::string model_folder;        // <output>/model-init
};

// Writes the whole world into `output` (created if needed; the files above
// are replaced, nothing else in the folder is touched). Not thread-safe: it
// changes the working directory while sentencepiece trains (and restores it).
TaskWorldSummary write_task_world(const std::string& output, const TaskWorldOptions& options);

}  // namespace lire::demo

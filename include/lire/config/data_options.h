// The `data` config section: which candidate-list files a command reads, how
// records are validated, split and subsampled, and how they become token ids
// (docs/data.md has the rules).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace lire::config {

class SectionReader;

struct DataOptions {
  // Training candidate lists (JSONL, any format of docs/data.md); "" = none given.
  std::string train;
  // Held-out lists for evaluation (JSONL); "" = take data.eval_fraction of `train`.
  std::string eval;
  // Share of `train` held out for evaluation when `eval` is empty, in [0, 1).
  double eval_fraction = 0.0;
  // A malformed record: "fail" (stop with file:line) or "skip" (leave it out, count and report it).
  std::string on_error = "fail";
  // Keep at most this many responses a list, a seeded subset (the same every epoch); 0 = all.
  std::int64_t max_responses = 0;
  // Visit the training lists in a new seeded order every epoch (runtime.seed).
  bool shuffle = true;
  // Batches of lists of similar lengths (prompt + all responses, in tokens):
  // windows of 64 steps' lists sorted by length and cut into micro-batches
  // (data::EpochOrder::group_by_length); less padding, still seeded.
  bool length_grouping = false;
  // Field names of the file -> the canonical names (prompt, responses, rewards, ranks,
  // labels, chosen, rejected, ...), e.g. {question: prompt, answers: responses}.
  std::map<std::string, std::string> fields;

  // Prompt template by name: raw, alpaca, hh, llama2-chat, vicuna.
  std::string prompt_template = "raw";
  // Append EOS to every text response (whatever tokenizer_config's add_eos_token says).
  bool append_eos = true;
  // Prompt + response tokens of one sequence at most; responses are cut to fit; 0 = no limit.
  std::int64_t max_length = 0;
  // Keep at most this many prompt tokens, dropping from the left (BOS kept); 0 = no limit.
  std::int64_t max_prompt_length = 0;
  // Keep at most this many response tokens, dropping from the right; 0 = no limit.
  std::int64_t max_response_length = 0;
};

DataOptions read_data_options(SectionReader& reader);

}  // namespace lire::config

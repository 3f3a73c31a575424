// The `data` config section: how candidate lists become token ids
// (docs/data.md has the rule).
#pragma once

#include <cstdint>
#include <string>

namespace lire::config {

class SectionReader;

struct DataOptions {
  // Prompt template by name: raw, alpaca, hh, llama2-chat, vicuna.
  std::string prompt_template = "raw";
  // Append EOS to every text response (whatever tokenizer_config's add_eos_token says).
  bool append_eos = true;
  // Keep at most this many prompt tokens, dropping from the left (BOS kept); 0 = no limit.
  std::int64_t max_prompt_tokens = 0;
  // Keep at most this many response tokens, dropping from the right; 0 = no limit.
  std::int64_t max_response_tokens = 0;
};

DataOptions read_data_options(SectionReader& reader);

}  // namespace lire::config

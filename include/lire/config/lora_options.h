// The `lora` config section (PEFT's LoraConfig in lire's words).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lire::config {

class SectionReader;

struct LoraOptions {
  // false: full fine-tuning (no adapters).
  bool enabled = true;
  // Rank r of A [r, in] and B [out, r].
  std::int64_t r = 8;
  // Scaling numerator: the update is (alpha / r) * B A (alpha / sqrt(r) with rslora).
  double alpha = 16.0;
  // Dropout on the adapter's input while training.
  double dropout = 0.0;
  // rsLoRA scaling alpha / sqrt(r).
  bool rslora = false;
  // Linear modules to adapt, by name (q_proj matches every ...q_proj), or
  // "all-linear" for every Linear but the output heads. Empty (not given):
  // the architecture's default, as PEFT's (Llama q_proj, v_proj; T5 q, v),
  // filled in by whoever knows the model (models::LanguageModel).
  std::vector<std::string> targets;

  double scaling() const;
};

LoraOptions read_lora_options(SectionReader& reader);

}  // namespace lire::config

// The `model` and `data` sections.
#include "lire/config/model_options.h"

#include <limits>

#include "lire/config/data_options.h"
#include "lire/config/section_reader.h"
#include "lire/data/prompt_template.h"

namespace lire::config {

ModelOptions read_model_options(SectionReader& reader) {
  ModelOptions o;
  o.path = reader.string("path", o.path);
  o.dtype = reader.choice("dtype", o.dtype, {"auto", "fp32", "bf16", "fp16", "fp64"});
  o.adapter = reader.string("adapter", o.adapter);
  reader.finish();
  return o;
}

DataOptions read_data_options(SectionReader& reader) {
  DataOptions o;
  o.prompt_template = reader.choice("prompt_template", o.prompt_template, data::template_names());
  o.append_eos = reader.boolean("append_eos", o.append_eos);
  const auto max = std::numeric_limits<std::int64_t>::max();
  o.max_prompt_tokens = reader.integer("max_prompt_tokens", o.max_prompt_tokens, 0, max);
  o.max_response_tokens = reader.integer("max_response_tokens", o.max_response_tokens, 0, max);
  reader.finish();
  return o;
}

}  // namespace lire::config

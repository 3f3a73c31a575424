// The `model` and `data` sections.
#include "lire/config/model_options.h"

#include <algorithm>
#include <limits>

#include "lire/config/data_options.h"
#include "lire/config/section_reader.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"
#include "lire/data/candidate_list.h"
#include "lire/data/prompt_template.h"

namespace lire::config {

ModelOptions read_model_options(SectionReader& reader) {
  ModelOptions o;
  o.path = reader.string("path", o.path);
  o.dtype = reader.choice("dtype", o.dtype, {"auto", "fp32", "bf16", "fp16", "fp64"});
  o.adapter = reader.string("adapter", o.adapter);
  o.shared_prompt = reader.boolean("shared_prompt", o.shared_prompt);
  reader.finish();
  return o;
}

DataOptions read_data_options(SectionReader& reader) {
  DataOptions o;
  const auto max = std::numeric_limits<std::int64_t>::max();
  o.train = reader.string("train", o.train);
  o.eval = reader.string("eval", o.eval);
  o.eval_fraction = reader.number("eval_fraction", o.eval_fraction, {0.0, 1.0, false, true});
  if (!o.eval.empty() && o.eval_fraction > 0)
    reader.fail("eval_fraction", "give data.eval (a file) or data.eval_fraction (a share of data.train), not both");
  o.on_error = reader.choice("on_error", o.on_error, {"fail", "skip"});
  o.max_responses = reader.integer("max_responses", o.max_responses, 0, max);
  if (o.max_responses == 1) reader.fail("max_responses", "must be 0 (all) or at least 2: a list needs two responses");
  o.shuffle = reader.boolean("shuffle", o.shuffle);
  o.length_grouping = reader.boolean("length_grouping", o.length_grouping);
  if (const nlohmann::json* fields = reader.raw("fields")) {
    if (!fields->is_object())
      reader.fail("fields", str("must be a mapping {name in the file: canonical name}, got ", fields->type_name()));
    for (auto it = fields->begin(); it != fields->end(); ++it) {
      if (!it.value().is_string() || it.value().get<std::string>().empty())
        reader.fail("fields", str("'", it.key(), "' must map to a canonical field name (a string)"));
      o.fields[it.key()] = it.value().get<std::string>();
      const auto& names = data::canonical_field_names();
      if (std::find(names.begin(), names.end(), o.fields[it.key()]) == names.end())
        reader.fail("fields", str("'", it.key(), "' maps to '", o.fields[it.key()],
                                  "', which is not a field lire reads", did_you_mean(o.fields[it.key()], names),
                                  " (valid: ", join_sorted(names), ")"));
    }
  }
  o.prompt_template = reader.choice("prompt_template", o.prompt_template, data::template_names());
  o.append_eos = reader.boolean("append_eos", o.append_eos);
  o.max_length = reader.integer("max_length", o.max_length, 0, max);
  o.max_prompt_length = reader.integer("max_prompt_length", o.max_prompt_length, 0, max);
  o.max_response_length = reader.integer("max_response_length", o.max_response_length, 0, max);
  if (o.max_length > 0 && o.max_prompt_length >= o.max_length)
    reader.fail("max_prompt_length", str("must be below data.max_length (", o.max_length,
                                         ") to leave room for responses, got ", o.max_prompt_length));
  reader.finish();
  return o;
}

}  // namespace lire::config

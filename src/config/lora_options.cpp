#include "lire/config/lora_options.h"

#include <cmath>

#include "lire/config/section_reader.h"

namespace lire::config {

double LoraOptions::scaling() const {
  return rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

LoraOptions read_lora_options(SectionReader& reader) {
  LoraOptions o;
  o.enabled = reader.boolean("enabled", o.enabled);
  o.r = reader.integer("r", o.r, 1, 1 << 16);
  o.alpha = reader.number("alpha", o.alpha, NumberRange::positive());
  o.dropout = reader.number("dropout", o.dropout, {0.0, 1.0, false, true});
  o.rslora = reader.boolean("rslora", o.rslora);
  const bool given = reader.has("targets");
  o.targets = reader.string_list("targets", o.targets);
  if (given && o.targets.empty()) reader.fail("targets", "must name at least one module (or all-linear)");
  for (const auto& t : o.targets)
    if (t.empty()) reader.fail("targets", "module names must be non-empty");
  reader.finish();
  return o;
}

}  // namespace lire::config

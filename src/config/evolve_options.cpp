// The `evolve` section.
#include "lire/config/evolve_options.h"

#include <limits>

#include "lire/config/section_reader.h"

namespace lire::config {

EvolveOptions read_evolve_options(SectionReader& r) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  EvolveOptions o;
  o.steps = r.integer("steps", o.steps, 0, kMax);
  o.iterate = r.integer("iterate", o.iterate, 1, kMax);
  o.samples = r.integer("samples", o.samples, 1, kMax);
  o.keep_human = r.boolean("keep_human", o.keep_human);
  o.rewards = r.string_list("rewards", o.rewards);
  o.eval_prompts = r.string("eval_prompts", o.eval_prompts);
  o.eval_samples = r.integer("eval_samples", o.eval_samples, 1, kMax);
  r.finish();
  if (o.steps > 0 && o.rewards.empty())
    r.fail("rewards", "name the reward sources (of the rewards section) that score each Evolve step's pool");
  return o;
}

}  // namespace lire::config

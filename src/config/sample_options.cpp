// The `sample` section.
#include "lire/config/sample_options.h"

#include <limits>

#include "lire/config/section_reader.h"
#include "lire/core/error.h"

namespace lire::config {

SampleOptions read_sample_options(SectionReader& r) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  SampleOptions o;
  auto& g = o.generate;
  g.strategy = r.choice("strategy", g.strategy, {"greedy", "sample", "beam", "diverse-beam"});
  g.num_samples = r.integer("num_samples", g.num_samples, 1, kMax);
  g.max_new_tokens = r.integer("max_new_tokens", g.max_new_tokens, 1, kMax);
  g.temperature = r.number("temperature", g.temperature, NumberRange::non_negative());
  g.top_k = r.integer("top_k", g.top_k, 0, kMax);
  g.top_p = r.number("top_p", g.top_p, {0.0, 1.0, true, false});
  g.num_beams = r.integer("num_beams", g.num_beams, 1, kMax);
  g.num_beam_groups = r.integer("num_beam_groups", g.num_beam_groups, 1, kMax);
  g.diversity_penalty = r.number("diversity_penalty", g.diversity_penalty, NumberRange::non_negative());
  g.length_penalty = r.number("length_penalty", g.length_penalty);
  g.seed = static_cast<std::uint64_t>(r.integer("seed", static_cast<std::int64_t>(g.seed), 0, kMax));
  g.batch_prompts = r.integer("batch_prompts", g.batch_prompts, 1, kMax);
  o.stop = r.string_list("stop", o.stop);
  for (const auto& s : o.stop)
    if (s.empty()) r.fail("stop", "a stop string must not be empty");
  o.keep_human = r.boolean("keep_human", o.keep_human);
  o.rewards = r.string_list("rewards", o.rewards);
  r.finish();
  // The checks that tie keys together (beams vs samples, groups dividing beams).
  try {
    generate::validate(g);
  } catch (const ConfigError& e) {
    const std::string message = e.what();  // "sample.key: reason"
    const auto colon = message.find(':');
    const std::string key = message.substr(0, colon).substr(std::string("sample.").size());
    r.fail(key, message.substr(colon + 2));
  }
  return o;
}

}  // namespace lire::config

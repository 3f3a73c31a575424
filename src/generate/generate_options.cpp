// Validation of the decoding options (ConfigErrors name the sample.* key).
#include "lire/generate/generate_options.h"

#include <cmath>

#include "lire/core/error.h"

namespace lire::generate {

void validate(const GenerateOptions& o) {
  if (o.strategy != "greedy" && o.strategy != "sample" && o.strategy != "beam" && o.strategy != "diverse-beam")
    throw ConfigError(str("sample.strategy: must be greedy, sample, beam or diverse-beam, got '", o.strategy, "'"));
  if (o.strategy == "beam" || o.strategy == "diverse-beam") {
    if (o.num_beams < 1) throw ConfigError(str("sample.num_beams: must be >= 1, got ", o.num_beams));
    if (o.num_samples > o.num_beams)
      throw ConfigError(str("sample.num_samples: ", o.num_samples, " responses need at least as many beams (",
                            "sample.num_beams is ", o.num_beams, ")"));
    if (!std::isfinite(o.length_penalty))
      throw ConfigError(str("sample.length_penalty: must be finite, got ", o.length_penalty));
  }
  if (o.strategy == "diverse-beam") {
    if (o.num_beam_groups < 2 || o.num_beams % o.num_beam_groups != 0)
      throw ConfigError(str("sample.num_beam_groups: diverse-beam needs >= 2 groups dividing sample.num_beams (",
                            o.num_beams, "), got ", o.num_beam_groups));
    if (!(o.diversity_penalty >= 0) || !std::isfinite(o.diversity_penalty))
      throw ConfigError(str("sample.diversity_penalty: must be >= 0, got ", o.diversity_penalty));
  }
  if (o.max_new_tokens < 1) throw ConfigError(str("sample.max_new_tokens: must be >= 1, got ", o.max_new_tokens));
  if (o.num_samples < 1) throw ConfigError(str("sample.num_samples: must be >= 1, got ", o.num_samples));
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw ConfigError(str("sample.temperature: must be >= 0, got ", o.temperature));
  if (o.top_k < 0) throw ConfigError(str("sample.top_k: must be >= 0 (0 = off), got ", o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) throw ConfigError(str("sample.top_p: must be in (0, 1], got ", o.top_p));
  if (o.batch_prompts < 1) throw ConfigError(str("sample.batch_prompts: must be >= 1, got ", o.batch_prompts));
}

}  // namespace lire::generate

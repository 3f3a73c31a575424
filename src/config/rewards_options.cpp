// The `rewards` section: one mapping per named reward source.
#include "lire/config/rewards_options.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <regex>

#include "lire/config/section_reader.h"
#include "lire/core/error.h"

namespace lire::config {

const std::vector<std::string>& reward_source_types() {
  static const std::vector<std::string> types = {"hf-seq-cls", "exact-match", "rouge-l", "regex", "length", "ensemble"};
  return types;
}

const RewardSourceOptions* RewardsOptions::find(const std::string& name) const {
  for (const auto& s : sources)
    if (s.name == name) return &s;
  return nullptr;
}

RewardsOptions read_rewards_options(SectionReader& reader) {
  RewardsOptions out;
  const auto max = std::numeric_limits<std::int64_t>::max();
  for (const auto& name : reader.keys()) {
    for (char c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
        reader.fail(name, "a reward source name may hold letters, digits, '_', '-' and '.'");
    SectionReader r = reader.section(name);
    RewardSourceOptions o;
    o.name = name;
    if (!r.has("type"))
      r.fail("type", str("missing: every reward source needs a type (", [] {
               std::string t;
               for (const auto& x : reward_source_types()) t += (t.empty() ? "" : ", ") + x;
               return t;
             }(), ")"));
    o.type = r.choice("type", "", reward_source_types());
    if (o.type == "hf-seq-cls") {
      o.path = r.string("path", "");
      if (o.path.empty()) r.fail("path", "hf-seq-cls needs the reward model's folder");
    } else if (o.type == "exact-match" || o.type == "rouge-l") {
      o.field = r.string("field", o.field);
      if (o.field.empty()) r.fail("field", "must name a record field");
      o.normalize = r.boolean("normalize", o.normalize);
    } else if (o.type == "regex") {
      o.pattern = r.string("pattern", "");
      if (o.pattern.empty()) r.fail("pattern", "regex needs a pattern");
      try {
        std::regex check(o.pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        r.fail("pattern", str("not a valid regular expression: ", e.what()));
      }
      o.full_match = r.boolean("full_match", o.full_match);
    } else if (o.type == "length") {
      o.min_chars = r.integer("min_chars", o.min_chars, 0, max);
      o.max_chars = r.integer("max_chars", o.max_chars, 0, max);
      if (o.max_chars > 0 && o.max_chars < o.min_chars)
        r.fail("max_chars", str("must be >= min_chars (", o.min_chars, ") or 0 (no upper bound)"));
    } else {  // ensemble
      const nlohmann::json* w = r.raw("weights");
      if (!w || !w->is_object() || w->empty())
        r.fail("weights", "an ensemble needs weights: a mapping {source name: weight > 0}");
      for (auto it = w->begin(); it != w->end(); ++it) {
        if (!it.value().is_number() || !(it.value().get<double>() > 0) || !std::isfinite(it.value().get<double>()))
          r.fail("weights", str("the weight of '", it.key(), "' must be a number > 0"));
        o.weights.emplace_back(it.key(), it.value().get<double>());
      }
    }
    r.finish();
    out.sources.push_back(std::move(o));
  }
  // Ensemble members exist and are not ensembles themselves (no cycles).
  for (const auto& s : out.sources) {
    if (s.type != "ensemble") continue;
    for (const auto& [member, weight] : s.weights) {
      const auto* m = out.find(member);
      if (!m)
        reader.fail(s.name, str("ensemble member '", member, "' is not a reward source of this section"));
      if (m->type == "ensemble") reader.fail(s.name, str("ensemble member '", member, "' is an ensemble itself"));
    }
  }
  reader.finish();
  return out;
}

}  // namespace lire::config

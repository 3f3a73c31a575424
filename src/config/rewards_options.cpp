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
namespace {

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// Record fields the candidate-list reader gives a meaning to: a preference
// matrix written there would make the output unreadable (or change its data).
bool is_record_field(const std::string& field) {
  static const std::vector<std::string> fields = {
      "id",    "prompt", "responses", "rewards", "ranks",    "labels", "ref_logps",  "ref_token_counts",
      "human", "input",  "system",    "chosen",  "rejected", "prefix", "suffix",     "reward",
      "prompt_ids", "responses_ids", "score_chosen", "score_rejected"};
  return std::find(fields.begin(), fields.end(), field) != fields.end() || field.rfind("rewards_", 0) == 0 ||
         field.rfind("labels_", 0) == 0;
}

void read_t5_pairwise(SectionReader& r, RewardSourceOptions& o) {
  const auto max = std::numeric_limits<std::int64_t>::max();
  o.path = r.string("path", "");
  if (o.path.empty()) r.fail("path", "t5-pairwise needs the ranker's folder (a T5ForConditionalGeneration)");
  o.pair_template = r.string("template", o.pair_template);
  if (o.pair_template == "summary") o.pair_template = RewardSourceOptions::kSummaryPairTemplate;
  if (o.pair_template == "response") o.pair_template = RewardSourceOptions::kResponsePairTemplate;
  for (const char* part : {"{context}", "{a}", "{b}"})
    if (count_of(o.pair_template, part) != 1)
      r.fail("template", str("must hold ", part, " exactly once (or be a preset: summary, response); got '",
                             o.pair_template, "'"));
  o.choice_a = r.string("choice_a", o.choice_a);
  o.choice_b = r.string("choice_b", o.choice_b);
  if (o.choice_a.empty()) r.fail("choice_a", "must be a non-empty text");
  if (o.choice_b.empty()) r.fail("choice_b", "must be a non-empty text");
  if (o.choice_a == o.choice_b) r.fail("choice_b", str("must differ from choice_a ('", o.choice_a, "')"));
  o.normalize_choices = r.boolean("normalize", o.normalize_choices);
  o.matrix_field = r.string("matrix_field", o.matrix_field);
  if (is_record_field(o.matrix_field))
    r.fail("matrix_field",
           str("'", o.matrix_field, "' is a field lire reads or writes per response; choose another name"));
  o.batch_pairs = r.integer("batch_pairs", o.batch_pairs, 1, max);
  o.max_input_tokens = r.integer("max_input_tokens", o.max_input_tokens, 0, max);
}

}  // namespace

const std::vector<std::string>& reward_source_types() {
  static const std::vector<std::string> types = {"hf-seq-cls", "t5-pairwise", "exact-match", "rouge-l",
                                                 "regex",      "length",      "ensemble"};
  return types;
}

bool is_label_source(const RewardSourceOptions& options) { return options.type == "t5-pairwise"; }

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
    } else if (o.type == "t5-pairwise") {
      read_t5_pairwise(r, o);
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
      if (is_label_source(*m))
        reader.fail(s.name, str("ensemble member '", member, "' is a ", m->type,
                                " source: it gives labels (psi in [0, 1]), not rewards to mix"));
    }
  }
  // Two sources writing one matrix field would overwrite each other.
  for (std::size_t i = 0; i < out.sources.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (!out.sources[i].matrix_field.empty() && out.sources[i].matrix_field == out.sources[j].matrix_field)
        reader.fail(out.sources[i].name, str("matrix_field '", out.sources[i].matrix_field,
                                             "' is also the matrix_field of '", out.sources[j].name, "'"));
  reader.finish();
  return out;
}

}  // namespace lire::config

#include "lire/cli/scoring.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "lire/cli/sharded_output.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"
#include "lire/rewards/sequence_classifier.h"
#include "lire/rewards/t5_pairwise.h"

namespace lire::cli {

namespace fs = std::filesystem;

RewardModelSpec parse_reward_model(const std::string& spec) {
  const auto eq = spec.find('=');
  RewardModelSpec r;
  if (eq == std::string::npos) {
    r.folder = spec;
    r.name = fs::path(spec).lexically_normal().filename().string();
    if (r.name.empty()) r.name = fs::path(spec).lexically_normal().parent_path().filename().string();
  } else {
    r.name = spec.substr(0, eq);
    r.folder = spec.substr(eq + 1);
  }
  LIRE_CHECK(!r.name.empty() && !r.folder.empty(), "--reward-model '", spec, "': expected [NAME=]DIR");
  for (char c : r.name)
    LIRE_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.',
               "--reward-model '", spec, "': NAME may hold letters, digits, '_', '-', '.'");
  return r;
}

Scorer::Scorer(const config::Config& cfg, const std::vector<std::string>& names,
               const std::vector<std::string>& reward_models, int64_t max_sequences) {
  config::RewardsOptions chosen;
  const auto add = [&](const config::RewardSourceOptions& o) {
    if (std::find(order_.begin(), order_.end(), o.name) != order_.end()) return;
    order_.push_back(o.name);
    chosen.sources.push_back(o);
  };
  for (const auto& name : names) {
    const auto* o = cfg.rewards.find(name);
    if (!o) {
      std::vector<std::string> known;
      for (const auto& s : cfg.rewards.sources) known.push_back(s.name);
      throw ConfigError(str("'", name, "' is not a reward source of the rewards section",
                            known.empty() ? std::string(" (it has none)")
                                          : str(did_you_mean(name, known), " (it has: ", join_sorted(known), ")")));
    }
    add(*o);
    // An ensemble needs its members in the set (they are not output unless named).
    for (const auto& [member, weight] : o->weights)
      if (!std::any_of(chosen.sources.begin(), chosen.sources.end(),
                       [&](const auto& s) { return s.name == member; }))
        chosen.sources.push_back(*cfg.rewards.find(member));
  }
  for (const auto& spec : reward_models) {
    const auto rm = parse_reward_model(spec);
    LIRE_CHECK(std::none_of(chosen.sources.begin(), chosen.sources.end(),
                            [&](const auto& s) { return s.name == rm.name; }),
               "two reward sources are named '", rm.name, "'; name the model NAME=DIR");
    config::RewardSourceOptions o;
    o.name = rm.name;
    o.type = "hf-seq-cls";
    o.path = rm.folder;
    add(o);
  }
  if (order_.empty()) return;
  std::sort(chosen.sources.begin(), chosen.sources.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  models::LoadOptions load;
  load.dtype = cfg.model.dtype;
  load.device = rank_device(cfg.runtime.device, read_dist_env());  // GPU LOCAL_RANK in a multi-process job
  const auto classifiers = rewards::sequence_classifier_factory(load, data::tokenize_options(cfg.data), max_sequences);
  const auto rankers = rewards::t5_pairwise_factory(load);
  set_ = std::make_unique<rewards::RewardSet>(chosen, [classifiers, rankers](const config::RewardSourceOptions& o) {
    return o.type == "t5-pairwise" ? rankers(o) : classifiers(o);
  });
  for (const auto& s : chosen.sources) {
    if (s.type == "hf-seq-cls") spdlog::info("reward model '{}' from {}", s.name, s.path);
    if (s.type == "t5-pairwise") spdlog::info("pairwise ranker '{}' from {} (labels)", s.name, s.path);
  }
  for (const auto& name : order_) {
    const auto* s = chosen.find(name);
    if (!config::is_label_source(*s)) continue;
    label_sources_.push_back(name);
    if (!s->matrix_field.empty()) matrix_fields_[name] = s->matrix_field;
  }
}

Scorer::~Scorer() = default;

bool Scorer::is_label_source(const std::string& name) const {
  return std::find(label_sources_.begin(), label_sources_.end(), name) != label_sources_.end();
}

Scores Scorer::score(const std::vector<data::CandidateList>& lists) {
  Scores out;
  if (!set_) return out;
  out.values = set_->score(lists);
  out.label_sources = label_sources_;
  for (const auto& [name, field] : matrix_fields_) out.matrices[name] = {field, set_->last_matrices(name)};
  return out;
}

data::CandidateList scoring_list(const data::CandidateList& list, std::vector<std::string> texts,
                                 std::vector<std::vector<std::int64_t>> ids) {
  data::CandidateList out;
  out.id = list.id;
  out.prompt = list.prompt;
  out.input = list.input;
  out.system = list.system;
  if (list.prompt.empty()) out.prompt_ids = list.prompt_ids;
  if (ids.empty())
    out.responses = std::move(texts);
  else
    out.responses_ids = std::move(ids);
  out.format = list.format;
  out.raw = list.raw;
  out.file = list.file;
  out.line = list.line;
  return out;
}

void set_field(nlohmann::json& record, const data::CandidateList& list, const std::string& field,
               nlohmann::json value, bool overwrite) {
  if (record.contains(field) && !overwrite)
    throw DataError(str(list.where(), ": field '", field, "' is already there; pass --overwrite to replace it"));
  record[field] = std::move(value);
}

void annotate_rewards(std::vector<nlohmann::json>& records, const std::vector<data::CandidateList>& lists,
                      const std::vector<std::string>& order, const Scores& scores, bool overwrite) {
  const auto is_label = [&](const std::string& name) {
    return std::find(scores.label_sources.begin(), scores.label_sources.end(), name) != scores.label_sources.end();
  };
  const auto labels = static_cast<std::size_t>(std::count_if(order.begin(), order.end(), is_label));
  const std::size_t rewards = order.size() - labels;
  bool first_reward = true, first_label = true;
  for (const auto& name : order) {
    const bool label = is_label(name);
    const std::string field = label ? "labels" : "rewards";
    const bool several = (label ? labels : rewards) > 1;
    const bool first = label ? first_label : first_reward;
    (label ? first_label : first_reward) = false;
    const auto& table = scores.at(name);
    const auto matrices = scores.matrices.find(name);
    for (std::size_t b = 0; b < records.size(); ++b) {
      if (several) set_field(records[b], lists[b], field + "_" + name, table[b], overwrite);
      if (first) set_field(records[b], lists[b], field, table[b], overwrite);
      if (matrices != scores.matrices.end())
        set_field(records[b], lists[b], matrices->second.first, matrices->second.second.at(b), overwrite);
    }
  }
}

}  // namespace lire::cli

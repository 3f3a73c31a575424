// Rule reward sources and the reward set (see the header).
#include "lire/rewards/reward_source.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include "lire/core/error.h"

namespace lire::rewards {
namespace {

const std::string& response_text(const data::CandidateList& list, std::size_t i, const std::string& source) {
  if (list.responses.size() <= i)
    throw DataError(str(list.where(), ": reward source '", source,
                        "' reads response texts, and this list has only token ids"));
  return list.responses[i];
}

std::size_t utf8_length(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The reference answers of a list: field `field` of its record, a string or a
// non-empty list of strings.
std::vector<std::string> reference_answers(const data::CandidateList& list, const std::string& field,
                                           const std::string& source, const std::string& type) {
  std::vector<std::string> refs;
  const auto it = list.raw.find(field);
  if (it == list.raw.end())
    throw DataError(str(list.where(), ": reward source '", source, "' (", type, ") needs field '", field,
                        "' in the record"));
  if (it->is_string()) {
    refs.push_back(it->get<std::string>());
  } else if (it->is_array() && !it->empty()) {
    for (const auto& r : *it) {
      if (!r.is_string())
        throw DataError(str(list.where(), ": field '", field, "' must hold strings (reward source '", source, "')"));
      refs.push_back(r.get<std::string>());
    }
  } else {
    throw DataError(str(list.where(), ": field '", field, "' must be a string or a non-empty list of strings "
                                      "(reward source '", source, "')"));
  }
  return refs;
}

class ExactMatch : public RewardSource {
 public:
  explicit ExactMatch(const config::RewardSourceOptions& o)
      : RewardSource(o.name), field_(o.field), normalize_(o.normalize) {}
  ListRewards score(const std::vector<data::CandidateList>& lists) override {
    ListRewards out;
    for (const auto& list : lists) {
      auto refs = reference_answers(list, field_, name(), "exact-match");
      for (auto& r : refs) r = normalize_answer(r, normalize_);
      std::vector<double> row;
      for (std::size_t i = 0; i < list.size(); ++i) {
        const auto answer = normalize_answer(response_text(list, i, name()), normalize_);
        row.push_back(std::find(refs.begin(), refs.end(), answer) != refs.end() ? 1.0 : 0.0);
      }
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  std::string field_;
  bool normalize_;
};

class RougeL : public RewardSource {
 public:
  explicit RougeL(const config::RewardSourceOptions& o)
      : RewardSource(o.name), field_(o.field), normalize_(o.normalize) {}
  ListRewards score(const std::vector<data::CandidateList>& lists) override {
    ListRewards out;
    for (const auto& list : lists) {
      const auto refs = reference_answers(list, field_, name(), "rouge-l");
      std::vector<double> row;
      for (std::size_t i = 0; i < list.size(); ++i) {
        const auto& answer = response_text(list, i, name());
        double best = 0;
        for (const auto& r : refs) best = std::max(best, rouge_l_f1(answer, r, normalize_));
        row.push_back(best);
      }
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  std::string field_;
  bool normalize_;
};

std::vector<std::string> whitespace_tokens(const std::string& text, bool lowercase) {
  std::vector<std::string> out;
  std::string token;
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      if (!token.empty()) out.push_back(std::move(token));
      token.clear();
    } else {
      token.push_back(lowercase ? static_cast<char>(std::tolower(c)) : static_cast<char>(c));
    }
  }
  if (!token.empty()) out.push_back(std::move(token));
  return out;
}

class RegexMatch : public RewardSource {
 public:
  explicit RegexMatch(const config::RewardSourceOptions& o)
      : RewardSource(o.name), pattern_(o.pattern, std::regex::ECMAScript), full_(o.full_match) {}
  ListRewards score(const std::vector<data::CandidateList>& lists) override {
    ListRewards out;
    for (const auto& list : lists) {
      std::vector<double> row;
      for (std::size_t i = 0; i < list.size(); ++i) {
        const auto& text = response_text(list, i, name());
        row.push_back((full_ ? std::regex_match(text, pattern_) : std::regex_search(text, pattern_)) ? 1.0 : 0.0);
      }
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  std::regex pattern_;
  bool full_;
};

class LengthWindow : public RewardSource {
 public:
  explicit LengthWindow(const config::RewardSourceOptions& o)
      : RewardSource(o.name), min_(o.min_chars), max_(o.max_chars) {}
  ListRewards score(const std::vector<data::CandidateList>& lists) override {
    ListRewards out;
    for (const auto& list : lists) {
      std::vector<double> row;
      for (std::size_t i = 0; i < list.size(); ++i) {
        const auto n = static_cast<std::int64_t>(utf8_length(response_text(list, i, name())));
        row.push_back(n >= min_ && (max_ == 0 || n <= max_) ? 1.0 : 0.0);
      }
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  std::int64_t min_, max_;
};

}  // namespace

const ListMatrices& RewardSource::last_matrices() const {
  static const ListMatrices none;
  return none;
}

std::string normalize_answer(const std::string& text, bool normalize) {
  if (!normalize) return text;
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(c)));
  }
  return out;
}

std::size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  // Row-by-row dynamic programme: prev[j] = LCS(a[0..i), b[0..j)).
  std::vector<std::size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = 0; j < b.size(); ++j)
      cur[j + 1] = a[i] == b[j] ? prev[j] + 1 : std::max(prev[j + 1], cur[j]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

double rouge_l_f1(const std::string& response, const std::string& reference, bool normalize) {
  const auto r = whitespace_tokens(response, normalize);
  const auto ref = whitespace_tokens(reference, normalize);
  if (r.empty() || ref.empty()) return r.empty() && ref.empty() ? 1.0 : 0.0;
  const auto lcs = static_cast<double>(lcs_length(r, ref));
  if (lcs == 0) return 0.0;
  const double precision = lcs / static_cast<double>(r.size());
  const double recall = lcs / static_cast<double>(ref.size());
  return 2 * precision * recall / (precision + recall);
}

std::unique_ptr<RewardSource> make_rule_source(const config::RewardSourceOptions& o) {
  if (o.type == "exact-match") return std::make_unique<ExactMatch>(o);
  if (o.type == "rouge-l") return std::make_unique<RougeL>(o);
  if (o.type == "regex") return std::make_unique<RegexMatch>(o);
  if (o.type == "length") return std::make_unique<LengthWindow>(o);
  throw ConfigError(str("rewards.", o.name, ": '", o.type, "' is not a rule reward source"));
}

RewardSet::RewardSet(const config::RewardsOptions& options, const ModelRewardFactory& models) : options_(options) {
  for (const auto& s : options_.sources) {
    if (s.type == "ensemble") continue;
    if (s.type == "hf-seq-cls" || s.type == "t5-pairwise") {
      if (!models) throw ConfigError(str("rewards.", s.name, ": ", s.type, " reward models are not available here"));
      sources_[s.name] = models(s);
    } else {
      sources_[s.name] = make_rule_source(s);
    }
  }
}

std::vector<std::string> RewardSet::names() const {
  std::vector<std::string> out;
  for (const auto& s : options_.sources) out.push_back(s.name);
  return out;
}

const ListMatrices& RewardSet::last_matrices(const std::string& name) const {
  const auto it = sources_.find(name);
  if (it != sources_.end()) return it->second->last_matrices();
  static const ListMatrices none;
  return none;
}

std::map<std::string, ListRewards> RewardSet::score(const std::vector<data::CandidateList>& lists) {
  std::map<std::string, ListRewards> out;
  for (auto& [name, source] : sources_) out[name] = source->score(lists);
  for (const auto& s : options_.sources) {
    if (s.type != "ensemble") continue;
    double total = 0;
    for (const auto& m : s.weights) total += m.second;
    ListRewards mixed(lists.size());
    for (std::size_t l = 0; l < lists.size(); ++l) {
      mixed[l].assign(lists[l].size(), 0.0);
      for (const auto& [member, weight] : s.weights)
        for (std::size_t i = 0; i < lists[l].size(); ++i) mixed[l][i] += weight / total * out.at(member)[l][i];
    }
    out[s.name] = std::move(mixed);
  }
  return out;
}

}  // namespace lire::rewards

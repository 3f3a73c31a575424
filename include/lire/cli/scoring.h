// Reward scoring as the commands do it (lire-score, lire-sample, lire-eval):
// the sources named from the config's `rewards` section plus the reward-model
// folders given on the command line (--reward-model [NAME=]DIR, each an
// hf-seq-cls source), scored together, written into records as
//   rewards          the first reward source's rewards (what the trainer reads)
//   rewards_<name>   every reward source's rewards, when there are several
//   labels           the first label source's labels (t5-pairwise: LiPO's psi
//                    in [0, 1], for loss.label_transform: none)
//   labels_<name>    every label source's labels, when there are several
//   <matrix_field>   a label source's K x K preference matrices, when set.
// "First" is in the order the sources were named.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "lire/config/config.h"
#include "lire/data/candidate_list.h"
#include "lire/rewards/reward_source.h"

namespace lire::cli {

struct RewardModelSpec {
  std::string name, folder;
};

// "[NAME=]DIR": NAME defaults to DIR's last component. Throws for an empty part
// or a NAME with characters other than letters, digits, '_', '-', '.'.
RewardModelSpec parse_reward_model(const std::string& spec);

// What Scorer::score returns for a batch of lists.
struct Scores {
  // name -> [list][response]: rewards, or labels for label sources.
  std::map<std::string, rewards::ListRewards> values;
  // Names of the label sources (config::is_label_source) among them.
  std::vector<std::string> label_sources;
  // name -> (record field, [list] K x K matrices) of label sources with a matrix_field.
  std::map<std::string, std::pair<std::string, rewards::ListMatrices>> matrices;

  const rewards::ListRewards& at(const std::string& name) const { return values.at(name); }
};

class Scorer {
 public:
  // `names`: sources of cfg.rewards, in order (duplicates dropped); `reward_models`:
  // "[NAME=]DIR" specs, added after them. Models load here, so a bad folder
  // fails before any output is written. Two sources with one name are an error.
  Scorer(const config::Config& cfg, const std::vector<std::string>& names,
         const std::vector<std::string>& reward_models, int64_t max_sequences);
  ~Scorer();

  bool empty() const { return order_.empty(); }
  // Whether source `name` gives labels (a pair model's preference
  // probabilities, config::is_label_source) rather than rewards.
  bool is_label_source(const std::string& name) const;
  // Source names in output order.
  const std::vector<std::string>& names() const { return order_; }
  // name -> [list][response], with the label sources' matrices.
  Scores score(const std::vector<data::CandidateList>& lists);

 private:
  std::vector<std::string> order_;
  std::vector<std::string> label_sources_;
  std::map<std::string, std::string> matrix_fields_;  // label source -> matrix_field
  std::unique_ptr<rewards::RewardSet> set_;
};

// Writes `scores` into record b, sources in `order`, as the file comment says:
// reward sources into "rewards" and "rewards_<name>", label sources into
// "labels", "labels_<name>" and their matrix fields. A field the record
// already has is a DataError naming lists[b] unless `overwrite`.
void annotate_rewards(std::vector<nlohmann::json>& records, const std::vector<data::CandidateList>& lists,
                      const std::vector<std::string>& order, const Scores& scores, bool overwrite);

// What the reward sources read for `list` with new responses: its prompt (the
// text when it has one, so reward models encode it with their own tokenizer;
// else its prompt_ids), its record (fields such as reference answers) and the
// responses as `texts`, or as token ids when `ids` is non-empty.
data::CandidateList scoring_list(const data::CandidateList& list, std::vector<std::string> texts,
                                 std::vector<std::vector<std::int64_t>> ids);

// Sets record[field] = value; an existing field is a DataError naming `list` unless `overwrite`.
void set_field(nlohmann::json& record, const data::CandidateList& list, const std::string& field,
               nlohmann::json value, bool overwrite);

}  // namespace lire::cli

// Ranking metrics every loss reports, as (sum, count) pairs so that they add
// up exactly over micro-batches and ranks. Never NaN, never throwing:
//   pair_accuracy        over valid pairs (both valid, label_i > label_j): 1 when
//                        score_i > score_j, 0.5 on a score tie, else 0
//   ndcg                 per list with a positive ideal DCG: DCG of the order by
//                        score (ties by index) over the ideal DCG, gains 2^label - 1,
//                        discount 1/log2(1 + rank)
//   margin               per list with a candidate labelled below its best (first
//                        best by index): mean of score_best - score_j over those j
//   valid_pair_fraction  valid pairs over all pairs of valid candidates
#pragma once

#include <map>
#include <string>

#include <torch/types.h>

#include "lire/losses/registry.h"

namespace lire::losses {

std::map<std::string, Metric> ranking_metrics(const torch::Tensor& scores, const torch::Tensor& labels,
                                              const torch::Tensor& mask);

}  // namespace lire::losses

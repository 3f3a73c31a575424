// Evaluates a loss over scored lists in padded batches, combining batches
// exactly (sums of numerators and denominators, and of metric sums and counts).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lire/data/scored_list.h"
#include "lire/losses/registry.h"

namespace lire::losses {

struct LossReport {
  std::string loss_name;
  double loss = 0.0;                         // combined over all batches
  double numerator = 0.0, denominator = 0.0;
  std::map<std::string, double> metrics;     // metric values (sum / count over all batches)
  std::map<std::string, double> counts;      // what each metric averaged over
  std::int64_t lists = 0;
};

// Pads lists [begin, end) into one LossInput (float64, on `device`).
LossInput make_loss_input(const std::vector<data::ScoredList>& lists, std::size_t begin, std::size_t end,
                          const std::string& device = "cpu");

LossReport evaluate(const Loss& loss, const std::vector<data::ScoredList>& lists, std::int64_t batch_size,
                    const std::string& device = "cpu");

}  // namespace lire::losses

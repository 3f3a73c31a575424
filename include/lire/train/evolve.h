// LIRE's self-enhancement (Algorithm 1) as one lire-train run: for e = 1..E,
// sample evolve.samples responses per prompt of data.train with the current
// policy, score them with evolve.rewards, write the pool to
// <run>/evolve-<e>/pool.jsonl, train evolve.iterate epochs on it (any loss,
// LoRA or full) in <run>/evolve-<e>/, and continue from that step's last
// checkpoint. Each step adds a line to <run>/metrics.jsonl (evolve/step,
// evolve/mean_reward, ...); <run>/final/ is the last step's final/.
//
// Resumable anywhere: a finished pool, eval file or step is kept; a pool being
// written continues from its .partial file (the same responses, as sampling
// streams are keyed by prompt), a step being trained from its newest
// checkpoint. docs/training.md#evolve.
#pragma once

#include "lire/train/trainer.h"

namespace lire::train {

TrainResult evolve(const TrainJob& job);

// The config of step `e`'s training run: data.train is `pool`, train.epochs is
// evolve.iterate, runtime.seed is offset by the step, evolve is off.
config::Config evolve_step_config(const config::Config& config, std::int64_t e, const std::string& pool);

}  // namespace lire::train

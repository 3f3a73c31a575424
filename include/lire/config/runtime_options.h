// The `runtime` config section: where and how a command runs.
#pragma once

#include <cstdint>
#include <string>

namespace lire::config {

class SectionReader;

struct RuntimeOptions {
  // LibTorch intra-op threads; 0 = all cores available to the process.
  int threads = 0;
  // "auto" (cuda when available, else cpu), "cpu", "cuda" or "cuda:N".
  std::string device = "auto";
  // Seed of the global generators (torch, and every sampler that has none of its own).
  std::int64_t seed = 1234;
  // Multi-process jobs (train/process_group.h): how long a rendezvous or a
  // collective waits for the other ranks before failing with a clear error.
  double dist_timeout_s = 600.0;
};

RuntimeOptions read_runtime_options(SectionReader& reader);

}  // namespace lire::config

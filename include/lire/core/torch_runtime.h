// Process-wide LibTorch settings taken from the `runtime` config section:
// intra-op threads (LibTorch here defaults to one), seed, and device.
#pragma once

#include <string>

#include "lire/config/runtime_options.h"

namespace c10 {
struct Device;
}

namespace lire {

// Number of cores this process may run on (sched affinity, else hardware).
int available_cores();

// Sets LibTorch's intra-op thread count (0 = available_cores()), seeds the
// global generators, and checks the device is usable. Returns the thread count.
int apply_runtime(const config::RuntimeOptions& options);

// The device runtime.device names: "auto" is cuda when available, else cpu.
c10::Device resolve_device(const std::string& device);

// "LibTorch 1.13.0 (CPU)" or "LibTorch 2.4.0 (CUDA 12.1, 1 device)".
std::string torch_description();

}  // namespace lire

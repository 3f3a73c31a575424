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

// Keeps the memory of freed CPU tensors in the process for the next ones
// (glibc: blocks up to 32 MiB from the heap rather than fresh mappings, and
// the heap never trimmed). LibTorch mallocs every CPU tensor and frees it
// with its last reference; with glibc's defaults a training step then
// touches fresh pages for a large share of its tensors, each 4 KiB page a
// fault that costs about 2.5 us on the 2-core VM: some 30,000 (80 ms) a
// step of the 134M benchmark. Peak memory does not grow (it fell slightly
// there); memory freed after the peak goes back to the system only at exit.
// Does nothing when GLIBC_TUNABLES sets malloc options, or without glibc.
void keep_freed_memory();

// Sets LibTorch's intra-op thread count (0 = available_cores()), seeds the
// global generators, and checks the device is usable (keep_freed_memory()
// first). Returns the thread count.
int apply_runtime(const config::RuntimeOptions& options);

// The device runtime.device names: "auto" is cuda when available, else cpu.
c10::Device resolve_device(const std::string& device);

// "LibTorch 1.13.0 (CPU)" or "LibTorch 2.4.0 (CUDA 12.1, 1 device)".
std::string torch_description();

}  // namespace lire

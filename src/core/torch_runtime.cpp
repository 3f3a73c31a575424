#include "lire/core/torch_runtime.h"

#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <torch/torch.h>
#include <torch/version.h>

#include "lire/core/error.h"

namespace lire {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

c10::Device resolve_device(const std::string& device) {
  if (device == "auto") return torch::cuda::is_available() ? c10::Device(torch::kCUDA, 0) : c10::Device(torch::kCPU);
  c10::Device d(torch::kCPU);
  try {
    d = c10::Device(device);
  } catch (const std::exception&) {
    throw ConfigError(str("runtime.device: '", device, "' is not a device (auto, cpu, cuda, cuda:N)"));
  }
  if (d.is_cuda()) {
    if (!torch::cuda::is_available())
      throw ConfigError(str("runtime.device: '", device, "' asked for CUDA, but this LibTorch build (",
                            torch_description(), ") sees no CUDA device"));
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (d.has_index() && d.index() >= count)
      throw ConfigError(str("runtime.device: '", device, "' but only ", count, " CUDA device(s) are visible"));
  }
  return d;
}

void keep_freed_memory() {
#ifdef __GLIBC__
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && std::strstr(tunables, "glibc.malloc.")) return;  // the user's own settings
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest: bigger blocks are still their own mappings
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
    mallopt(M_TOP_PAD, 64 << 20);
    return true;
  }();
  (void)done;
#endif
}

int apply_runtime(const config::RuntimeOptions& options) {
  keep_freed_memory();
  const int threads = options.threads > 0 ? options.threads : available_cores();
  torch::set_num_threads(threads);
  torch::manual_seed(static_cast<uint64_t>(options.seed));
  resolve_device(options.device);
  return threads;
}

std::string torch_description() {
  std::string s = str("LibTorch ", TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR, ".", TORCH_VERSION_PATCH);
  if (torch::cuda::is_available()) {
    s += str(" (CUDA, ", torch::cuda::device_count(), " device(s))");
  } else {
    s += " (CPU)";
  }
  return s;
}

}  // namespace lire

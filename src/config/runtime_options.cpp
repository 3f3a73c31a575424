// The `runtime` section: threads, device and seed.
#include "lire/config/runtime_options.h"

#include <limits>

#include "lire/config/section_reader.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"

namespace lire::config {
namespace {

// "cuda:N" with N a GPU index written as torch does (no sign, no leading zeros).
bool is_cuda_index(const std::string& device) {
  const std::string prefix = "cuda:";
  if (device.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string index = device.substr(prefix.size());
  if (index.empty() || index.size() > 6) return false;
  if (index.size() > 1 && index[0] == '0') return false;
  for (char c : index)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

RuntimeOptions read_runtime_options(SectionReader& reader) {
  RuntimeOptions o;
  o.threads = static_cast<int>(reader.integer("threads", o.threads, 0, std::numeric_limits<int>::max()));
  o.device = reader.string("device", o.device);
  if (o.device != "auto" && o.device != "cpu" && o.device != "cuda" && !is_cuda_index(o.device)) {
    reader.fail("device", str("must be auto, cpu, cuda or cuda:N (N a GPU index), got '", o.device, "'",
                              did_you_mean(o.device, {"auto", "cpu", "cuda"})));
  }
  o.seed = reader.integer("seed", o.seed);
  o.dist_timeout_s = reader.number("dist_timeout_s", o.dist_timeout_s, NumberRange::positive());
  reader.finish();
  return o;
}

}  // namespace lire::config

// The launcher's environment (see the header).
#include "lire/core/dist_env.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <limits>

#include "lire/core/error.h"

namespace lire {
namespace {

// The integer value of variable `name`, or `fallback` when unset.
long integer_var(const std::function<const char*(const char*)>& get, const char* name, long fallback, bool* set) {
  const char* v = get(name);
  if (set) *set = v != nullptr && *v != '\0';
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || value < 0 || value > std::numeric_limits<int>::max())
    throw ConfigError(str("environment variable ", name, "='", v, "': expected a non-negative integer"));
  return value;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  if (nodelist.empty()) throw ConfigError("SLURM_JOB_NODELIST is empty");
  // The first entry ends at a comma outside brackets.
  std::string entry;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0 || depth > 1) break;
    if (c == ',' && depth == 0) break;
    entry += c;
  }
  const auto open = entry.find('[');
  if (open == std::string::npos) {
    if (entry.empty() || depth != 0) throw ConfigError(str("SLURM_JOB_NODELIST='", nodelist, "': malformed"));
    return entry;
  }
  const auto close = entry.find(']', open);
  if (close == std::string::npos || depth != 0)
    throw ConfigError(str("SLURM_JOB_NODELIST='", nodelist, "': unbalanced brackets"));
  // The first number of the range list: "03-05,9" -> "03".
  std::string first;
  for (std::size_t i = open + 1; i < close && std::isdigit(static_cast<unsigned char>(entry[i])); ++i) first += entry[i];
  if (first.empty()) throw ConfigError(str("SLURM_JOB_NODELIST='", nodelist, "': expected a number after '['"));
  return entry.substr(0, open) + first + entry.substr(close + 1);
}

DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv_fn) {
  const auto get = getenv_fn ? getenv_fn : [](const char* name) -> const char* { return std::getenv(name); };
  DistEnv env;
  bool has_rank = false, has_world = false, has_slurm = false;
  const long rank = integer_var(get, "RANK", 0, &has_rank);
  const long world = integer_var(get, "WORLD_SIZE", 1, &has_world);
  if (has_rank || has_world) {
    if (has_rank != has_world)
      throw ConfigError(has_rank ? "environment variable RANK is set but WORLD_SIZE is not"
                                 : "environment variable WORLD_SIZE is set but RANK is not");
    env.rank = static_cast<int>(rank);
    env.world_size = static_cast<int>(world);
    env.local_rank = static_cast<int>(integer_var(get, "LOCAL_RANK", rank, nullptr));
    env.launcher = "torchrun";
  } else {
    const long procid = integer_var(get, "SLURM_PROCID", 0, &has_slurm);
    if (has_slurm) {
      env.rank = static_cast<int>(procid);
      env.world_size = static_cast<int>(integer_var(get, "SLURM_NTASKS", 1, nullptr));
      env.local_rank = static_cast<int>(integer_var(get, "SLURM_LOCALID", 0, nullptr));
      env.launcher = "slurm";
      if (!get("MASTER_ADDR")) {
        const char* nodes = get("SLURM_JOB_NODELIST");
        if (!nodes) nodes = get("SLURM_NODELIST");
        if (!nodes)
          throw ConfigError("SLURM_PROCID is set but neither SLURM_JOB_NODELIST nor MASTER_ADDR is: "
                            "the rendezvous host is unknown");
        env.master_addr = first_slurm_host(nodes);
      }
    }
  }
  if (env.world_size < 1) throw ConfigError("environment variable WORLD_SIZE (or SLURM_NTASKS) must be >= 1");
  if (env.rank >= env.world_size)
    throw ConfigError(str("rank ", env.rank, " is outside [0, ", env.world_size, ") (", env.launcher == "slurm" ? "SLURM_PROCID" : "RANK",
                          " vs ", env.launcher == "slurm" ? "SLURM_NTASKS" : "WORLD_SIZE", ")"));
  if (const char* addr = get("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  const long port = integer_var(get, "MASTER_PORT", env.master_port, nullptr);
  if (port < 1 || port > 65535) throw ConfigError(str("environment variable MASTER_PORT=", port, ": expected 1..65535"));
  env.master_port = static_cast<int>(port);
  return env;
}

}  // namespace lire

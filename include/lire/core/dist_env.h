// Where this process stands in a multi-process job, read from the environment
// the launchers set: torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT) or SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and the
// first host of SLURM_JOB_NODELIST; MASTER_ADDR / MASTER_PORT still win when
// set). Neither: a single process (rank 0 of 1). No torch here: the process
// group itself is train/process_group.h.
#pragma once

#include <functional>
#include <string>

namespace lire {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;   // torchrun's default
  std::string launcher = "none";  // "torchrun", "slurm" or "none"

  bool distributed() const { return world_size > 1; }
};

// Reads the variables through `getenv` (std::getenv by default; tests pass a
// map). Throws ConfigError naming the variable for a value that is not an
// integer, a rank outside [0, WORLD_SIZE), RANK without WORLD_SIZE (or the
// reverse), a port outside 1..65535, or a SLURM job without a node list.
DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv = {});

// The first host of a SLURM node list: "gpu[03-05,9],cpu1" -> "gpu03",
// "node7,node8" -> "node7", "a-[1-2]-x" -> "a-1-x" (zero padding kept).
// Throws ConfigError for an empty or malformed list.
std::string first_slurm_host(const std::string& nodelist);

}  // namespace lire

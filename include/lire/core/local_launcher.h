// `lire-train --nproc N`: a one-machine stand-in for torchrun. The command
// re-executes itself N times with torchrun's variables set (RANK = LOCAL_RANK
// = i, WORLD_SIZE = N, MASTER_ADDR = 127.0.0.1, MASTER_PORT = a free port
// unless MASTER_PORT is set) and waits for all of them. SIGTERM and SIGINT
// sent to the launcher are passed on to every rank. When one rank exits
// non-zero its exit code is returned; the others are killed (SIGKILL: they
// would wait for the dead rank), unless it exited 128 + SIGTERM/SIGINT (a
// rank that stopped on a signal: the others stop at the same step).
#pragma once

#include <string>
#include <vector>

namespace lire {

// `args` is the command line without the --nproc option (args[0] is ignored:
// the running executable is started again). Throws ConfigError for nproc < 1,
// or when RANK / WORLD_SIZE are already set (a rank of another launcher).
int launch_local_ranks(int nproc, const std::vector<std::string>& args);

// A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous started next).
int free_local_port();

}  // namespace lire

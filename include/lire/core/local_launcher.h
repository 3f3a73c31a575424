// `lire-train --nproc N`: a one-machine stand-in for torchrun. The command
// re-executes itself N times with torchrun's variables set (RANK = LOCAL_RANK
// = i, WORLD_SIZE = N, MASTER_ADDR = 127.0.0.1, MASTER_PORT = a free port
// unless MASTER_PORT is set) and waits for all of them. SIGTERM and SIGINT
// sent to the launcher are passed on to every rank. When one rank exits
// non-zero its exit code is returned; the others are killed (SIGKILL: they
// would wait for the dead rank), unless it exited 128 + SIGTERM/SIGINT (a
// rank that stopped on a signal: the others stop at the same step).
//
// Ranks failing together (a bad config or data file fails every rank) would
// print the same error N times: each rank writes its error line to the file
// LIRE_ERROR_FILE names instead (report_error_line), and the launcher prints
// each distinct line once, in rank order, after every rank has exited.
#pragma once

#include <string>
#include <vector>

namespace lire {

// `args` is the command line without the --nproc option (args[0] is ignored:
// the running executable is started again). Throws ConfigError for nproc < 1,
// or when RANK / WORLD_SIZE are already set (a rank of another launcher).
int launch_local_ranks(int nproc, const std::vector<std::string>& args);

// Writes a command's final error line ("lire-train: error: ...") to stderr,
// or, in a rank started by launch_local_ranks, to its LIRE_ERROR_FILE (falling
// back to stderr when that cannot be written).
void report_error_line(const std::string& line);

// A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous started next).
int free_local_port();

}  // namespace lire

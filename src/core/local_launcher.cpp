// The local launcher (see the header).
#include "lire/core/local_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "lire/core/error.h"

extern char** environ;

namespace lire {
namespace {

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// SIGTERM / SIGINT received by the launcher, to be passed on to the ranks.
volatile std::sig_atomic_t g_forward = 0;
extern "C" void on_launcher_signal(int signal) { g_forward = signal; }

}  // namespace

void report_error_line(const std::string& line) {
  if (const char* file = std::getenv("LIRE_ERROR_FILE"); file && *file) {
    std::ofstream out(file, std::ios::app);
    out << line << '\n';
    out.flush();
    if (out) return;
  }
  std::cerr << line << std::endl;
}

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("cannot open a socket to find a free port on 127.0.0.1");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw Error("cannot find a free port on 127.0.0.1 (set MASTER_PORT)");
  return ntohs(addr.sin_port);
}

int launch_local_ranks(int nproc, const std::vector<std::string>& args) {
  if (nproc < 1) throw ConfigError(str("--nproc must be >= 1, got ", nproc));
  if (std::getenv("RANK") || std::getenv("WORLD_SIZE"))
    throw ConfigError("--nproc starts its own ranks, and RANK/WORLD_SIZE are already set (by torchrun?): use one "
                      "launcher");
  const char* port_env = std::getenv("MASTER_PORT");
  const std::string port = port_env && *port_env ? std::string(port_env) : std::to_string(free_local_port());
  const char* addr_env = std::getenv("MASTER_ADDR");
  const std::string addr = addr_env && *addr_env ? std::string(addr_env) : "127.0.0.1";

  std::vector<std::string> argv_strings = args;
  if (argv_strings.empty()) argv_strings.push_back("lire");
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  // SIGTERM / SIGINT go on to every rank (lire-train's ranks stop together at
  // a step boundary with a checkpoint); no SA_RESTART, so that waitpid wakes.
  // A spawned rank starts with the default handlers (exec resets caught ones).
  struct sigaction action {}, old_term{}, old_int{};
  action.sa_handler = on_launcher_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, &old_term);
  sigaction(SIGINT, &action, &old_int);
  g_forward = 0;
  // Where the ranks write their error lines (printed once each below).
  std::string errors_dir = (std::filesystem::temp_directory_path() / "lire-ranks-XXXXXX").string();
  if (!::mkdtemp(errors_dir.data())) errors_dir.clear();  // then the ranks print their errors themselves
  const auto error_file = [&](int rank) { return errors_dir + "/rank-" + std::to_string(rank) + ".err"; };
  std::map<pid_t, int> running;  // pid -> rank
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> env = {"RANK=" + std::to_string(rank), "LOCAL_RANK=" + std::to_string(rank),
                                     "WORLD_SIZE=" + std::to_string(nproc), "MASTER_ADDR=" + addr,
                                     "MASTER_PORT=" + port};
    for (char** e = environ; *e; ++e) {
      const std::string s = *e;
      if (s.rfind("RANK=", 0) && s.rfind("LOCAL_RANK=", 0) && s.rfind("WORLD_SIZE=", 0) &&
          s.rfind("MASTER_ADDR=", 0) && s.rfind("MASTER_PORT=", 0))
        env.push_back(s);
    }
    if (!errors_dir.empty()) env.push_back("LIRE_ERROR_FILE=" + error_file(rank));
    std::vector<char*> envp;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data()) != 0) {
      for (const auto& [p, r] : running) ::kill(p, SIGKILL);
      for (const auto& [p, r] : running) ::waitpid(p, nullptr, 0);
      sigaction(SIGTERM, &old_term, nullptr);
      sigaction(SIGINT, &old_int, nullptr);
      throw Error(str("--nproc: cannot start rank ", rank));
    }
    running[pid] = rank;
  }
  int result = 0;
  while (!running.empty()) {
    if (const int signal = g_forward) {
      g_forward = 0;
      for (const auto& [p, r] : running) ::kill(p, signal);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    running.erase(it);
    const int code = exit_code(status);
    if (code != 0 && result == 0) {
      result = code;
      // A rank stopped by SIGTERM/SIGINT (exit 128 + signal): the others stop
      // at the same step and exit by themselves. Any other failure: the
      // others would only wait for the dead rank in a collective, and cannot
      // stop cleanly without it: SIGKILL (checkpoints are written atomically).
      const bool stopping = code == 128 + SIGTERM || code == 128 + SIGINT;
      if (!stopping)
        for (const auto& [p, r] : running) ::kill(p, SIGKILL);
    }
  }
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGINT, &old_int, nullptr);
  if (!errors_dir.empty()) {
    std::set<std::string> printed;
    for (int rank = 0; rank < nproc; ++rank) {
      std::ifstream in(error_file(rank));
      for (std::string line; std::getline(in, line);)
        if (printed.insert(line).second) std::cerr << line << std::endl;
    }
    std::error_code ignored;
    std::filesystem::remove_all(errors_dir, ignored);
  }
  return result;
}

}  // namespace lire

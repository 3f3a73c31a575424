#include "lire/cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace lire::cli {

Progress::Progress(std::string what, int64_t total, bool enabled, double log_every_s)
    : what_(std::move(what)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) == 1),
      log_every_s_(log_every_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n) {
  done_ += n;
  if (!enabled_) return;
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_draw_).count();
  if (since >= (tty_ ? 0.2 : log_every_s_)) draw(false);
}

void Progress::finish() {
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  last_draw_ = std::chrono::steady_clock::now();
  const double t = elapsed_s();
  const double rate = t > 0 ? done_ / t : 0.0;
  char eta[32] = "?";
  if (rate > 0 && total_ > 0) std::snprintf(eta, sizeof eta, "%.0fs", (total_ - done_) / rate);
  char bar[32] = "";
  if (total_ > 0) {
    const int width = 24, filled = static_cast<int>(width * std::min<int64_t>(done_, total_) / total_);
    for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
  }
  std::fprintf(stderr, "%s%s [%s] %lld/%lld %.2f/s ETA %s%s", tty_ ? "\r" : "", what_.c_str(), bar,
               static_cast<long long>(done_), static_cast<long long>(total_), rate, final ? "0s" : eta,
               tty_ && !final ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace lire::cli

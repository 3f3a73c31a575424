// Progress on stderr for long jobs: done/total, rate, ETA. A bar redrawn in
// place on a terminal; a plain line every `log_every_s` seconds otherwise (logs).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lire::cli {

class Progress {
 public:
  Progress(std::string what, int64_t total, bool enabled = true, double log_every_s = 10.0);
  // Adds `n` done units; redraws at most every 0.2 s on a terminal.
  void advance(int64_t n = 1);
  // Final line (keeps the bar on a terminal).
  void finish();
  double elapsed_s() const;
  int64_t done() const { return done_; }

 private:
  void draw(bool final);
  std::string what_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_;
  double log_every_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lire::cli

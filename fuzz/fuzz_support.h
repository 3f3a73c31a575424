// Helpers shared by the fuzz targets: an invariant check that aborts (a
// finding, not an expected lire::Error) and a scratch file for parsers that
// read from a path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <unistd.h>

namespace lire::fuzz {

// A broken invariant of a parser's result: print it and abort, so that
// libFuzzer (and the replay driver) report the input as a crash.
#define LIRE_FUZZ_EXPECT(cond, what)                                                    \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

// With LIRE_FUZZ_VERBOSE=1 in the environment, the targets say what each
// step of an input gave ("ok" or the expected lire::Error), to see what a
// corpus file exercises.
inline bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("LIRE_FUZZ_VERBOSE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}
inline void note(const char* step, const std::exception& e) {
  if (verbose()) std::fprintf(stderr, "  %s: %s\n", step, e.what());
}
inline void note(const char* step) {
  if (verbose()) std::fprintf(stderr, "  %s: ok\n", step);
}

// A file holding the current input, for parsers that take a path. One per
// process (libFuzzer's -jobs/-fork run several processes), rewritten for
// every input, removed at exit.
class ScratchFile {
 public:
  explicit ScratchFile(const char* suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/lire-fuzz-" + std::to_string(::getpid()) + suffix;
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's content with data[0, size); aborts if it cannot (the
  // harness, not the parser, failed).
  const std::string& write(const uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    LIRE_FUZZ_EXPECT(f != nullptr, "cannot create the scratch file");
    const std::size_t written = size ? std::fwrite(data, 1, size, f) : 0;
    LIRE_FUZZ_EXPECT(written == size && std::fclose(f) == 0, "cannot write the scratch file");
    return path_;
  }

 private:
  std::string path_;
};

}  // namespace lire::fuzz

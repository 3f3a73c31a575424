// lire::Error: the one exception type library code throws for bad input or
// misuse. Its message names the file, line, key or tensor involved and what was
// expected; apps catch it in main, print one line and exit non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lire {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A configuration problem (unknown key, wrong type, out-of-range value).
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Bad data: malformed records, NaN rewards, mismatched lengths.
class DataError : public Error {
 public:
  using Error::Error;
};

// Concatenates its arguments with operator<< (numbers, strings, anything streamable).
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

}  // namespace lire

// Throws lire::Error (or the given subclass) built from the message parts when
// the condition is false. For user input and API misuse; never compiled out.
#define LIRE_CHECK(cond, ...)                     \
  do {                                            \
    if (!(cond)) throw ::lire::Error(::lire::str(__VA_ARGS__)); \
  } while (0)

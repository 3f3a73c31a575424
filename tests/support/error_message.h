// Test helper: the message of the exception a callable throws.
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace lire::testing {

// The message of the `E` that `fn` throws ("" and a test failure if it throws none).
template <typename E, typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

}  // namespace lire::testing

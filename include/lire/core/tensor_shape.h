// "[2,12,512]": a tensor's shape for error messages.
#pragma once

#include <string>

#include <torch/types.h>

namespace lire {

inline std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  return s + "]";
}

}  // namespace lire

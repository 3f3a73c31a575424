// Test helpers for the Hugging Face fixtures in tests/fixtures/hf (see its
// README): reference.json, arrays of reference.safetensors, token-id inputs.
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/io/safetensors.h"
#include "lire/models/weights.h"

namespace lire::testing {

// The device the "on the test device" tests run on: LIRE_TEST_DEVICE (cpu,
// cuda, cuda:N; scripts/gpu.sh sets cuda), cpu when unset.
inline torch::Device test_device() {
  const char* name = std::getenv("LIRE_TEST_DEVICE");
  return torch::Device(name && *name ? name : "cpu");
}

inline const std::string kHfFixtures = LIRE_TEST_FIXTURES "/hf";

inline nlohmann::json hf_reference(const std::string& model) {
  std::ifstream in(kHfFixtures + "/" + model + "/reference.json");
  return nlohmann::json::parse(in);
}

inline torch::Tensor hf_reference_array(const std::string& model, const std::string& name) {
  return io::SafetensorsFile::open(kHfFixtures + "/" + model + "/reference.safetensors")->tensor(name).clone();
}

// [[ids...], ...] as a [B,T] int64 tensor.
inline torch::Tensor ids_tensor(const nlohmann::json& rows) {
  std::vector<int64_t> flat;
  for (const auto& r : rows)
    for (const auto& v : r) flat.push_back(v.get<int64_t>());
  return torch::tensor(flat, torch::kLong).view({static_cast<int64_t>(rows.size()), -1});
}

// Max |a - b| over positions whose mask is 1 (a, b [B,T,...]).
inline double masked_max_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).index({mask.to(torch::kBool)}).abs().max().item<double>();
}

// Load options for CPU in `dtype`, optionally merging an adapter.
inline models::LoadOptions cpu_load(const std::string& dtype, const std::string& adapter = "") {
  models::LoadOptions o;
  o.dtype = dtype;
  o.device = "cpu";
  o.adapter = adapter;
  return o;
}

}  // namespace lire::testing

// Fuzz target: io::parse_safetensors_header, the parser of the untrusted
// header of a .safetensors file (8-byte length, JSON tensor table).
//
// The input is the start of a file. It is parsed twice:
//   1. as a whole file of `size` bytes;
//   2. when the length prefix N fits the input, as the start of a longer file
//      whose data section is exactly as long as the header's largest
//      data_offsets end says (found by a rough pre-scan of the JSON here).
//      The parser reads only [0, 8 + N), so the bytes past the input are never
//      touched (ASan would report it); this lets seeds be the header of a real
//      checkpoint without its megabytes of weights and still reach the
//      tiling checks.
// lire::Error is the expected outcome for bad input. A header that parses must
// satisfy what the parser promises (checked below): tensors sorted and tiling
// the data section, byte sizes matching shape and dtype.
#include <cstdint>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "lire/core/error.h"
#include "lire/io/safetensors_header.h"

namespace {

using lire::io::SafetensorsHeader;

void check(const SafetensorsHeader& header, uint64_t file_size) {
  LIRE_FUZZ_EXPECT(header.data_offset == 8 + header.header_size, "data_offset is 8 + N");
  LIRE_FUZZ_EXPECT(header.data_offset <= file_size, "the header lies inside the file");
  uint64_t cursor = 0;
  for (const auto& t : header.tensors) {
    LIRE_FUZZ_EXPECT(!t.name.empty(), "tensor names are not empty");
    LIRE_FUZZ_EXPECT(t.begin == cursor, "tensors tile the data section in order");
    LIRE_FUZZ_EXPECT(t.end >= t.begin, "begin <= end");
    const int64_t numel = t.numel();
    LIRE_FUZZ_EXPECT(numel >= 0, "numel is not negative");
    LIRE_FUZZ_EXPECT(static_cast<uint64_t>(numel) * lire::io::dtype_size(t.dtype) == t.byte_size(),
                     "byte size = numel * element size");
    for (const int64_t d : t.shape) LIRE_FUZZ_EXPECT(d >= 0, "dims are not negative");
    LIRE_FUZZ_EXPECT(header.find(t.name) != nullptr, "find() finds every tensor");
    cursor = t.end;
  }
  LIRE_FUZZ_EXPECT(cursor == file_size - header.data_offset, "the tensors cover the data section exactly");
}

void parse(const uint8_t* data, uint64_t file_size, const char* step) {
  try {
    const SafetensorsHeader header = lire::io::parse_safetensors_header(data, file_size, "fuzz.safetensors");
    check(header, file_size);
    lire::fuzz::note(step);
  } catch (const lire::Error& e) {
    lire::fuzz::note(step, e);  // expected for malformed input
  }
}

// The largest data_offsets end in the header JSON, or 0 (harness-side guess;
// the parser validates everything itself).
uint64_t largest_end(const char* begin, const char* end) {
  const nlohmann::json root = nlohmann::json::parse(begin, end, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return 0;
  uint64_t largest = 0;
  for (const auto& [key, value] : root.items()) {
    if (!value.is_object()) continue;
    const auto it = value.find("data_offsets");
    if (it == value.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_unsigned()) continue;
    largest = std::max(largest, (*it)[1].get<uint64_t>());
  }
  return largest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  parse(size ? data : nullptr, size, "whole input");
  if (size < 8) return 0;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > size - 8) return 0;
  const uint64_t data_size = largest_end(reinterpret_cast<const char*>(data) + 8,
                                         reinterpret_cast<const char*>(data) + 8 + n);
  if (data_size > std::numeric_limits<uint64_t>::max() - 8 - n) return 0;
  const uint64_t virtual_size = 8 + n + data_size;
  if (virtual_size != size) parse(data, virtual_size, "with a virtual data section");
  return 0;
}

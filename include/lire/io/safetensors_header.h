// The header of a safetensors file (Hugging Face's checkpoint format), parsed
// and validated as untrusted input. No LibTorch here: this lives in lire_core
// so that the parser is built and fuzzed under the sanitizers cheaply.
//
// Layout of a file:
//   [8 bytes: N, little-endian u64][N bytes: JSON header][data section]
// The JSON header is an object: "__metadata__" (optional, string -> string)
// and one entry per tensor, {"dtype": "F32", "shape": [2, 3],
// "data_offsets": [begin, end]} with byte offsets relative to the data
// section (which starts at 8 + N). Writers pad the header with trailing
// spaces so that 8 + N is a multiple of 8.
//
// parse_safetensors_header() checks everything the `safetensors` library
// checks, and a little more, against the file size before any tensor is
// touched: header length within the file and at most 100 MB; the header is a
// UTF-8 JSON object starting with '{' without duplicate keys; every entry has
// exactly dtype/shape/data_offsets; dtypes are ones lire supports; shapes are
// non-negative integers whose element count fits int64 without overflow;
// end - begin equals element count * element size; the tensors tile the data
// section exactly (no overlap, no hole, no trailing bytes after the last
// tensor). Every violation throws lire::Error naming the file, and the tensor
// when one is involved: "<file>: tensor '<name>': <reason>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lire::io {

// The element types lire reads and writes (the safetensors names are the
// enumerator names). Others of the format (U16, U32, U64, F8_*, C64...) are
// rejected with a clear error.
enum class Dtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// "F32" -> Dtype::F32; returns false for anything else (case-sensitive, as
// the format is).
bool parse_dtype(const std::string& text, Dtype* out);
// Dtype::F32 -> "F32".
const char* dtype_name(Dtype dtype);
// Bytes per element (BOOL is one byte).
std::size_t dtype_size(Dtype dtype);
// "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL" (for error messages).
std::string supported_dtype_names();

struct TensorEntry {
  std::string name;            // the JSON key, e.g. "model.embed_tokens.weight"
  Dtype dtype = Dtype::F32;    // element type as stored
  std::vector<int64_t> shape;  // empty for a 0-d scalar; dims may be 0
  uint64_t begin = 0;          // byte offsets relative to the data section: [begin, end)
  uint64_t end = 0;

  uint64_t byte_size() const { return end - begin; }
  int64_t numel() const;       // product of shape (1 for a scalar)
};

struct SafetensorsHeader {
  uint64_t header_size = 0;          // N, the value of the 8-byte prefix
  uint64_t data_offset = 0;          // 8 + N: where the data section starts in the file
  std::vector<TensorEntry> tensors;  // sorted by (begin, end, name)
  std::map<std::string, std::string> metadata;  // "__metadata__", e.g. {"format": "pt"}

  // The entry named `name`, or nullptr (linear search; callers that look up
  // many names build their own index).
  const TensorEntry* find(const std::string& name) const;
};

// The largest header the `safetensors` library accepts (100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderSize = 100'000'000;

// Parses and validates the header of a safetensors file whose first
// `file_size` bytes are at `data` (`data` may be null when file_size is 0).
// Reads only data[0, 8 + N). `file` names the file in error messages.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t file_size, const std::string& file);

}  // namespace lire::io

#include "lire/io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "lire/core/error.h"

namespace lire::io {
namespace {

using nlohmann::json;

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  std::size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {Dtype::F64, "F64", 8}, {Dtype::F32, "F32", 4}, {Dtype::F16, "F16", 2}, {Dtype::BF16, "BF16", 2},
    {Dtype::I64, "I64", 8}, {Dtype::I32, "I32", 4}, {Dtype::I16, "I16", 2}, {Dtype::I8, "I8", 1},
    {Dtype::U8, "U8", 1},   {Dtype::BOOL, "BOOL", 1},
};

const DtypeInfo& info(Dtype dtype) {
  for (const auto& entry : kDtypes) {
    if (entry.dtype == dtype) return entry;
  }
  throw Error(str("invalid lire::io::Dtype value ", static_cast<int>(dtype)));
}

// Thrown by the JSON parser callback; turned into a lire::Error below.
struct HeaderProblem {
  std::string reason;
};

// Parses the header JSON, rejecting duplicate keys (nlohmann would keep the
// last silently) and nesting deeper than a valid header ever needs (so that
// a hostile header cannot make later recursive code overflow the stack).
json parse_header_json(const char* begin, const char* end) {
  std::vector<std::set<std::string>> open_objects;  // keys seen, per object being parsed
  const json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        // {"name": {"shape": [..]}}: containers start at depth 0, 1 and 2 only.
        if (depth > 2) throw HeaderProblem{"header is nested too deeply for a safetensors header"};
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!open_objects.back().insert(key).second) {
            throw HeaderProblem{depth <= 1 ? str("tensor '", key, "': appears twice in the header")
                                           : str("duplicate key '", key, "' in the header")};
          }
        }
        break;
      default:
        break;
    }
    return true;
  };
  return json::parse(begin, end, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
}

std::string describe(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a non-integer number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    default: return "an unsupported JSON value";
  }
}

// A JSON integer >= 0 that fits uint64 (floats, including 1.0, are rejected:
// the format stores integers).
bool read_unsigned(const json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

TensorEntry parse_entry(const std::string& file, const std::string& name, const json& value, uint64_t data_size) {
  const auto fail = [&](const std::string& reason) { return Error(str(file, ": tensor '", name, "': ", reason)); };
  if (name.empty()) throw Error(str(file, ": a tensor has an empty name"));
  if (!value.is_object()) throw fail(str("expected an object with dtype, shape and data_offsets, got ", describe(value)));
  for (const auto& [key, unused] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      throw fail(str("unexpected key '", key, "' (a tensor entry has exactly dtype, shape and data_offsets)"));
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) throw fail(str("missing '", key, "'"));
  }

  TensorEntry entry;
  entry.name = name;

  const json& dtype = value.at("dtype");
  if (!dtype.is_string()) throw fail(str("dtype must be a string, got ", describe(dtype)));
  if (!parse_dtype(dtype.get_ref<const std::string&>(), &entry.dtype)) {
    throw fail(str("unsupported dtype '", dtype.get_ref<const std::string&>(), "' (supported: ", supported_dtype_names(), ")"));
  }

  const json& shape = value.at("shape");
  if (!shape.is_array()) throw fail(str("shape must be an array of integers, got ", describe(shape)));
  constexpr auto kMaxDim = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  // Element count of the non-zero dims must fit int64 (torch computes strides
  // as such products even when another dim is 0).
  uint64_t product = 1;
  bool has_zero = false;
  for (const json& dim : shape) {
    uint64_t d = 0;
    if (!read_unsigned(dim, &d)) {
      throw fail(str("shape ", shape.dump(), " must hold non-negative integers, got ", describe(dim),
                     dim.is_number_integer() ? " below zero" : ""));
    }
    if (d > kMaxDim) throw fail(str("shape ", shape.dump(), ": dimension ", d, " is too large"));
    if (d == 0) {
      has_zero = true;
    } else if (product > kMaxDim / d) {
      throw fail(str("shape ", shape.dump(), ": element count overflows 64 bits"));
    } else {
      product *= d;
    }
    entry.shape.push_back(static_cast<int64_t>(d));
  }
  const uint64_t numel = has_zero ? 0 : product;
  const uint64_t elem_size = dtype_size(entry.dtype);
  if (numel > std::numeric_limits<uint64_t>::max() / elem_size) {
    throw fail(str("shape ", shape.dump(), ": byte size overflows 64 bits"));
  }
  const uint64_t expected_bytes = numel * elem_size;

  const json& offsets = value.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    throw fail(str("data_offsets must be [begin, end], got ", offsets.is_array() ? offsets.dump() : describe(offsets)));
  }
  if (!read_unsigned(offsets[0], &entry.begin) || !read_unsigned(offsets[1], &entry.end)) {
    throw fail(str("data_offsets ", offsets.dump(), " must be non-negative integers"));
  }
  if (entry.begin > entry.end) throw fail(str("data_offsets ", offsets.dump(), ": begin is after end"));
  if (entry.end > data_size) {
    throw fail(str("data_offsets ", offsets.dump(), " reach past the end of the file (the data section holds ",
                   data_size, " bytes)"));
  }
  if (entry.end - entry.begin != expected_bytes) {
    throw fail(str("shape ", shape.dump(), " of ", dtype_name(entry.dtype), " needs ", expected_bytes,
                   " bytes but data_offsets ", offsets.dump(), " span ", entry.end - entry.begin));
  }
  return entry;
}

}  // namespace

bool parse_dtype(const std::string& text, Dtype* out) {
  for (const auto& entry : kDtypes) {
    if (text == entry.name) {
      *out = entry.dtype;
      return true;
    }
  }
  return false;
}

const char* dtype_name(Dtype dtype) { return info(dtype).name; }

std::size_t dtype_size(Dtype dtype) { return info(dtype).size; }

std::string supported_dtype_names() {
  std::string out;
  for (const auto& entry : kDtypes) {
    if (!out.empty()) out += ", ";
    out += entry.name;
  }
  return out;
}

int64_t TensorEntry::numel() const {
  for (const int64_t d : shape) {
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

const TensorEntry* SafetensorsHeader::find(const std::string& name) const {
  for (const auto& entry : tensors) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t file_size, const std::string& file) {
  if (file_size == 0) throw Error(str(file, ": empty file, not a safetensors file"));
  if (file_size < 8) {
    throw Error(str(file, ": truncated: ", file_size, " bytes, shorter than the 8-byte header length of a safetensors file"));
  }
  SafetensorsHeader header;
  header.header_size = read_u64_le(data);
  const uint64_t n = header.header_size;
  if (n > kMaxSafetensorsHeaderSize) {
    throw Error(str(file, ": header length ", n, " exceeds the 100 MB limit of the format (corrupt or not a safetensors file)"));
  }
  if (n > file_size - 8) {
    throw Error(str(file, ": header length ", n, " reaches past the end of the file (", file_size,
                    " bytes; truncated or not a safetensors file)"));
  }
  if (n == 0 || data[8] != '{') {
    throw Error(str(file, ": the header must be a JSON object starting with '{' (not a safetensors file?)"));
  }
  header.data_offset = 8 + n;
  const uint64_t data_size = file_size - header.data_offset;

  const char* text = reinterpret_cast<const char*>(data + 8);
  // nlohmann's lexer stops at a NUL as if the input ended, which would let
  // anything after one through; JSON never holds a raw NUL.
  if (const void* nul = std::memchr(text, '\0', n)) {
    throw Error(str(file, ": header is not valid UTF-8 JSON: NUL byte at header offset ",
                    static_cast<const char*>(nul) - text));
  }
  json root;
  try {
    root = parse_header_json(text, text + n);
  } catch (const HeaderProblem& problem) {
    throw Error(str(file, ": ", problem.reason));
  } catch (const json::exception& e) {
    throw Error(str(file, ": header is not valid UTF-8 JSON: ", e.what()));
  }
  if (!root.is_object()) throw Error(str(file, ": the header must be a JSON object, got ", describe(root)));

  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) throw Error(str(file, ": __metadata__ must be an object of strings, got ", describe(value)));
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          throw Error(str(file, ": __metadata__ value of '", meta_key, "' must be a string, got ", describe(meta_value)));
        }
        header.metadata.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    header.tensors.push_back(parse_entry(file, key, value, data_size));
  }

  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  // The tensors must tile [0, data_size) exactly, as the safetensors library requires.
  uint64_t cursor = 0;
  const TensorEntry* previous = nullptr;
  for (const auto& entry : header.tensors) {
    if (entry.begin < cursor) {
      throw Error(str(file, ": tensor '", entry.name, "': data_offsets [", entry.begin, ", ", entry.end,
                      "] overlap those of tensor '", previous->name, "' [", previous->begin, ", ", previous->end, "]"));
    }
    if (entry.begin > cursor) {
      throw Error(str(file, ": tensor '", entry.name, "': data_offsets [", entry.begin, ", ", entry.end,
                      "] leave a hole of ", entry.begin - cursor, " unused bytes at [", cursor, ", ", entry.begin,
                      ") of the data section"));
    }
    cursor = entry.end;
    previous = &entry;
  }
  if (cursor != data_size) {
    throw Error(str(file, ": ", data_size - cursor, " bytes after the last tensor's data (the data section holds ",
                    data_size, " bytes, the tensors cover ", cursor, "; trailing garbage or a corrupt header)"));
  }
  return header;
}

}  // namespace lire::io

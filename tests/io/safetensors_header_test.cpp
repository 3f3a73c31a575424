// parse_safetensors_header on hand-built byte buffers: valid files (scalars,
// zero-size tensors, padding) and every kind of hostile header, each a clear
// error naming the file (and tensor), never a crash. The buffers are exact-size
// heap allocations so that AddressSanitizer catches any read past the end.
#include "lire/io/safetensors_header.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "support/error_message.h"

namespace lire::io {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kFile = "ckpt/model.safetensors";

std::string u64_le(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// 8-byte length + header JSON (+ padding spaces) + `data_bytes` bytes of data.
std::string safetensors_bytes(const std::string& header, uint64_t data_bytes, std::size_t padding = 0) {
  const std::string padded = header + std::string(padding, ' ');
  std::string data(data_bytes, '\0');
  for (uint64_t i = 0; i < data_bytes; ++i) data[i] = static_cast<char>(i * 7 + 1);
  return u64_le(padded.size()) + padded + data;
}

// Parses `bytes` from an exact-size heap buffer (nullptr when empty).
SafetensorsHeader parse(const std::string& bytes) {
  std::unique_ptr<uint8_t[]> buffer;
  if (!bytes.empty()) {
    buffer.reset(new uint8_t[bytes.size()]);
    std::memcpy(buffer.get(), bytes.data(), bytes.size());
  }
  return parse_safetensors_header(buffer.get(), bytes.size(), kFile);
}

std::string parse_error(const std::string& bytes) {
  return lire::testing::error_message<Error>([&] { parse(bytes); });
}

std::string header_error(const std::string& header, uint64_t data_bytes) {
  return parse_error(safetensors_bytes(header, data_bytes));
}

TEST(SafetensorsDtype, NamesSizesAndParsing) {
  const std::vector<std::pair<std::string, std::size_t>> expected = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  for (const auto& [name, size] : expected) {
    Dtype dtype;
    ASSERT_TRUE(parse_dtype(name, &dtype)) << name;
    EXPECT_EQ(dtype_name(dtype), name);
    EXPECT_EQ(dtype_size(dtype), size) << name;
  }
  Dtype dtype;
  for (const char* bad : {"f32", "F8_E4M3", "F8_E5M2", "C64", "U16", "U32", "U64", "X", ""}) {
    EXPECT_FALSE(parse_dtype(bad, &dtype)) << bad;
  }
  EXPECT_EQ(supported_dtype_names(), "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL");
}

TEST(SafetensorsHeader, ParsesAValidFile) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},)"
      R"("step":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})";
  const auto bytes = safetensors_bytes(header, 32);
  const SafetensorsHeader h = parse(bytes);
  EXPECT_EQ(h.header_size, header.size());
  EXPECT_EQ(h.data_offset, 8 + header.size());
  ASSERT_EQ(h.tensors.size(), 2u);
  // Sorted by offset, not by name or JSON order.
  EXPECT_EQ(h.tensors[0].name, "step");
  EXPECT_EQ(h.tensors[0].dtype, Dtype::I64);
  EXPECT_TRUE(h.tensors[0].shape.empty());
  EXPECT_EQ(h.tensors[0].numel(), 1);
  EXPECT_EQ(h.tensors[0].begin, 0u);
  EXPECT_EQ(h.tensors[0].end, 8u);
  EXPECT_EQ(h.tensors[1].name, "w");
  EXPECT_EQ(h.tensors[1].dtype, Dtype::F32);
  EXPECT_EQ(h.tensors[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[1].numel(), 6);
  EXPECT_EQ(h.tensors[1].byte_size(), 24u);
  EXPECT_EQ(h.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_NE(h.find("w"), nullptr);
  EXPECT_EQ(h.find("w")->begin, 8u);
  EXPECT_EQ(h.find("nope"), nullptr);
}

TEST(SafetensorsHeader, EveryDtypeWithItsSize) {
  const std::vector<std::pair<std::string, uint64_t>> dtypes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  for (const auto& [name, size] : dtypes) {
    const std::string header = R"({"t":{"dtype":")" + name + R"(","shape":[3],"data_offsets":[0,)" +
                               std::to_string(3 * size) + "]}}";
    const SafetensorsHeader h = parse(safetensors_bytes(header, 3 * size));
    ASSERT_EQ(h.tensors.size(), 1u);
    EXPECT_EQ(dtype_name(h.tensors[0].dtype), name);
  }
}

TEST(SafetensorsHeader, ScalarsZeroSizeTensorsAndPadding) {
  // 0-d scalar, zero-size [0,3] and [3,0,2] tensors (begin == end), and the
  // header padded with spaces as the safetensors library writes it.
  const std::string header =
      R"({"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},)"
      R"("also_empty":{"dtype":"BF16","shape":[3,0,2],"data_offsets":[2,2]},)"
      R"("x":{"dtype":"F16","shape":[],"data_offsets":[0,2]}})";
  for (std::size_t padding : {0, 1, 5, 7}) {
    const SafetensorsHeader h = parse(safetensors_bytes(header, 2, padding));
    EXPECT_EQ(h.header_size, header.size() + padding);
    ASSERT_EQ(h.tensors.size(), 3u);
    EXPECT_EQ(h.find("empty")->numel(), 0);
    EXPECT_EQ(h.find("empty")->shape, (std::vector<int64_t>{0, 3}));
    EXPECT_EQ(h.find("also_empty")->numel(), 0);
    EXPECT_EQ(h.find("x")->numel(), 1);
    EXPECT_TRUE(h.metadata.empty());
  }
}

TEST(SafetensorsHeader, EmptyCheckpointsAndNullMetadata) {
  EXPECT_TRUE(parse(safetensors_bytes("{}", 0)).tensors.empty());
  EXPECT_TRUE(parse(safetensors_bytes(R"({"__metadata__":{}})", 0, 3)).tensors.empty());
  EXPECT_TRUE(parse(safetensors_bytes(R"({"__metadata__":null})", 0)).metadata.empty());
  // Only a zero-size tensor: an empty data section.
  const auto h = parse(safetensors_bytes(R"({"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})", 0));
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.data_offset, h.header_size + 8);
}

TEST(SafetensorsHeader, LargeShapesThatFitAreAccepted) {
  // [2^31, 2^31, 0]: the non-zero product 2^62 fits int64.
  const auto h = parse(safetensors_bytes(
      R"({"z":{"dtype":"F64","shape":[2147483648,2147483648,0],"data_offsets":[0,0]}})", 0));
  EXPECT_EQ(h.tensors[0].numel(), 0);
}

// ------------------------------------------------------------ whole-file errors

TEST(SafetensorsHeaderErrors, EmptyAndTruncatedFiles) {
  EXPECT_THAT(parse_error(""), StartsWith(kFile + ": empty file"));
  EXPECT_THAT(parse_error(std::string("\x10\0\0\0\0", 5)), AllOf(StartsWith(kFile + ": "), HasSubstr("truncated")));
  // A valid file cut anywhere is an error.
  const std::string whole = safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16);
  for (std::size_t size = 0; size < whole.size(); ++size) {
    EXPECT_THAT(parse_error(whole.substr(0, size)), StartsWith(kFile + ": ")) << "cut at " << size;
  }
}

TEST(SafetensorsHeaderErrors, HeaderLengthBeyondTheFile) {
  const std::string msg = parse_error(u64_le(100) + "{}");
  EXPECT_THAT(msg, StartsWith(kFile + ": header length 100 reaches past the end of the file (10 bytes"));
  // One byte short.
  EXPECT_THAT(parse_error(u64_le(3) + "{}"), HasSubstr("past the end"));
}

TEST(SafetensorsHeaderErrors, HugeHeaderLength) {
  for (uint64_t n : {uint64_t{1} << 63, ~uint64_t{0}, uint64_t{100'000'001}}) {
    EXPECT_THAT(parse_error(u64_le(n) + "{}"),
                AllOf(StartsWith(kFile + ": header length " + std::to_string(n)), HasSubstr("100 MB")));
  }
}

TEST(SafetensorsHeaderErrors, HeaderMustBeAJsonObject) {
  for (const std::string header : {"[1,2]", " {}", "\"x\"", "12", "null"}) {
    EXPECT_THAT(header_error(header, 0), StartsWith(kFile + ": the header must be a JSON object starting with '{'"))
        << header;
  }
  EXPECT_THAT(parse_error(u64_le(0)), StartsWith(kFile + ": the header must be a JSON object"));
  EXPECT_THAT(header_error("{\"a\":", 0), StartsWith(kFile + ": header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error("{} x", 0), StartsWith(kFile + ": header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error(std::string("{}\0\0", 4), 0), StartsWith(kFile + ": header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error(std::string("{\"a\xff\":{}}"), 0), StartsWith(kFile + ": header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error(std::string("{\"a\xc3\":{}}"), 0), StartsWith(kFile + ": header is not valid UTF-8 JSON"));
}

TEST(SafetensorsHeaderErrors, BadMetadata) {
  EXPECT_THAT(header_error(R"({"__metadata__":[1]})", 0),
              StartsWith(kFile + ": __metadata__ must be an object of strings, got an array"));
  EXPECT_THAT(header_error(R"({"__metadata__":{"format":1}})", 0),
              StartsWith(kFile + ": __metadata__ value of 'format' must be a string, got an integer"));
  EXPECT_THAT(header_error(R"({"__metadata__":{"a":{"b":"c"}}})", 0), HasSubstr("must be a string, got an object"));
}

TEST(SafetensorsHeaderErrors, DuplicateKeysAndDeepNesting) {
  EXPECT_EQ(header_error(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                         R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                         2),
            kFile + ": tensor 'a': appears twice in the header");
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", 1),
              StartsWith(kFile + ": duplicate key 'dtype'"));
  EXPECT_THAT(header_error(R"({"__metadata__":{"k":"1","k":"2"}})", 0), StartsWith(kFile + ": duplicate key 'k'"));
  // 100k nested arrays: rejected at once, without recursion.
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(header_error(deep, 0), StartsWith(kFile + ": header is nested too deeply"));
}

TEST(SafetensorsHeaderErrors, TrailingGarbageAfterTheData) {
  EXPECT_EQ(header_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8),
            kFile + ": 4 bytes after the last tensor's data (the data section holds 8 bytes, the tensors cover 4; "
                    "trailing garbage or a corrupt header)");
  EXPECT_THAT(header_error("{}", 1), StartsWith(kFile + ": 1 bytes after the last tensor's data"));
}

// ------------------------------------------------------------ per-tensor errors

TEST(SafetensorsHeaderErrors, MalformedEntries) {
  const std::string prefix = kFile + ": tensor 't': ";
  EXPECT_EQ(header_error(R"({"t":5})", 0),
            prefix + "expected an object with dtype, shape and data_offsets, got an integer");
  EXPECT_EQ(header_error(R"({"t":{"dtype":"F32","shape":[1]}})", 4), prefix + "missing 'data_offsets'");
  EXPECT_EQ(header_error(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", 4), prefix + "missing 'dtype'");
  EXPECT_THAT(header_error(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", 4),
              StartsWith(prefix + "unexpected key 'extra'"));
  EXPECT_THAT(header_error(R"({"t":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
              StartsWith(prefix + "dtype must be a string"));
  EXPECT_THAT(header_error(R"({"t":{"dtype":"F32","shape":4,"data_offsets":[0,4]}})", 4),
              StartsWith(prefix + "shape must be an array of integers"));
  EXPECT_THAT(header_error(R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
              AllOf(StartsWith(prefix + "shape [1.5] must hold non-negative integers"), HasSubstr("non-integer")));
  EXPECT_THAT(header_error(R"({"t":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", 4),
              StartsWith(prefix + "shape [\"1\"] must hold non-negative integers"));
  EXPECT_THAT(header_error(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
              StartsWith(prefix + "data_offsets must be [begin, end], got [0]"));
  EXPECT_THAT(header_error(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":{"a":1}}})", 4),
              StartsWith(prefix + "data_offsets must be [begin, end], got an object"));
  EXPECT_THAT(header_error(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4),
              StartsWith(prefix + "data_offsets [-4,0] must be non-negative integers"));
  EXPECT_THAT(header_error(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4),
              StartsWith(kFile + ": a tensor has an empty name"));
}

TEST(SafetensorsHeaderErrors, UnknownDtype) {
  for (const std::string dtype : {"F8_E4M3", "C64", "X", "f32", "U16"}) {
    EXPECT_EQ(header_error(R"({"w":{"dtype":")" + dtype + R"(","shape":[1],"data_offsets":[0,1]}})", 1),
              kFile + ": tensor 'w': unsupported dtype '" + dtype +
                  "' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
  }
}

TEST(SafetensorsHeaderErrors, NegativeShape) {
  EXPECT_EQ(header_error(R"({"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}})", 0),
            kFile + ": tensor 'w': shape [2,-1] must hold non-negative integers, got an integer below zero");
}

TEST(SafetensorsHeaderErrors, OverflowInShapeProduct) {
  EXPECT_EQ(header_error(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}})", 16),
            kFile + ": tensor 'w': shape [1099511627776,1099511627776]: element count overflows 64 bits");
  // Also when a later dimension is 0 (torch's strides would overflow).
  EXPECT_THAT(header_error(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776,0],"data_offsets":[0,0]}})", 0),
              HasSubstr("element count overflows 64 bits"));
  // Element count fits, byte count does not: 2^62 F32 elements = 2^64 bytes.
  EXPECT_THAT(header_error(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0),
              StartsWith(kFile + ": tensor 'w': shape [4611686018427387904]: byte size overflows 64 bits"));
  // A dimension beyond int64.
  EXPECT_THAT(header_error(R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0),
              HasSubstr("is too large"));
  // Beyond uint64: nlohmann reads it as a float.
  EXPECT_THAT(header_error(R"({"w":{"dtype":"U8","shape":[99999999999999999999999],"data_offsets":[0,0]}})", 0),
              HasSubstr("must hold non-negative integers"));
}

TEST(SafetensorsHeaderErrors, ShapeOffsetMismatch) {
  EXPECT_EQ(header_error(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20),
            kFile + ": tensor 'w': shape [2,3] of F32 needs 24 bytes but data_offsets [0,20] span 20");
  EXPECT_THAT(header_error(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,0]}})", 0),
              HasSubstr("needs 4 bytes but data_offsets [0,0] span 0"));
}

TEST(SafetensorsHeaderErrors, OffsetsPastTheEndOrReversed) {
  EXPECT_EQ(header_error(R"({"w":{"dtype":"F32","shape":[250],"data_offsets":[0,1000]}})", 16),
            kFile + ": tensor 'w': data_offsets [0,1000] reach past the end of the file (the data section holds 16 bytes)");
  EXPECT_THAT(header_error(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})",
                           16),
              HasSubstr("reach past the end of the file"));
  EXPECT_EQ(header_error(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[8,4]}})", 16),
            kFile + ": tensor 'w': data_offsets [8,4]: begin is after end");
}

TEST(SafetensorsHeaderErrors, OverlappingOffsets) {
  EXPECT_EQ(header_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         12),
            kFile + ": tensor 'b': data_offsets [4, 12] overlap those of tensor 'a' [0, 8]");
  // Two tensors on the same bytes.
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
                           8),
              HasSubstr("overlap those of tensor"));
  // A zero-size tensor inside another one.
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                           8),
              StartsWith(kFile + ": tensor 'b': data_offsets [4, 4] overlap"));
}

TEST(SafetensorsHeaderErrors, HoleBetweenTensors) {
  EXPECT_EQ(header_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                         12),
            kFile + ": tensor 'b': data_offsets [8, 12] leave a hole of 4 unused bytes at [4, 8) of the data section");
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
              StartsWith(kFile + ": tensor 'a': data_offsets [4, 8] leave a hole of 4 unused bytes at [0, 4)"));
}

TEST(SafetensorsHeaderErrors, RandomCorruptionNeverCrashes) {
  // Flip each byte of a valid file's header region in turn: either it still
  // parses or it is a lire::Error naming the file (ASan/UBSan check the rest).
  const std::string whole =
      safetensors_bytes(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})",
                        22, 2);
  for (std::size_t i = 0; i < whole.size(); ++i) {
    for (const int replacement : {0x00, 0x7f, 0xff, int{'"'}, int{'9'}, int{'-'}, int{'['}}) {
      std::string bytes = whole;
      bytes[i] = static_cast<char>(replacement);
      try {
        parse(bytes);
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), StartsWith(kFile + ": ")) << "byte " << i;
      }
    }
  }
}

}  // namespace
}  // namespace lire::io

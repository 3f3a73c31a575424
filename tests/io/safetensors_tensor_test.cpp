// SafetensorsFile, CheckpointReader and the writers: round trips of every
// dtype, zero-copy views of the mapping, the exact byte layout of written
// files, the HF llama_tiny fixture, sharded checkpoints, and the errors.
#include "lire/io/safetensors.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "support/error_message.h"

namespace lire::io {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;

const std::string kLlamaTiny = std::string(LIRE_TEST_FIXTURES) + "/hf/llama_tiny";

// A fresh folder under the test temp dir, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "lire_safetensors_XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    if (!made) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

uint64_t u64_at(const std::string& bytes, std::size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// One tensor of every dtype, plus a 0-d scalar, empty tensors and a non-contiguous view.
Named every_dtype() {
  torch::manual_seed(7);
  Named t;
  t.emplace_back("f64", torch::randn({3, 4}, torch::kDouble));
  t.emplace_back("f32", torch::randn({2, 3, 4}));
  t.emplace_back("f16", torch::randn({5}).to(torch::kHalf));
  t.emplace_back("bf16", torch::randn({2, 7}).to(torch::kBFloat16));
  t.emplace_back("i64", torch::tensor({-(int64_t{1} << 40), int64_t{3}, int64_t{-5}}));
  t.emplace_back("i32", torch::tensor({-7, 2147483647, 0}, torch::kInt));
  t.emplace_back("i16", torch::tensor({-32768, 32767, 1}, torch::kShort));
  t.emplace_back("i8", torch::tensor({-128, 127, 0, 5}, torch::kChar));
  t.emplace_back("u8", torch::tensor({0, 255, 17}, torch::kByte));
  t.emplace_back("bool", torch::tensor({true, false, true, true}));
  t.emplace_back("scalar", torch::tensor(2.5f));
  t.emplace_back("empty", torch::zeros({0, 3}));
  t.emplace_back("empty_bf16", torch::zeros({3, 0, 2}, torch::kBFloat16));
  t.emplace_back("transposed", torch::arange(12, torch::kFloat).reshape({3, 4}).t());
  return t;
}

TEST(SafetensorsFile, RoundTripsEveryDtype) {
  TempDir dir;
  const Named tensors = every_dtype();
  save_safetensors(dir / "all.safetensors", tensors);
  const auto file = SafetensorsFile::open(dir / "all.safetensors");
  std::vector<std::string> expected_names;
  for (const auto& [name, tensor] : tensors) {
    expected_names.push_back(name);
    SCOPED_TRACE(name);
    ASSERT_TRUE(file->contains(name));
    const torch::Tensor read = file->tensor(name);
    EXPECT_EQ(read.scalar_type(), tensor.scalar_type());
    EXPECT_EQ(read.sizes(), tensor.sizes());
    EXPECT_TRUE(read.device().is_cpu());
    EXPECT_TRUE(torch::equal(read, tensor));
  }
  std::sort(expected_names.begin(), expected_names.end());
  EXPECT_EQ(file->names(), expected_names);
  EXPECT_EQ(file->tensor("scalar").dim(), 0);
  EXPECT_EQ(file->tensor("scalar").item<float>(), 2.5f);
  EXPECT_EQ(file->entry("bf16").dtype, Dtype::BF16);
  EXPECT_EQ(file->entry("bool").dtype, Dtype::BOOL);
  EXPECT_EQ(file->header().metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST(SafetensorsFile, WrittenByteLayoutMatchesTheFormat) {
  TempDir dir;
  // 1.5f is 0x3fc00000; -2 as I16 is 0xfffe; data in the given order, not sorted by name.
  save_safetensors(dir / "x.safetensors",
                   {{"zeta", torch::tensor({1.5f, -1.0f})}, {"alpha", torch::tensor({-2}, torch::kShort)}});
  const std::string bytes = read_bytes(dir / "x.safetensors");
  const uint64_t n = u64_at(bytes, 0);
  EXPECT_EQ((n + 8) % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.rfind("{\"__metadata__\":{\"format\":\"pt\"},", 0), 0u) << header;
  EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
            R"({"__metadata__":{"format":"pt"},"zeta":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("alpha":{"dtype":"I16","shape":[1],"data_offsets":[8,10]}})");
  EXPECT_LT(header.size() - header.find_last_not_of(' ') - 1, 8u);  // at most 7 spaces of padding
  ASSERT_EQ(bytes.size(), 8 + n + 10);
  EXPECT_EQ(bytes.substr(8 + n), std::string("\x00\x00\xc0\x3f\x00\x00\x80\xbf\xfe\xff", 10));

  const SafetensorsHeader parsed =
      parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x");
  EXPECT_EQ(parsed.header_size, n);
  EXPECT_EQ(parsed.data_offset, 8 + n);
  ASSERT_EQ(parsed.tensors.size(), 2u);
  EXPECT_EQ(parsed.tensors[0].name, "zeta");
  EXPECT_EQ(parsed.tensors[1].name, "alpha");

  // Custom and empty metadata.
  save_safetensors(dir / "m.safetensors", {{"a", torch::ones({1})}}, {{"lire", "1"}});
  EXPECT_EQ(SafetensorsFile::open(dir / "m.safetensors")->header().metadata,
            (std::map<std::string, std::string>{{"lire", "1"}}));
  save_safetensors(dir / "n.safetensors", {{"a", torch::ones({1})}}, {});
  const std::string plain = read_bytes(dir / "n.safetensors");
  EXPECT_EQ(plain.substr(8, 2), "{\"");
  EXPECT_EQ(plain.find("__metadata__"), std::string::npos);
  // No tensors at all.
  save_safetensors(dir / "none.safetensors", {});
  EXPECT_TRUE(SafetensorsFile::open(dir / "none.safetensors")->names().empty());
  // No temp files left behind.
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST(SafetensorsFile, AlignedTensorsAreZeroCopyViewsOfTheMapping) {
  TempDir dir;
  const std::string path = dir / "z.safetensors";
  save_safetensors(path, {{"w", torch::arange(6, torch::kFloat).reshape({2, 3})}, {"b", torch::ones({3}, torch::kDouble)}});
  auto file = SafetensorsFile::open(path);
  torch::Tensor a = file->tensor("w");
  const torch::Tensor b = file->tensor("w");
  EXPECT_EQ(a.data_ptr(), b.data_ptr());  // both views of the same mapped bytes
  const torch::Tensor d = file->tensor("b");  // data_offset + 24: 8-aligned
  EXPECT_EQ(static_cast<char*>(d.data_ptr()) - static_cast<char*>(a.data_ptr()), 24);

  // In-place ops work (private copy-on-write mapping) and never reach the file.
  a.mul_(10);
  EXPECT_EQ(b[1][2].item<float>(), 50.0f);  // shared storage sees it
  EXPECT_TRUE(torch::equal(SafetensorsFile::open(path)->tensor("w"), torch::arange(6, torch::kFloat).reshape({2, 3})));

  // Views keep the mapping alive after the file object is gone.
  file.reset();
  EXPECT_EQ(d.sum().item<double>(), 3.0);
  EXPECT_EQ(a.sum().item<float>(), 150.0f);
}

TEST(SafetensorsFile, MisalignedTensorsAreCopied) {
  TempDir dir;
  const std::string path = dir / "u.safetensors";
  // "b" starts 1 byte into the (8-aligned) data section: not 4-aligned.
  save_safetensors(path, {{"a", torch::tensor({7}, torch::kByte)}, {"b", torch::tensor({1.25f, -3.0f})}});
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->entry("b").begin, 1u);
  const torch::Tensor x = file->tensor("b");
  const torch::Tensor y = file->tensor("b");
  EXPECT_NE(x.data_ptr(), y.data_ptr());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data_ptr()) % alignof(float), 0u);
  EXPECT_TRUE(torch::equal(x, torch::tensor({1.25f, -3.0f})));
  EXPECT_EQ(file->tensor("a").item<uint8_t>(), 7);
}

TEST(SafetensorsFile, ReadsTheHuggingFaceLlamaFixture) {
  const nlohmann::json config = nlohmann::json::parse(read_bytes(kLlamaTiny + "/config.json"));
  const int64_t hidden = config.at("hidden_size");
  const int64_t vocab = config.at("vocab_size");
  const int64_t layers = config.at("num_hidden_layers");
  const int64_t heads = config.at("num_attention_heads");
  const int64_t kv_heads = config.at("num_key_value_heads");
  const int64_t head_dim = config.at("head_dim");
  const int64_t inter = config.at("intermediate_size");
  ASSERT_EQ(hidden, 64);
  ASSERT_EQ(layers, 2);

  const CheckpointReader reader(kLlamaTiny);
  EXPECT_EQ(reader.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(reader.names().size(), static_cast<std::size_t>(3 + 9 * layers));
  const std::map<std::string, std::vector<int64_t>> shapes = {
      {"model.embed_tokens.weight", {vocab, hidden}},
      {"lm_head.weight", {vocab, hidden}},
      {"model.norm.weight", {hidden}},
  };
  for (const auto& [name, shape] : shapes) {
    ASSERT_TRUE(reader.contains(name)) << name;
    EXPECT_EQ(reader.tensor(name).sizes().vec(), shape) << name;
  }
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::map<std::string, std::vector<int64_t>> layer = {
        {"self_attn.q_proj.weight", {heads * head_dim, hidden}},
        {"self_attn.k_proj.weight", {kv_heads * head_dim, hidden}},
        {"self_attn.v_proj.weight", {kv_heads * head_dim, hidden}},
        {"self_attn.o_proj.weight", {hidden, heads * head_dim}},
        {"mlp.gate_proj.weight", {inter, hidden}},
        {"mlp.up_proj.weight", {inter, hidden}},
        {"mlp.down_proj.weight", {hidden, inter}},
        {"input_layernorm.weight", {hidden}},
        {"post_attention_layernorm.weight", {hidden}},
    };
    for (const auto& [name, shape] : layer) {
      ASSERT_TRUE(reader.contains(p + name)) << p + name;
      const torch::Tensor t = reader.tensor(p + name);
      EXPECT_EQ(t.sizes().vec(), shape) << p + name;
      EXPECT_EQ(t.scalar_type(), torch::kFloat);
      EXPECT_TRUE(torch::isfinite(t).all().item<bool>());
    }
  }
  EXPECT_EQ(reader.tensor("model.layers.0.self_attn.k_proj.weight").sizes().vec(), (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(reader.file_of("lm_head.weight"), kLlamaTiny + "/model.safetensors");
  EXPECT_EQ(reader.entry("model.embed_tokens.weight").dtype, Dtype::F32);

  // Written back by lire in the file's order: byte for byte what the
  // `safetensors` library wrote (same header JSON, padding and data layout).
  TempDir dir;
  const auto original = SafetensorsFile::open(kLlamaTiny + "/model.safetensors");
  Named all;
  for (const auto& entry : original->header().tensors) all.emplace_back(entry.name, original->tensor(entry.name));
  save_safetensors(dir / "model.safetensors", all);
  EXPECT_TRUE(read_bytes(dir / "model.safetensors") == read_bytes(kLlamaTiny + "/model.safetensors"));
  const CheckpointReader again(dir.path());
  for (const auto& [name, tensor] : all) EXPECT_TRUE(torch::equal(again.tensor(name), tensor)) << name;
}

TEST(CheckpointReader, ShardedRoundTrip) {
  TempDir dir;
  Named tensors;
  for (int i = 0; i < 5; ++i) tensors.emplace_back("layer." + std::to_string(i) + ".w", torch::randn({4, 4}));  // 64 B each
  tensors.emplace_back("big", torch::randn({40}));                            // 160 B: a shard of its own
  tensors.emplace_back("half", torch::randn({8}).to(torch::kHalf));           // 16 B
  save_sharded_safetensors(dir / "ckpt", tensors, /*max_shard_bytes=*/128);
  // Shards: [layer.0, layer.1] [layer.2, layer.3] [layer.4] [big] [half]: 64+64, 64+64, 64 then big, half.
  const std::vector<std::string> shard_names = {
      "model-00001-of-00005.safetensors", "model-00002-of-00005.safetensors", "model-00003-of-00005.safetensors",
      "model-00004-of-00005.safetensors", "model-00005-of-00005.safetensors"};
  for (const auto& name : shard_names) EXPECT_TRUE(fs::exists(dir / ("ckpt/" + name))) << name;
  EXPECT_FALSE(fs::exists(dir / "ckpt/model-00006-of-00005.safetensors"));

  const nlohmann::json index = nlohmann::json::parse(read_bytes(dir / "ckpt/model.safetensors.index.json"));
  EXPECT_EQ(index.at("metadata").at("total_size"), 5 * 64 + 160 + 16);
  EXPECT_EQ(index.at("weight_map").size(), tensors.size());
  EXPECT_EQ(index.at("weight_map").at("layer.1.w"), shard_names[0]);
  EXPECT_EQ(index.at("weight_map").at("layer.2.w"), shard_names[1]);
  EXPECT_EQ(index.at("weight_map").at("layer.4.w"), shard_names[2]);
  EXPECT_EQ(index.at("weight_map").at("big"), shard_names[3]);
  EXPECT_EQ(index.at("weight_map").at("half"), shard_names[4]);

  for (const std::string& path : {dir / "ckpt", dir / "ckpt/model.safetensors.index.json"}) {
    const CheckpointReader reader(path);
    EXPECT_EQ(reader.names().size(), tensors.size());
    for (const auto& [name, tensor] : tensors) EXPECT_TRUE(torch::equal(reader.tensor(name), tensor)) << name;
    EXPECT_EQ(reader.file_of("big"), dir / ("ckpt/" + shard_names[3]));
    EXPECT_EQ(reader.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  }

  // One shard when everything fits.
  save_sharded_safetensors(dir / "one", tensors, 1 << 20);
  EXPECT_TRUE(fs::exists(dir / "one/model-00001-of-00001.safetensors"));
  EXPECT_EQ(CheckpointReader(dir / "one").names().size(), tensors.size());
}

TEST(CheckpointReader, ReadsAnAdapterFileByPath) {
  TempDir dir;
  const std::string path = dir / "adapter_model.safetensors";
  save_safetensors(path, {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", torch::ones({4, 64})}});
  const CheckpointReader reader(path);
  EXPECT_EQ(reader.names(), (std::vector<std::string>{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"}));
  // PEFT's own file (the llama_tiny_lora fixture).
  const CheckpointReader peft(std::string(LIRE_TEST_FIXTURES) + "/hf/llama_tiny_lora/adapter_model.safetensors");
  EXPECT_EQ(peft.names(), (std::vector<std::string>{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                                                    "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                                                    "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
                                                    "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"}));
  EXPECT_EQ(peft.tensor("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight").sizes().vec(),
            (std::vector<int64_t>{32, 4}));
  // A folder holding only the adapter is not a model checkpoint.
  const std::string msg = lire::testing::error_message<Error>([&] { CheckpointReader{dir.path()}; });
  EXPECT_THAT(msg, AllOf(StartsWith(dir.path() + ": no checkpoint in this folder: looked for model.safetensors and "
                                                 "model.safetensors.index.json"),
                         HasSubstr("adapter_model.safetensors")));
}

// ------------------------------------------------------------ errors

TEST(CheckpointReaderErrors, FolderWithoutACheckpoint) {
  TempDir dir;
  EXPECT_EQ(lire::testing::error_message<Error>([&] { CheckpointReader{dir.path()}; }),
            dir.path() + ": no checkpoint in this folder: looked for model.safetensors and "
                         "model.safetensors.index.json; it holds no .safetensors files");
  EXPECT_EQ(lire::testing::error_message<Error>([&] { CheckpointReader{dir / "nope"}; }),
            dir / "nope" + ": no such file or folder");
  EXPECT_THAT(lire::testing::error_message<Error>([&] { SafetensorsFile::open(dir.path()); }),
              StartsWith(dir.path() + ": not a regular file (a folder)"));
}

TEST(CheckpointReaderErrors, MissingShardAndMissingTensor) {
  TempDir dir;
  Named tensors = {{"a", torch::ones({4})}, {"b", torch::ones({4})}, {"c", torch::ones({4})}};
  save_sharded_safetensors(dir / "ckpt", tensors, 16);
  const std::string index_path = dir / "ckpt/model.safetensors.index.json";

  // A tensor the weight_map places in a shard that does not hold it.
  nlohmann::json index = nlohmann::json::parse(read_bytes(index_path));
  index["weight_map"]["model.extra.weight"] = "model-00002-of-00003.safetensors";
  write_bytes(index_path, index.dump());
  EXPECT_EQ(lire::testing::error_message<Error>([&] { CheckpointReader{dir / "ckpt"}; }),
            index_path + ": tensor 'model.extra.weight': the weight_map puts it in shard "
                         "'model-00002-of-00003.safetensors' but that file does not hold it");

  // A missing shard.
  index["weight_map"].erase("model.extra.weight");
  write_bytes(index_path, index.dump());
  fs::remove(dir / "ckpt/model-00003-of-00003.safetensors");
  EXPECT_EQ(lire::testing::error_message<Error>([&] { CheckpointReader{dir / "ckpt"}; }),
            index_path + ": shard 'model-00003-of-00003.safetensors' (holding 'c') is missing: " +
                (fs::path(index_path).parent_path() / "model-00003-of-00003.safetensors").string() +
                " does not exist");

  // Not an index.
  write_bytes(index_path, "{\"metadata\": {}}");
  EXPECT_THAT(lire::testing::error_message<Error>([&] { CheckpointReader{dir / "ckpt"}; }),
              StartsWith(index_path + ": expected a JSON object with a \"weight_map\""));
  write_bytes(index_path, "{oops");
  EXPECT_THAT(lire::testing::error_message<Error>([&] { CheckpointReader{dir / "ckpt"}; }),
              StartsWith(index_path + ": not valid JSON"));
}

TEST(CheckpointReaderErrors, UnknownTensorNamesGetASuggestion) {
  const CheckpointReader reader(kLlamaTiny);
  EXPECT_EQ(lire::testing::error_message<Error>([&] { reader.tensor("model.layers.0.self_attn.k_prj.weight"); }),
            kLlamaTiny + ": tensor 'model.layers.0.self_attn.k_prj.weight': not in the checkpoint; did you mean "
                         "model.layers.0.self_attn.k_proj.weight?");
  EXPECT_FALSE(reader.contains("nothing"));
  const auto file = SafetensorsFile::open(kLlamaTiny + "/model.safetensors");
  EXPECT_EQ(lire::testing::error_message<Error>([&] { file->tensor("lm_heda.weight"); }),
            kLlamaTiny + "/model.safetensors: tensor 'lm_heda.weight': not in this file; did you mean lm_head.weight?");
}

TEST(SafetensorsFileErrors, CorruptFilesNameTheFile) {
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  save_safetensors(path, {{"w", torch::ones({4})}});
  const std::string good = read_bytes(path);
  write_bytes(path, good.substr(0, good.size() - 1));  // truncated data
  EXPECT_THAT(lire::testing::error_message<Error>([&] { SafetensorsFile::open(path); }),
              StartsWith(path + ": tensor 'w': data_offsets [0,16] reach past the end of the file"));
  write_bytes(path, "");
  EXPECT_EQ(lire::testing::error_message<Error>([&] { SafetensorsFile::open(path); }),
            path + ": empty file, not a safetensors file");
  EXPECT_THAT(lire::testing::error_message<Error>([&] { SafetensorsFile::open(dir / "missing.safetensors"); }),
              StartsWith(dir / "missing.safetensors" + ": cannot open: "));
}

TEST(SafetensorsWriterErrors, BadInputsAreRejectedAndLeaveNoFile) {
  TempDir dir;
  const std::string path = dir / "w.safetensors";
  EXPECT_EQ(lire::testing::error_message<Error>(
                [&] { save_safetensors(path, {{"a", torch::ones({1})}, {"a", torch::ones({1})}}); }),
            "cannot write '" + path + "': tensor 'a': the name appears twice");
  EXPECT_EQ(lire::testing::error_message<Error>([&] { save_safetensors(path, {{"", torch::ones({1})}}); }),
            "cannot write '" + path + "': a tensor has an empty name");
  EXPECT_THAT(lire::testing::error_message<Error>(
                  [&] { save_safetensors(path, {{"c", torch::ones({2}, torch::kComplexFloat)}}); }),
              StartsWith("cannot write '" + path + "': tensor 'c': dtype ComplexFloat has no safetensors equivalent"));
  EXPECT_THAT(lire::testing::error_message<Error>([&] { save_safetensors(path, {{"u", torch::Tensor()}}); }),
              HasSubstr("tensor 'u': undefined tensor"));
  EXPECT_THAT(lire::testing::error_message<Error>(
                  [&] { save_safetensors(dir / "no/such/folder/x.safetensors", {{"a", torch::ones({1})}}); }),
              StartsWith("cannot write '" + dir / "no/such/folder/x.safetensors" + "': cannot create"));
  EXPECT_TRUE(fs::is_empty(dir.path()));
  EXPECT_THAT(lire::testing::error_message<Error>([&] {
                save_sharded_safetensors(dir / "s", {{"a", torch::ones({1})}, {"a", torch::ones({1})}}, 100);
              }),
              HasSubstr("tensor 'a': the name appears twice"));
  EXPECT_FALSE(fs::exists(dir / "s/model.safetensors.index.json"));
}

}  // namespace
}  // namespace lire::io

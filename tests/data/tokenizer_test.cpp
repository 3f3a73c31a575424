// The sentencepiece tokenizer against Hugging Face's LlamaTokenizer: exact ids
// for the strings HF encoded (tests/fixtures/hf/llama_tiny/tokens.json), decode
// round trips, special ids from the folder's JSON files, and folder errors.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lire/core/error.h"
#include "lire/data/sentencepiece.h"
#include "lire/data/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using lire::data::Tokenizer;

const std::string kFolder = std::string(LIRE_TEST_FIXTURES) + "/hf/llama_tiny";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return nlohmann::json::parse(in);
}

// A fresh temporary folder, removed at the end of the test.
struct TempFolder {
  fs::path path;
  TempFolder() {
    char name[] = "/tmp/lire_tokenizer_XXXXXX";
    path = mkdtemp(name);
  }
  ~TempFolder() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
  void copy_model(const std::string& as = "tokenizer.model") const {
    fs::copy_file(fs::path(kFolder) / "tokenizer.model", path / as);
  }
};

std::string error_of(const std::string& folder) {
  try {
    Tokenizer::from_folder(folder);
  } catch (const lire::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Tokenizer, MatchesHuggingFaceIdsExactly) {
  const Tokenizer tokenizer = Tokenizer::from_folder(kFolder);
  const auto reference = read_json(kFolder + "/tokens.json");
  ASSERT_EQ(reference["cases"].size(), 5u);
  for (const auto& c : reference["cases"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(text);
    const auto ids = tokenizer.encode(text);
    EXPECT_EQ(ids, c["ids_no_bos"].get<std::vector<std::int64_t>>());
    // With BOS, as HF's LlamaTokenizer (legacy and not) returns input_ids.
    std::vector<std::int64_t> with_bos;
    if (tokenizer.add_bos()) with_bos.push_back(tokenizer.bos_id());
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    EXPECT_EQ(with_bos, c["ids_with_bos"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(with_bos, c["hf_LlamaTokenizer_legacy_true"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(with_bos, c["hf_LlamaTokenizer_legacy_false"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(tokenizer.encode_pieces(text), c["pieces"].get<std::vector<std::string>>());
  }
}

TEST(Tokenizer, DecodeRoundTrips) {
  const Tokenizer tokenizer = Tokenizer::from_folder(kFolder);
  const auto reference = read_json(kFolder + "/tokens.json");
  for (const auto& c : reference["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), c["decoded"].get<std::string>());
    // BOS and EOS are dropped on decoding.
    std::vector<std::int64_t> ids = c["ids_with_bos"].get<std::vector<std::int64_t>>();
    ids.push_back(tokenizer.eos_id());
    EXPECT_EQ(tokenizer.decode(ids), text);
  }
  EXPECT_EQ(tokenizer.decode({}), "");
  EXPECT_TRUE(tokenizer.encode("").empty());
  EXPECT_THROW(tokenizer.decode({5, 512}), lire::DataError);
  EXPECT_THROW(tokenizer.decode({-1}), lire::DataError);
}

TEST(Tokenizer, SpecialIdsAndFlagsFromTheFolder) {
  const Tokenizer tokenizer = Tokenizer::from_folder(kFolder);
  EXPECT_EQ(tokenizer.bos_id(), 1);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  EXPECT_EQ(tokenizer.unk_id(), 0);
  EXPECT_EQ(tokenizer.pad_id(), -1);  // "pad_token": null, no pad_token_id in config.json
  EXPECT_EQ(tokenizer.vocab_size(), 512);
  EXPECT_EQ(tokenizer.sp_vocab_size(), 512);
  EXPECT_TRUE(tokenizer.add_bos());
  EXPECT_FALSE(tokenizer.add_eos());
}

TEST(Tokenizer, ModelAloneUsesLlamaDefaults) {
  TempFolder folder;
  folder.copy_model();
  const Tokenizer tokenizer = Tokenizer::from_folder(folder.path.string());
  EXPECT_TRUE(tokenizer.add_bos());
  EXPECT_FALSE(tokenizer.add_eos());
  EXPECT_EQ(tokenizer.bos_id(), 1);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  const Tokenizer direct = Tokenizer::from_model_file((folder.path / "tokenizer.model").string());
  EXPECT_EQ(direct.encode("Hello world"), tokenizer.encode("Hello world"));
}

TEST(Tokenizer, ConfigJsonIdsTakePrecedenceAndAddedTokensResolve) {
  TempFolder folder;
  folder.copy_model();
  folder.write("tokenizer_config.json", R"({
    "add_bos_token": false, "add_eos_token": true,
    "bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>",
    "pad_token": "[PAD]", "unk_token": "<unk>",
    "added_tokens_decoder": {"512": {"content": "[PAD]", "special": true},
                             "513": {"content": "<extra>", "special": false}}})");
  folder.write("config.json", R"({"eos_token_id": [7, 2], "bos_token_id": null})");
  const Tokenizer tokenizer = Tokenizer::from_folder(folder.path.string());
  EXPECT_FALSE(tokenizer.add_bos());
  EXPECT_TRUE(tokenizer.add_eos());
  EXPECT_EQ(tokenizer.bos_id(), 1);    // config.json null: the token string decides
  EXPECT_EQ(tokenizer.eos_id(), 7);    // config.json wins (first of a list)
  EXPECT_EQ(tokenizer.pad_id(), 512);  // an added token beyond the sp vocabulary
  EXPECT_EQ(tokenizer.vocab_size(), 514);
  // Added tokens decode to their text unless special.
  EXPECT_EQ(tokenizer.decode({512, 513}), "<extra>");
}

TEST(Tokenizer, SpecialTokenStringsInTextAreOrdinaryCharacters) {
  const Tokenizer tokenizer = Tokenizer::from_folder(kFolder);
  const auto ids = tokenizer.encode("a</s>b");
  for (const auto id : ids) EXPECT_NE(id, tokenizer.eos_id());
  EXPECT_EQ(tokenizer.decode(ids), "a</s>b");
}

TEST(Tokenizer, SpieceModelUsesT5Defaults) {
  TempFolder folder;
  folder.copy_model("spiece.model");
  const Tokenizer tokenizer = Tokenizer::from_folder(folder.path.string());
  EXPECT_FALSE(tokenizer.add_bos());
  EXPECT_TRUE(tokenizer.add_eos());
}

TEST(Tokenizer, FolderErrorsAreClear) {
  TempFolder folder;
  folder.write("tokenizer.json", "{}");
  EXPECT_THAT(error_of(folder.path.string()),
              HasSubstr("only tokenizer.json found; lire reads sentencepiece tokenizers (tokenizer.model / "
                        "spiece.model)"));
  TempFolder empty;
  EXPECT_THAT(error_of(empty.path.string()), HasSubstr("no tokenizer.model or spiece.model"));
  EXPECT_THAT(error_of(empty.path.string() + "/missing"), HasSubstr("no such directory"));

  TempFolder broken;
  broken.write("tokenizer.model", "not a model");
  EXPECT_THAT(error_of(broken.path.string()), HasSubstr("cannot load the sentencepiece model"));

  TempFolder bad_json;
  bad_json.copy_model();
  bad_json.write("tokenizer_config.json", "{\"add_bos_token\": ");
  EXPECT_THAT(error_of(bad_json.path.string()), HasSubstr("tokenizer_config.json: invalid JSON"));

  TempFolder bad_flag;
  bad_flag.copy_model();
  bad_flag.write("tokenizer_config.json", R"({"add_bos_token": "yes"})");
  EXPECT_THAT(error_of(bad_flag.path.string()), HasSubstr("'add_bos_token' must be true or false"));

  TempFolder unknown_token;
  unknown_token.copy_model();
  unknown_token.write("tokenizer_config.json", R"({"pad_token": "[PAD]"})");
  EXPECT_THAT(error_of(unknown_token.path.string()),
              HasSubstr("pad_token '[PAD]' is neither a piece of tokenizer.model nor an added token"));
}

// Training in process (the demo's tokenizer): sentencepiece's trainer logs,
// which must not crash a process that loads it deep-bound (see the shim).
TEST(Tokenizer, TrainsASentencepieceModelInProcess) {
  TempFolder dir;
  dir.write("corpus.txt", "sort: pear fig apple = apple fig pear\nsort: fig kiwi = fig kiwi\n");
  lire::data::train_sentencepiece("--input=" + (dir.path / "corpus.txt").string() + " --model_prefix=" +
                                  (dir.path / "tokenizer").string() +
                                  " --model_type=word --vocab_size=20 --hard_vocab_limit=false"
                                  " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=1");
  const auto tokenizer = Tokenizer::from_model_file((dir.path / "tokenizer.model").string());
  EXPECT_EQ(tokenizer.bos_id(), 1);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  EXPECT_EQ(tokenizer.vocab_size(), 9);  // 3 specials, then sort: = pear fig apple kiwi (a soft limit of 20)
  const auto ids = tokenizer.encode("sort: kiwi apple =");
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(tokenizer.decode(ids), "sort: kiwi apple =");
  EXPECT_THROW(lire::data::train_sentencepiece("--input=" + (dir.path / "missing.txt").string() +
                                               " --model_prefix=" + (dir.path / "m").string() + " --vocab_size=10"),
               lire::Error);
}

}  // namespace

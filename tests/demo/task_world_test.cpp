// The demo's task world: deterministic files, disjoint prompt sets, a model
// folder that loads, a tokenizer that round-trips the task text.
#include "lire/demo/task_world.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/data/tokenizer.h"
#include "lire/io/hf_config.h"
#include "lire/models/weights.h"
#include "lire/rewards/reward_source.h"
#include "support/error_message.h"
#include "support/temp_dir.h"

namespace lire::demo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

// Small enough to write in well under a second.
TaskWorldOptions small_world(std::uint64_t seed = 3) {
  TaskWorldOptions o;
  o.seed = seed;
  o.train_prompts = 40;
  o.eval_prompts = 20;
  o.sft_lists = 60;
  o.hidden_size = 32;
  o.heads = 2;
  o.layers = 1;
  return o;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// relative path -> content of every file under `root`.
std::map<std::string, std::string> files_of(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = read_file(e.path());
  return out;
}

std::string sorted_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  std::sort(words.begin(), words.end());
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

TEST(TaskWorld, SortExample) {
  const auto e = sort_example({"pear", "fig", "apple"});
  EXPECT_EQ(e.prompt, "sort: pear fig apple =");
  EXPECT_EQ(e.reference, "apple fig pear");
  EXPECT_EQ(sort_example({"peach", "pea", "pear"}).reference, "pea peach pear");
  const auto& lexicon = default_lexicon();
  EXPECT_EQ(lexicon.size(), 32u);
  EXPECT_EQ(std::set<std::string>(lexicon.begin(), lexicon.end()).size(), lexicon.size());
}

TEST(TaskWorld, SameSeedSameFilesOtherSeedOtherFiles) {
  lire::testing::TempDir a("world_a"), b("world_b"), c("world_c");
  write_task_world(a.path(), small_world(3));
  write_task_world(b.path(), small_world(3));
  write_task_world(c.path(), small_world(4));
  const auto fa = files_of(a.path()), fb = files_of(b.path()), fc = files_of(c.path());
  for (const char* name : {"data/sft.jsonl", "data/prompts.jsonl", "data/eval.jsonl", "tokenizer/corpus.txt",
                           "tokenizer/tokenizer.model", "model-init/config.json", "model-init/model.safetensors",
                           "model-init/tokenizer.model", "model-init/tokenizer_config.json", "world.json"})
    EXPECT_TRUE(fa.count(name)) << name;
  ASSERT_EQ(fa.size(), fb.size());
  for (const auto& [name, content] : fa) EXPECT_TRUE(content == fb.at(name)) << name << " differs for one seed";
  for (const char* name : {"data/sft.jsonl", "data/prompts.jsonl", "data/eval.jsonl", "model-init/model.safetensors"})
    EXPECT_NE(fa.at(name), fc.at(name)) << name << " is the same for two seeds";
}

TEST(TaskWorld, PromptSetsAreDistinctAndEvalIsHeldOut) {
  lire::testing::TempDir dir("world");
  const auto o = small_world();
  write_task_world(dir.path(), o);
  const auto sft = read_jsonl(fs::path(dir.path()) / "data/sft.jsonl");
  const auto train = read_jsonl(fs::path(dir.path()) / "data/prompts.jsonl");
  const auto eval = read_jsonl(fs::path(dir.path()) / "data/eval.jsonl");
  ASSERT_EQ(sft.size(), 60u);
  ASSERT_EQ(train.size(), 40u);
  ASSERT_EQ(eval.size(), 20u);
  std::set<std::string> seen_sets, eval_sets, train_prompts, sft_prompts, ids;
  for (const auto& r : eval) {
    EXPECT_TRUE(eval_sets.insert(r["reference"].get<std::string>()).second);
    ids.insert(r["id"].get<std::string>());
  }
  for (const auto& r : train) {
    const auto prompt = r["prompt"].get<std::string>();
    EXPECT_TRUE(train_prompts.insert(prompt).second) << "repeated train prompt " << prompt;
    EXPECT_FALSE(eval_sets.count(r["reference"].get<std::string>())) << "eval word set in train: " << prompt;
    ids.insert(r["id"].get<std::string>());
  }
  for (const auto& r : sft) {
    const auto prompt = r["prompt"].get<std::string>();
    EXPECT_TRUE(sft_prompts.insert(prompt).second) << "repeated SFT prompt " << prompt;
    EXPECT_FALSE(eval_sets.count(r["reference"].get<std::string>())) << "eval word set in SFT: " << prompt;
    // Without noise the single response is the reference; both are the prompt's words in order.
    ASSERT_EQ(r["responses"].size(), 1u);
    EXPECT_EQ(r["responses"][0], r["reference"]);
    EXPECT_EQ(r["rewards"], json::array({1.0}));
    EXPECT_EQ(r["human"], json::array({true}));
    ids.insert(r["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), 120u);  // ids unique across files
  for (const auto* set : {&train, &eval}) {
    for (const auto& r : *set) {
      const auto prompt = r["prompt"].get<std::string>();
      ASSERT_THAT(prompt, ::testing::StartsWith("sort: "));
      const auto words = prompt.substr(6, prompt.size() - 8);  // between "sort: " and " ="
      EXPECT_EQ(sorted_words(words), r["reference"].get<std::string>());
      const auto n = std::count(words.begin(), words.end(), ' ') + 1;
      EXPECT_GE(n, o.min_words);
      EXPECT_LE(n, o.max_words);
    }
  }
}

TEST(TaskWorld, SftNoiseSwapsAdjacentWords) {
  lire::testing::TempDir dir("world");
  auto o = small_world();
  o.sft_noise = 0.5;
  write_task_world(dir.path(), o);
  int noisy = 0;
  for (const auto& r : read_jsonl(fs::path(dir.path()) / "data/sft.jsonl")) {
    const auto response = r["responses"][0].get<std::string>(), reference = r["reference"].get<std::string>();
    if (response == reference) continue;
    ++noisy;
    EXPECT_EQ(sorted_words(response), reference);  // the same words, two of them swapped
    const double f = rewards::rouge_l_f1(response, reference, true);
    EXPECT_GT(f, 0.6);
    EXPECT_LT(f, 1.0);
  }
  EXPECT_GT(noisy, 15);
  EXPECT_LT(noisy, 45);
}

TEST(TaskWorld, ModelFolderLoadsAndTokenizerRoundTrips) {
  lire::testing::TempDir dir("world");
  const auto o = small_world();
  const auto summary = write_task_world(dir.path(), o);
  const std::string folder = (fs::path(dir.path()) / "model-init").string();

  const auto tokenizer = data::Tokenizer::from_folder(folder);
  EXPECT_EQ(tokenizer.bos_id(), 1);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  EXPECT_EQ(tokenizer.unk_id(), 0);
  EXPECT_EQ(tokenizer.vocab_size(), summary.vocab_size);
  const auto config = io::read_llama_config(folder);
  EXPECT_EQ(config.vocab_size, summary.vocab_size);
  EXPECT_EQ(config.bos_token_id, 1);
  EXPECT_EQ(config.eos_token_ids, std::vector<std::int64_t>{2});
  EXPECT_EQ(config.torch_dtype, "float32");
  EXPECT_EQ(config.hidden_size, 32);
  EXPECT_EQ(config.intermediate_size, 96);  // 8/3 * 32 rounded up to 16

  // Every lexicon word is one piece; the task text round-trips with no <unk>.
  for (std::int64_t i = 0; i < o.lexicon_size; ++i) {
    const auto& word = default_lexicon()[static_cast<std::size_t>(i)];
    EXPECT_EQ(tokenizer.encode_pieces(word), std::vector<std::string>{"\xE2\x96\x81" + word}) << word;
  }
  for (const char* file : {"data/sft.jsonl", "data/prompts.jsonl", "data/eval.jsonl"}) {
    for (const auto& r : read_jsonl(fs::path(dir.path()) / file)) {
      for (const char* key : {"prompt", "reference"}) {
        const auto text = r[key].get<std::string>();
        const auto ids = tokenizer.encode(text);
        EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer.unk_id()), 0) << text;
        EXPECT_EQ(tokenizer.decode(ids), text);
      }
    }
  }

  // lire's loader takes the folder as it is; weights follow HF's init.
  auto model = models::load_causal_lm(folder, {"fp32", "cpu", ""});
  std::int64_t parameters = 0;
  for (const auto& p : model->named_parameters()) {
    parameters += p.value().numel();
    const auto& name = p.key();
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0) {
      EXPECT_TRUE(torch::all(p.value() == 1).item<bool>()) << name;
    } else {
      EXPECT_NEAR(p.value().mean().item<double>(), 0.0, 0.01) << name;
      EXPECT_NEAR(p.value().std().item<double>(), 0.02, 0.004) << name;
    }
  }
  EXPECT_EQ(parameters, summary.parameters);
  torch::NoGradGuard no_grad;
  const auto ids = tokenizer.encode("sort: pear fig apple =");
  auto input = torch::tensor(ids, torch::kLong).unsqueeze(0);
  const auto logits = model->logits(model->forward(input));
  EXPECT_EQ(logits.sizes(), (std::vector<std::int64_t>{1, static_cast<std::int64_t>(ids.size()), summary.vocab_size}));
}

TEST(TaskWorld, OptionErrorsNameTheFlag) {
  const auto error = [](auto change) {
    auto o = small_world();
    change(o);
    return lire::testing::error_message<ConfigError>([&] { make_task_world_data(o); });
  };
  EXPECT_THAT(error([](auto& o) { o.lexicon_size = 40; }), HasSubstr("--lexicon-size 40"));
  EXPECT_THAT(error([](auto& o) { o.max_words = 2; }), HasSubstr("--max-words 2"));
  EXPECT_THAT(error([](auto& o) { o.hidden_size = 30; o.heads = 4; }), HasSubstr("--hidden 30"));
  EXPECT_THAT(error([](auto& o) { o.sft_noise = 1.0; }), HasSubstr("--sft-noise"));
  // 4 words, 2-2 words per prompt: 6 word sets, 12 prompts.
  EXPECT_THAT(error([](auto& o) { o.lexicon_size = 4; o.min_words = 2; o.max_words = 2; o.eval_prompts = 7; }),
              HasSubstr("--eval-prompts 7: the lexicon of 4 words"));
}

}  // namespace
}  // namespace lire::demo

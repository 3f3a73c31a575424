// The demo's task world (see the header): prompt sets, tokenizer, random-init
// Llama. Everything is drawn from std::mt19937_64 streams derived from the
// seed (portable_random.h), never from LibTorch's generator, so the files are
// the same on every platform and LibTorch build.
#include "lire/demo/task_world.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/config/config_tree.h"
#include "lire/core/error.h"
#include "lire/core/portable_random.h"
#include "lire/data/sentencepiece.h"
#include "lire/io/hf_config.h"
#include "lire/io/safetensors.h"
#include "lire/models/llama.h"

namespace lire::demo {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

// Independent random streams of one seed (prompt sets, noise, weights).
enum Stream : std::uint64_t { kEvalStream = 1, kSftStream = 2, kTrainStream = 3, kNoiseStream = 4, kWeightStream = 5 };

std::mt19937_64 stream(std::uint64_t seed, Stream which) {
  return std::mt19937_64(splitmix64(splitmix64(seed) + static_cast<std::uint64_t>(which)));
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// n distinct words of the lexicon's first `size`, in random order.
std::vector<std::string> draw_words(std::mt19937_64& rng, const TaskWorldOptions& o) {
  const auto& lexicon = default_lexicon();
  const auto n = static_cast<std::size_t>(
      o.min_words + static_cast<std::int64_t>(uniform_below(rng, static_cast<std::uint64_t>(o.max_words - o.min_words + 1))));
  std::vector<std::size_t> index(static_cast<std::size_t>(o.lexicon_size));
  for (std::size_t i = 0; i < index.size(); ++i) index[i] = i;
  std::vector<std::string> words;
  for (std::size_t i = 0; i < n; ++i) {  // partial Fisher-Yates
    const std::size_t j = i + uniform_below(rng, index.size() - i);
    std::swap(index[i], index[j]);
    words.push_back(lexicon[index[i]]);
  }
  return words;
}

// `count` prompts from `rng`: distinct prompt texts (or distinct word sets
// with `distinct_sets`), none of whose word set is in `excluded`.
std::vector<SortExample> draw_prompts(std::mt19937_64& rng, const TaskWorldOptions& o, std::int64_t count,
                                      bool distinct_sets, const std::set<std::string>& excluded,
                                      const char* option) {
  std::vector<SortExample> out;
  std::set<std::string> seen;
  const std::int64_t max_attempts = 100 * count + 10000;
  for (std::int64_t attempt = 0; static_cast<std::int64_t>(out.size()) < count; ++attempt) {
    if (attempt >= max_attempts)
      throw ConfigError(str(option, " ", count, ": the lexicon of ", o.lexicon_size, " words with ", o.min_words, "-",
                            o.max_words, " words per prompt has too few distinct prompts for it (found ", out.size(),
                            "); lower it or raise --lexicon-size / --max-words"));
    auto example = sort_example(draw_words(rng, o));
    if (excluded.count(example.reference)) continue;
    if (!seen.insert(distinct_sets ? example.reference : example.prompt).second) continue;
    out.push_back(std::move(example));
  }
  return out;
}

constexpr double kPi = 3.14159265358979323846;

// A standard normal from two uniforms (Box-Muller), portable unlike std::normal_distribution.
double standard_normal(std::mt19937_64& rng) {
  const double u1 = 1.0 - uniform_unit(rng);  // (0, 1]
  const double u2 = uniform_unit(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

void write_text(const fs::path& path, const std::string& text) { config::write_file_atomically(path.string(), text); }

std::string jsonl(const std::vector<ordered_json>& records) {
  std::string out;
  for (const auto& r : records) out += r.dump() + "\n";
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(str(path.string(), ": cannot read"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ordered_json llama_config_json(const TaskWorldOptions& o, std::int64_t vocab_size) {
  const std::int64_t kv_heads = o.kv_heads > 0 ? o.kv_heads : o.heads;
  const std::int64_t intermediate =
      o.intermediate_size > 0 ? o.intermediate_size : (8 * o.hidden_size / 3 + 15) / 16 * 16;
  ordered_json c;
  c["architectures"] = {"LlamaForCausalLM"};
  c["attention_bias"] = false;
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = 1;
  c["eos_token_id"] = 2;
  c["head_dim"] = o.hidden_size / o.heads;
  c["hidden_act"] = "silu";
  c["hidden_size"] = o.hidden_size;
  c["initializer_range"] = o.initializer_range;
  c["intermediate_size"] = intermediate;
  c["max_position_embeddings"] = o.max_position_embeddings;
  c["mlp_bias"] = false;
  c["model_type"] = "llama";
  c["num_attention_heads"] = o.heads;
  c["num_hidden_layers"] = o.layers;
  c["num_key_value_heads"] = kv_heads;
  c["pretraining_tp"] = 1;
  c["rms_norm_eps"] = 1e-6;
  c["rope_scaling"] = nullptr;
  c["rope_theta"] = 10000.0;
  c["tie_word_embeddings"] = false;
  c["torch_dtype"] = "float32";
  c["use_cache"] = true;
  c["vocab_size"] = vocab_size;
  return c;
}

// HF's LlamaTokenizer files for a sentencepiece model with <unk>=0, <s>=1, </s>=2 and no pad.
ordered_json tokenizer_config_json(std::int64_t max_length) {
  ordered_json special;
  for (const auto& [id, content] : std::vector<std::pair<std::string, std::string>>{
           {"0", "<unk>"}, {"1", "<s>"}, {"2", "</s>"}})
    special[id] = {{"content", content}, {"lstrip", false}, {"normalized", false},
                   {"rstrip", false},    {"single_word", false}, {"special", true}};
  ordered_json c;
  c["add_bos_token"] = true;
  c["add_eos_token"] = false;
  c["added_tokens_decoder"] = special;
  c["bos_token"] = "<s>";
  c["clean_up_tokenization_spaces"] = false;
  c["eos_token"] = "</s>";
  c["legacy"] = true;
  c["model_max_length"] = max_length;
  c["pad_token"] = nullptr;
  c["sp_model_kwargs"] = ordered_json::object();
  c["tokenizer_class"] = "LlamaTokenizer";
  c["unk_token"] = "<unk>";
  return c;
}

ordered_json special_tokens_map_json() {
  ordered_json m;
  for (const auto& [key, content] : std::vector<std::pair<std::string, std::string>>{
           {"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}})
    m[key] = {{"content", content}, {"lstrip", false}, {"normalized", false}, {"rstrip", false}, {"single_word", false}};
  return m;
}

// Trains the tokenizer on `corpus` into `folder`/tokenizer.model; returns its size.
std::int64_t train_tokenizer(const fs::path& folder, const std::string& corpus, const TaskWorldOptions& o) {
  // <unk> <s> </s>, "sort:", "=" and the lexicon: every word of the corpus.
  const std::int64_t vocab = o.vocab_size > 0 ? o.vocab_size : o.lexicon_size + 5;
  write_text(folder / "corpus.txt", corpus);
  {
    // sentencepiece stores the --input and --model_prefix arguments in the
    // model; relative to the folder they are the same wherever it is, so the
    // file is byte-identical across output paths (hence the brief chdir).
    struct WorkingDirectory {
      fs::path saved = fs::current_path();
      explicit WorkingDirectory(const fs::path& to) { fs::current_path(to); }
      ~WorkingDirectory() {
        std::error_code ec;
        fs::current_path(saved, ec);
      }
    } in_folder(folder);
    data::train_sentencepiece(str("--input=corpus.txt --model_prefix=tokenizer --model_type=word --vocab_size=", vocab,
                                  " --hard_vocab_limit=false --normalization_rule_name=identity"
                                  " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1"
                                  " --num_threads=1 --input_sentence_size=0 --shuffle_input_sentence=false"));
  }
  data::SentencePieceModel model((folder / "tokenizer.model").string());
  LIRE_CHECK(model.unk_id() == 0 && model.bos_id() == 1 && model.eos_id() == 2,
             folder.string(), "/tokenizer.model: expected <unk>=0 <s>=1 </s>=2");
  return model.piece_size();
}

// Random-init LlamaForCausalLM as HF's _init_weights: normal(0, std) for linear
// and embedding weights, ones for RMSNorm weights. Returns the parameter count.
std::int64_t write_model(const fs::path& folder, const ordered_json& config_json, const TaskWorldOptions& o) {
  const io::LlamaConfig config = io::parse_llama_config(nlohmann::json::parse(config_json.dump()),
                                                        (folder / "config.json").string());
  torch::NoGradGuard no_grad;
  models::LlamaForCausalLM model(config, torch::TensorOptions().dtype(torch::kFloat32));
  auto rng = stream(o.seed, kWeightStream);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::int64_t count = 0;
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    torch::Tensor t = p.value().detach().contiguous();
    const bool norm = name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    float* data = t.data_ptr<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      data[i] = norm ? 1.0f : static_cast<float>(o.initializer_range * standard_normal(rng));
    tensors.emplace_back(name, t);
    count += t.numel();
  }
  io::save_safetensors((folder / "model.safetensors").string(), tensors);
  return count;
}

}  // namespace

const std::vector<std::string>& default_lexicon() {
  static const std::vector<std::string> words = {
      "apple", "bean", "corn", "date", "fig",  "grape", "kiwi", "lemon", "lime", "mango", "melon",
      "nut",   "oat",  "olive", "pea", "peach", "pear", "plum", "rice",  "rye",  "sage",  "salt",
      "tea",   "yam",  "egg",  "ham",  "jam",  "leek",  "soy",  "tofu",  "bread", "cake"};
  return words;
}

SortExample sort_example(const std::vector<std::string>& words) {
  std::vector<std::string> sorted = words;
  std::sort(sorted.begin(), sorted.end());
  return {"sort: " + join(words) + " =", join(sorted)};
}

void validate(const TaskWorldOptions& o) {
  const auto max_lexicon = static_cast<std::int64_t>(default_lexicon().size());
  if (o.lexicon_size < 4 || o.lexicon_size > max_lexicon)
    throw ConfigError(str("--lexicon-size ", o.lexicon_size, ": must be in [4, ", max_lexicon, "]"));
  if (o.min_words < 2 || o.max_words < o.min_words || o.max_words > o.lexicon_size)
    throw ConfigError(str("--min-words ", o.min_words, " / --max-words ", o.max_words,
                          ": need 2 <= min-words <= max-words <= lexicon-size (", o.lexicon_size, ")"));
  if (o.train_prompts < 1) throw ConfigError("--train-prompts: must be >= 1");
  if (o.eval_prompts < 1) throw ConfigError("--eval-prompts: must be >= 1");
  if (o.sft_lists < 1) throw ConfigError("--sft-lists: must be >= 1");
  if (!(o.sft_noise >= 0 && o.sft_noise < 1)) throw ConfigError(str("--sft-noise ", o.sft_noise, ": must be in [0, 1)"));
  if (o.vocab_size < 0) throw ConfigError("--vocab-size: must be >= 0 (0 = automatic)");
  if (o.hidden_size < 1 || o.heads < 1 || o.hidden_size % o.heads != 0)
    throw ConfigError(str("--hidden ", o.hidden_size, " / --heads ", o.heads, ": hidden must be a positive multiple of heads"));
  const std::int64_t kv = o.kv_heads > 0 ? o.kv_heads : o.heads;
  if (o.kv_heads < 0 || o.heads % kv != 0)
    throw ConfigError(str("--kv-heads ", o.kv_heads, ": must divide --heads ", o.heads, " (0 = heads)"));
  if ((o.hidden_size / o.heads) % 2 != 0)
    throw ConfigError(str("--hidden ", o.hidden_size, " / --heads ", o.heads, ": the head size must be even (rotary)"));
  if (o.layers < 1) throw ConfigError("--layers: must be >= 1");
  if (o.intermediate_size < 0) throw ConfigError("--intermediate: must be >= 0 (0 = automatic)");
  // BOS + "sort:" + words + "=" take at most 2 * max_words + 4 tokens, the response as many.
  if (o.max_position_embeddings < 4 * o.max_words + 8)
    throw ConfigError(str("--max-positions ", o.max_position_embeddings, ": must be >= ", 4 * o.max_words + 8,
                          " for prompts and responses of ", o.max_words, " words"));
  if (!(o.initializer_range > 0)) throw ConfigError("--init-std: must be > 0");
}

TaskWorldData make_task_world_data(const TaskWorldOptions& o) {
  validate(o);
  TaskWorldData d;
  auto eval_rng = stream(o.seed, kEvalStream);
  d.eval = draw_prompts(eval_rng, o, o.eval_prompts, true, {}, "--eval-prompts");
  std::set<std::string> eval_sets;
  for (const auto& e : d.eval) eval_sets.insert(e.reference);
  auto sft_rng = stream(o.seed, kSftStream);
  d.sft = draw_prompts(sft_rng, o, o.sft_lists, false, eval_sets, "--sft-lists");
  auto train_rng = stream(o.seed, kTrainStream);
  d.train = draw_prompts(train_rng, o, o.train_prompts, false, eval_sets, "--train-prompts");
  return d;
}

TaskWorldSummary write_task_world(const std::string& output, const TaskWorldOptions& o) {
  const TaskWorldData d = make_task_world_data(o);
  const fs::path root(output);
  std::error_code ec;
  fs::create_directories(root / "data", ec);
  if (ec) throw Error(str(output, "/data: cannot create (", ec.message(), ")"));

  // Data files.
  const auto id = [](const char* prefix, std::size_t i) {
    std::string n = std::to_string(i);
    return str(prefix, "-", std::string(n.size() < 5 ? 5 - n.size() : 0, '0'), n);
  };
  auto noise_rng = stream(o.seed, kNoiseStream);
  std::vector<ordered_json> sft, train, eval;
  for (std::size_t i = 0; i < d.sft.size(); ++i) {
    std::string response = d.sft[i].reference;
    if (o.sft_noise > 0 && uniform_unit(noise_rng) < o.sft_noise) {  // swap two adjacent words
      std::vector<std::string> words;
      std::istringstream in(response);
      for (std::string w; in >> w;) words.push_back(w);
      const std::size_t at = uniform_below(noise_rng, words.size() - 1);
      std::swap(words[at], words[at + 1]);
      response = join(words);
    }
    ordered_json r;
    r["id"] = id("sft", i);
    r["prompt"] = d.sft[i].prompt;
    r["responses"] = {response};
    r["rewards"] = {1.0};
    r["human"] = {true};
    r["reference"] = d.sft[i].reference;
    sft.push_back(std::move(r));
  }
  const auto prompt_records = [&](const std::vector<SortExample>& examples, const char* prefix,
                                  std::vector<ordered_json>& out) {
    for (std::size_t i = 0; i < examples.size(); ++i)
      out.push_back({{"id", id(prefix, i)}, {"prompt", examples[i].prompt}, {"reference", examples[i].reference}});
  };
  prompt_records(d.train, "train", train);
  prompt_records(d.eval, "eval", eval);
  write_text(root / "data" / "sft.jsonl", jsonl(sft));
  write_text(root / "data" / "prompts.jsonl", jsonl(train));
  write_text(root / "data" / "eval.jsonl", jsonl(eval));

  // Tokenizer: trained on the SFT and train texts and the whole lexicon.
  std::string corpus = join(std::vector<std::string>(default_lexicon().begin(),
                                                     default_lexicon().begin() + o.lexicon_size)) + "\n";
  for (const auto* set : {&d.sft, &d.train})
    for (const auto& e : *set) corpus += e.prompt + " " + e.reference + "\n";
  TaskWorldSummary summary;
  std::string tokenizer_model;
  config::write_folder_atomically((root / "tokenizer").string(), [&](const std::string& tmp) {
    summary.vocab_size = train_tokenizer(tmp, corpus, o);
  });
  tokenizer_model = read_file(root / "tokenizer" / "tokenizer.model");

  // Model folder.
  const ordered_json config = llama_config_json(o, summary.vocab_size);
  summary.model_folder = (root / "model-init").string();
  config::write_folder_atomically(summary.model_folder, [&](const std::string& tmp) {
    const fs::path dir(tmp);
    write_text(dir / "config.json", config.dump(2) + "\n");
    write_text(dir / "generation_config.json",
               ordered_json{{"bos_token_id", 1}, {"eos_token_id", 2}}.dump(2) + "\n");
    write_text(dir / "tokenizer.model", tokenizer_model);
    write_text(dir / "tokenizer_config.json", tokenizer_config_json(o.max_position_embeddings).dump(2) + "\n");
    write_text(dir / "special_tokens_map.json", special_tokens_map_json().dump(2) + "\n");
    summary.parameters = write_model(dir, config, o);
  });

  // What made these files.
  ordered_json world;
  world["task"] = "sort-words";
  world["reward"] = {{"type", "rouge-l"}, {"field", "reference"}};
  world["seed"] = o.seed;
  world["lexicon"] = std::vector<std::string>(default_lexicon().begin(), default_lexicon().begin() + o.lexicon_size);
  world["min_words"] = o.min_words;
  world["max_words"] = o.max_words;
  world["sft_lists"] = o.sft_lists;
  world["sft_noise"] = o.sft_noise;
  world["train_prompts"] = o.train_prompts;
  world["eval_prompts"] = o.eval_prompts;
  world["vocab_size"] = summary.vocab_size;
  world["parameters"] = summary.parameters;
  world["model"] = config;
  write_text(root / "world.json", world.dump(2) + "\n");
  return summary;
}

}  // namespace lire::demo

#include "lire/data/tokenizer.h"


#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lire/core/error.h"
#include "lire/data/sentencepiece.h"

namespace lire::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The JSON object in `path`, or null when the file does not exist.
json read_json_object(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return json();
  std::ifstream in(path);
  if (!in) throw ConfigError(str(path.string(), ": cannot open file"));
  std::stringstream text;
  text << in.rdbuf();
  json value;
  try {
    value = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw ConfigError(str(path.string(), ": invalid JSON (", e.what(), ")"));
  }
  if (!value.is_object()) throw ConfigError(str(path.string(), ": expected a JSON object"));
  return value;
}

// A special token as tokenizer_config.json / special_tokens_map.json write it:
// a string, an AddedToken object {"content": ...}, or null (no such token).
// Returns nullopt when the key is absent, "" for null.
std::optional<std::string> token_string(const json& config, const char* key, const fs::path& file) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const json& value = config[key];
  if (value.is_null()) return std::string();
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  throw ConfigError(str(file.string(), ": '", key, "' must be a string or {\"content\": ...}, got ",
                        value.dump()));
}

// config.json's bos_token_id etc.: an integer, a list of integers (the first
// is used), or null/absent (nullopt).
std::optional<std::int64_t> config_id(const json& config, const char* key, const fs::path& file) {
  if (!config.is_object() || !config.contains(key) || config[key].is_null()) return std::nullopt;
  const json* value = &config[key];
  if (value->is_array()) {
    if (value->empty()) return std::nullopt;
    value = &(*value)[0];
  }
  if (!value->is_number_integer())
    throw ConfigError(str(file.string(), ": '", key, "' must be an integer, got ", config[key].dump()));
  return value->get<std::int64_t>();
}

bool config_bool(const json& config, const char* key, bool fallback, const fs::path& file) {
  if (!config.is_object() || !config.contains(key) || config[key].is_null()) return fallback;
  if (!config[key].is_boolean())
    throw ConfigError(str(file.string(), ": '", key, "' must be true or false, got ", config[key].dump()));
  return config[key].get<bool>();
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_model_file(const std::string& model_path) {
  Tokenizer tokenizer;
  std::error_code ec;
  if (!fs::is_regular_file(model_path, ec))
    throw ConfigError(str(model_path, ": no such sentencepiece model file"));
  try {
    tokenizer.sp_ = std::make_unique<SentencePieceModel>(model_path);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  tokenizer.model_path_ = model_path;
  tokenizer.bos_id_ = tokenizer.sp_->bos_id();
  tokenizer.eos_id_ = tokenizer.sp_->eos_id();
  tokenizer.pad_id_ = tokenizer.sp_->pad_id();
  tokenizer.unk_id_ = tokenizer.sp_->unk_id();
  tokenizer.vocab_size_ = tokenizer.sp_->piece_size();
  return tokenizer;
}

Tokenizer Tokenizer::from_folder(const std::string& folder) {
  std::error_code ec;
  const fs::path dir(folder);
  if (!fs::is_directory(dir, ec)) throw ConfigError(str(folder, ": not a model folder (no such directory)"));
  fs::path model;
  for (const char* name : {"tokenizer.model", "spiece.model"}) {
    if (fs::is_regular_file(dir / name, ec)) {
      model = dir / name;
      break;
    }
  }
  if (model.empty()) {
    if (fs::exists(dir / "tokenizer.json", ec))
      throw ConfigError(str(folder,
                            ": only tokenizer.json found; lire reads sentencepiece tokenizers "
                            "(tokenizer.model / spiece.model)"));
    throw ConfigError(str(folder, ": no tokenizer.model or spiece.model (a sentencepiece tokenizer is needed "
                                  "to encode text)"));
  }
  Tokenizer tokenizer = from_model_file(model.string());

  const fs::path config_file = dir / "tokenizer_config.json";
  const fs::path map_file = dir / "special_tokens_map.json";
  const fs::path added_file = dir / "added_tokens.json";
  const fs::path model_config_file = dir / "config.json";
  const json config = read_json_object(config_file);
  const json special_map = read_json_object(map_file);
  const json added = read_json_object(added_file);
  const json model_config = read_json_object(model_config_file);

  // Flags: LlamaTokenizer adds BOS and no EOS by default; T5Tokenizer the reverse.
  std::string tokenizer_class;
  if (config.is_object() && config.contains("tokenizer_class") && config["tokenizer_class"].is_string())
    tokenizer_class = config["tokenizer_class"].get<std::string>();
  const bool t5 = tokenizer_class.rfind("T5Tokenizer", 0) == 0 ||
                  (tokenizer_class.empty() && model.filename() == "spiece.model");
  tokenizer.add_bos_ = config_bool(config, "add_bos_token", !t5, config_file);
  tokenizer.add_eos_ = config_bool(config, "add_eos_token", t5, config_file);

  // Tokens beyond (or overriding) the sentencepiece pieces.
  std::map<std::string, std::int64_t> added_by_content;
  if (config.is_object() && config.contains("added_tokens_decoder")) {
    const json& decoder = config["added_tokens_decoder"];
    if (!decoder.is_object())
      throw ConfigError(str(config_file.string(), ": 'added_tokens_decoder' must be an object"));
    for (const auto& [key, token] : decoder.items()) {
      std::int64_t id = -1;
      try {
        std::size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      if (id < 0 || !token.is_object() || !token.contains("content") || !token["content"].is_string())
        throw ConfigError(str(config_file.string(), ": added_tokens_decoder entry '", key,
                              "' must map an id to {\"content\": ...}"));
      const std::string content = token["content"].get<std::string>();
      const bool special = token.contains("special") && token["special"].is_boolean() && token["special"].get<bool>();
      added_by_content[content] = id;
      if (id >= tokenizer.sp_->piece_size()) tokenizer.added_tokens_[id] = {content, special};
    }
  }
  if (added.is_object()) {
    for (const auto& [content, id] : added.items()) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
        throw ConfigError(str(added_file.string(), ": '", content, "' must map to a non-negative integer id"));
      const std::int64_t value = id.get<std::int64_t>();
      added_by_content.emplace(content, value);
      if (value >= tokenizer.sp_->piece_size() && !tokenizer.added_tokens_.count(value))
        tokenizer.added_tokens_[value] = {content, false};
    }
  }

  // Special ids: config.json wins, then the token strings, then the sp model.
  struct Role {
    const char* token_key;
    const char* id_key;
    std::int64_t* id;
  };
  const Role roles[] = {{"bos_token", "bos_token_id", &tokenizer.bos_id_},
                        {"eos_token", "eos_token_id", &tokenizer.eos_id_},
                        {"pad_token", "pad_token_id", &tokenizer.pad_id_},
                        {"unk_token", "unk_token_id", &tokenizer.unk_id_}};
  for (const auto& role : roles) {
    if (const auto id = config_id(model_config, role.id_key, model_config_file)) {
      *role.id = *id;
      continue;
    }
    std::optional<std::string> text = token_string(config, role.token_key, config_file);
    fs::path source = config_file;
    if (!text) {
      text = token_string(special_map, role.token_key, map_file);
      source = map_file;
    }
    if (!text) continue;  // keep the sentencepiece model's id
    if (text->empty()) {
      *role.id = -1;
      continue;
    }
    if (const auto it = added_by_content.find(*text); it != added_by_content.end()) {
      *role.id = it->second;
      continue;
    }
    const int id = tokenizer.sp_->piece_to_id(*text);
    if (id == tokenizer.sp_->unk_id() && tokenizer.sp_->id_to_piece(id) != *text)
      throw ConfigError(str(source.string(), ": ", role.token_key, " '", *text,
                            "' is neither a piece of ", model.filename().string(), " nor an added token"));
    *role.id = id;
  }

  std::int64_t size = tokenizer.sp_->piece_size();
  if (!tokenizer.added_tokens_.empty()) size = std::max(size, tokenizer.added_tokens_.rbegin()->first + 1);
  for (const std::int64_t id : {tokenizer.bos_id_, tokenizer.eos_id_, tokenizer.pad_id_, tokenizer.unk_id_})
    size = std::max(size, id + 1);
  tokenizer.vocab_size_ = size;
  return tokenizer;
}

std::int64_t Tokenizer::sp_vocab_size() const { return sp_->piece_size(); }

std::vector<std::int64_t> Tokenizer::encode(const std::string& text) const {
  const std::vector<int> ids = sp_->encode(text);
  return std::vector<std::int64_t>(ids.begin(), ids.end());
}

std::vector<std::string> Tokenizer::encode_pieces(const std::string& text) const {
  return sp_->encode_pieces(text);
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
  const std::int64_t sp_size = sp_->piece_size();
  std::string out;
  std::vector<int> run;  // consecutive sentencepiece ids, decoded together
  auto flush = [&] {
    if (run.empty()) return;
    out += sp_->decode(run);
    run.clear();
  };
  for (const std::int64_t id : ids) {
    if (id < 0 || id >= vocab_size_)
      throw DataError(str("token id ", id, " is outside [0, ", vocab_size_, ") of ", model_path_));
    if (id < sp_size) {
      if (!sp_->is_control(static_cast<int>(id))) run.push_back(static_cast<int>(id));
      continue;
    }
    flush();
    const auto it = added_tokens_.find(id);
    if (it != added_tokens_.end() && !it->second.second) out += it->second.first;
  }
  flush();
  return out;
}

}  // namespace lire::data

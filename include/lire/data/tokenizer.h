// Tokenizer: a sentencepiece model as Hugging Face's (slow, legacy)
// LlamaTokenizer uses it, read from a model folder.
//
// encode(text) is exactly sentencepiece's encoding of the text: the model's
// normalizer spec applies (Llama: identity normalisation, add_dummy_prefix, so
// "Hello" becomes "▁H" "e" ... and every separately encoded text starts with a
// dummy-prefix space). HF's LlamaTokenizer with legacy=true produces the same
// ids (then prepends BOS when add_bos_token), which tests/data/tokenizer_test.cpp
// checks against ids written by HF transformers. Special-token strings inside
// the text ("</s>", "<s>") are NOT turned into special ids (HF would): they are
// encoded as ordinary characters, so data cannot inject control tokens.
//
// Special tokens and flags come from the folder:
//   tokenizer_config.json  add_bos_token (default true), add_eos_token (default
//                          false; T5Tokenizer: false / true), bos/eos/pad/unk
//                          token strings (plain or {"content": ...}), resolved
//                          through added_tokens_decoder, then the sp model;
//   special_tokens_map.json  token strings when tokenizer_config lacks them;
//   added_tokens.json     extra tokens beyond the sp vocabulary ({"[PAD]": 32000});
//   config.json           bos_token_id / eos_token_id / pad_token_id, which take
//                          precedence over everything above when present.
// A missing special token has id -1.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lire::data {
class SentencePieceModel;
}

namespace lire::data {

class Tokenizer {
 public:
  // Reads FOLDER/tokenizer.model (or spiece.model) and the JSON files above.
  // Throws ConfigError for a missing folder or model, a folder with only a
  // tokenizer.json (fast tokenizers are not supported), or malformed JSON.
  static Tokenizer from_folder(const std::string& folder);

  // A bare sentencepiece model file: special ids from the model, add_bos true,
  // add_eos false (Llama's defaults).
  static Tokenizer from_model_file(const std::string& model_path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text`, without BOS/EOS (see the file comment).
  std::vector<std::int64_t> encode(const std::string& text) const;
  // The pieces of `text` ("▁H", "e", "<0x0A>"), for diagnostics.
  std::vector<std::string> encode_pieces(const std::string& text) const;

  // Text of `ids`. Control tokens (BOS, EOS, pad) and special added tokens are
  // dropped; byte-fallback pieces are reassembled into UTF-8; the leading
  // dummy-prefix space is removed (as HF's decode does). An id outside
  // [0, vocab_size()) throws DataError.
  std::string decode(const std::vector<std::int64_t>& ids) const;

  std::int64_t bos_id() const { return bos_id_; }
  std::int64_t eos_id() const { return eos_id_; }
  std::int64_t pad_id() const { return pad_id_; }
  std::int64_t unk_id() const { return unk_id_; }
  // Number of ids the tokenizer can produce: the sentencepiece pieces plus any
  // added tokens beyond them (HF's len(tokenizer)).
  std::int64_t vocab_size() const { return vocab_size_; }
  // Number of sentencepiece pieces alone.
  std::int64_t sp_vocab_size() const;
  // add_bos_token / add_eos_token from tokenizer_config.json.
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // Where the model came from (for messages).
  const std::string& model_path() const { return model_path_; }

 private:
  Tokenizer();

  std::unique_ptr<SentencePieceModel> sp_;
  std::string model_path_;
  std::int64_t bos_id_ = -1;
  std::int64_t eos_id_ = -1;
  std::int64_t pad_id_ = -1;
  std::int64_t unk_id_ = -1;
  std::int64_t vocab_size_ = 0;
  bool add_bos_ = true;
  bool add_eos_ = false;
  // Tokens beyond the sentencepiece vocabulary: id -> (content, special).
  std::map<std::int64_t, std::pair<std::string, bool>> added_tokens_;
};

}  // namespace lire::data

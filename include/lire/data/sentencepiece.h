// A sentencepiece model, used through liblire_sentencepiece.so (see
// src/data/sentencepiece_shim.cpp for why it is loaded in isolation: Debian's
// sentencepiece carries a private protobuf that must not meet LibTorch's).
// The library is found through $LIRE_SENTENCEPIECE_LIBRARY, next to the
// running executable, or where the build put it.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace lire::data {

class SentencePieceModel {
 public:
  // Loads a .model file; throws lire::Error naming the file.
  explicit SentencePieceModel(const std::string& model_path);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;
  int piece_size() const;
  int piece_to_id(const std::string& piece) const;
  std::string id_to_piece(int id) const;
  bool is_control(int id) const;
  std::vector<int> encode(const std::string& text) const;
  std::vector<std::string> encode_pieces(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;

 private:
  std::string path_;
  void* handle_ = nullptr;
};

// Trains a model with sentencepiece's trainer (arguments as spm_train takes
// them, e.g. "--input=c.txt --model_prefix=m --vocab_size=512"); throws on failure.
void train_sentencepiece(const std::string& arguments);

// Where liblire_sentencepiece.so was loaded from (loads it if needed).
std::string sentencepiece_library_path();

}  // namespace lire::data

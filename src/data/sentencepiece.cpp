#include "lire/data/sentencepiece.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "lire/core/error.h"

#ifndef LIRE_SENTENCEPIECE_BUILD_PATH
#define LIRE_SENTENCEPIECE_BUILD_PATH ""
#endif

namespace lire::data {
namespace {

constexpr const char* kLibraryName = "liblire_sentencepiece.so";

struct Api {
  std::string path;
  int (*load)(const char*, void**, char**);
  void (*destroy)(void*);
  void (*free)(void*);
  int (*special)(void*, int);
  int (*piece_to_id)(void*, const char*, size_t);
  int (*id_to_piece)(void*, int, char**, size_t*);
  int (*is_control)(void*, int);
  int (*encode)(void*, const char*, size_t, int**, size_t*, char**);
  int (*encode_pieces)(void*, const char*, size_t, char**, size_t*, char**);
  int (*decode)(void*, const int*, size_t, char**, size_t*, char**);
  int (*train)(const char*, char**);
};

std::vector<std::string> candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("LIRE_SENTENCEPIECE_LIBRARY")) out.emplace_back(env);
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    const auto dir = std::filesystem::path(exe).parent_path();
    out.push_back((dir / kLibraryName).string());
    out.push_back((dir.parent_path() / kLibraryName).string());  // tests/ under the build folder
    out.push_back((dir.parent_path() / "lib" / kLibraryName).string());
  }
  if (*LIRE_SENTENCEPIECE_BUILD_PATH) out.emplace_back(LIRE_SENTENCEPIECE_BUILD_PATH);
  return out;
}

template <typename F>
void bind(void* lib, const char* name, F& f, const std::string& path) {
  f = reinterpret_cast<F>(::dlsym(lib, name));
  if (!f) throw Error(str(path, ": missing symbol ", name, " (a stale liblire_sentencepiece.so?)"));
}

const Api& api() {
  static std::once_flag once;
  static Api a;
  static std::string failure;
  std::call_once(once, [] {
    // RTLD_LOCAL keeps sentencepiece's private protobuf out of the global scope;
    // RTLD_DEEPBIND makes sentencepiece resolve protobuf to that copy. AddressSanitizer
    // rejects RTLD_DEEPBIND; its builds have no LibTorch, hence no second protobuf.
#if defined(__SANITIZE_ADDRESS__)
    const int flags = RTLD_NOW | RTLD_LOCAL;
#else
    const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
    std::string tried;
    for (const auto& path : candidates()) {
      if (!std::filesystem::exists(path)) {
        tried += "\n  " + path + " (absent)";
        continue;
      }
      void* lib = ::dlopen(path.c_str(), flags);
      if (!lib) {
        tried += "\n  " + path + " (" + ::dlerror() + ")";
        continue;
      }
      a.path = path;
      bind(lib, "lire_spm_load", a.load, path);
      bind(lib, "lire_spm_destroy", a.destroy, path);
      bind(lib, "lire_spm_free", a.free, path);
      bind(lib, "lire_spm_special", a.special, path);
      bind(lib, "lire_spm_piece_to_id", a.piece_to_id, path);
      bind(lib, "lire_spm_id_to_piece", a.id_to_piece, path);
      bind(lib, "lire_spm_is_control", a.is_control, path);
      bind(lib, "lire_spm_encode", a.encode, path);
      bind(lib, "lire_spm_encode_pieces", a.encode_pieces, path);
      bind(lib, "lire_spm_decode", a.decode, path);
      bind(lib, "lire_spm_train", a.train, path);
      return;
    }
    failure = str("cannot load ", kLibraryName, " (set LIRE_SENTENCEPIECE_LIBRARY to its path); tried:", tried);
  });
  if (a.load == nullptr) throw Error(failure);
  return a;
}

// Takes ownership of a message the library allocated.
std::string take(char* message) {
  std::string s = message ? message : "unknown error";
  api().free(message);
  return s;
}

}  // namespace

SentencePieceModel::SentencePieceModel(const std::string& model_path) : path_(model_path) {
  char* error = nullptr;
  if (api().load(model_path.c_str(), &handle_, &error) != 0)
    throw Error(str(model_path, ": cannot load the sentencepiece model (corrupt, truncated or not a sentencepiece "
                    "model file): ", take(error)));
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_) api().destroy(handle_);
}

int SentencePieceModel::bos_id() const { return api().special(handle_, 0); }
int SentencePieceModel::eos_id() const { return api().special(handle_, 1); }
int SentencePieceModel::pad_id() const { return api().special(handle_, 2); }
int SentencePieceModel::unk_id() const { return api().special(handle_, 3); }
int SentencePieceModel::piece_size() const { return api().special(handle_, 4); }

int SentencePieceModel::piece_to_id(const std::string& piece) const {
  return api().piece_to_id(handle_, piece.data(), piece.size());
}

std::string SentencePieceModel::id_to_piece(int id) const {
  char* piece = nullptr;
  size_t len = 0;
  api().id_to_piece(handle_, id, &piece, &len);
  std::string out(piece, len);
  api().free(piece);
  return out;
}

bool SentencePieceModel::is_control(int id) const { return api().is_control(handle_, id) != 0; }

std::vector<int> SentencePieceModel::encode(const std::string& text) const {
  int* ids = nullptr;
  size_t count = 0;
  char* error = nullptr;
  if (api().encode(handle_, text.data(), text.size(), &ids, &count, &error) != 0)
    throw Error(str(path_, ": encoding failed: ", take(error)));
  std::vector<int> out(ids, ids + count);
  api().free(ids);
  return out;
}

std::vector<std::string> SentencePieceModel::encode_pieces(const std::string& text) const {
  char* pieces = nullptr;
  size_t bytes = 0;
  char* error = nullptr;
  if (api().encode_pieces(handle_, text.data(), text.size(), &pieces, &bytes, &error) != 0)
    throw Error(str(path_, ": encoding failed: ", take(error)));
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    if (pieces[i] == '\0') {
      out.emplace_back(pieces + start, i - start);
      start = i + 1;
    }
  }
  api().free(pieces);
  return out;
}

std::string SentencePieceModel::decode(const std::vector<int>& ids) const {
  char* text = nullptr;
  size_t len = 0;
  char* error = nullptr;
  if (api().decode(handle_, ids.data(), ids.size(), &text, &len, &error) != 0)
    throw Error(str(path_, ": decoding failed: ", take(error)));
  std::string out(text, len);
  api().free(text);
  return out;
}

void train_sentencepiece(const std::string& arguments) {
  char* error = nullptr;
  if (api().train(arguments.c_str(), &error) != 0) throw Error(str("sentencepiece training failed: ", take(error)));
}

std::string sentencepiece_library_path() { return api().path; }

}  // namespace lire::data

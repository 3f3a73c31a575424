// liblire_sentencepiece.so: sentencepiece behind a C ABI, loaded by
// src/data/sentencepiece.cpp with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why: Debian's libsentencepiece.so.0 carries its own protobuf-lite 3.14
// (statically linked, symbols exported), while LibTorch needs the system's
// libprotobuf 3.21. Linked into one executable, sentencepiece's copies of
// protobuf's symbols interpose the system library's and the process crashes
// during static initialisation. Loaded locally and deep-bound, sentencepiece
// resolves protobuf to its own copy and LibTorch never sees it.
//
// Every function returns 0 on success; on failure it stores a malloc'd
// message in *error. Output buffers are malloc'd; free them with lire_spm_free.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace {

char* copy(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.data(), s.size() + 1);
  return out;
}

int fail(char** error, const std::string& message) {
  if (error) *error = copy(message);
  return 1;
}

// sentencepiece logs with `std::cerr << ...` (its LOG macro, e.g. the
// trainer's "Running command: ..." and progress lines). Deep-bound, its
// std::cerr is libstdc++'s own copy of the object, which is never constructed:
// the executable's copy (a copy relocation) is the one the runtime sets up. A
// log line would crash the process, so everything below FATAL is silenced,
// once, when the library is loaded; errors still come back as statuses.
}  // namespace
namespace sentencepiece::logging {
void SetMinLogLevel(int v);  // exported by libsentencepiece, not in its public headers
}  // namespace sentencepiece::logging
namespace {
const bool kLogsSilenced = [] {
  sentencepiece::logging::SetMinLogLevel(3);  // LOG_FATAL
  return true;
}();

sentencepiece::SentencePieceProcessor* sp(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int lire_spm_abi_version() { return 1; }

__attribute__((visibility("default"))) void lire_spm_free(void* p) { std::free(p); }

__attribute__((visibility("default"))) int lire_spm_load(const char* path, void** handle, char** error) {
  auto* processor = new sentencepiece::SentencePieceProcessor();
  const auto status = processor->Load(path);
  if (!status.ok()) {
    delete processor;
    return fail(error, status.ToString());
  }
  *handle = processor;
  return 0;
}

__attribute__((visibility("default"))) void lire_spm_destroy(void* handle) { delete sp(handle); }

// which: 0 bos, 1 eos, 2 pad, 3 unk, 4 piece count.
__attribute__((visibility("default"))) int lire_spm_special(void* handle, int which) {
  switch (which) {
    case 0: return sp(handle)->bos_id();
    case 1: return sp(handle)->eos_id();
    case 2: return sp(handle)->pad_id();
    case 3: return sp(handle)->unk_id();
    default: return sp(handle)->GetPieceSize();
  }
}

__attribute__((visibility("default"))) int lire_spm_piece_to_id(void* handle, const char* piece, size_t len) {
  return sp(handle)->PieceToId(std::string(piece, len));
}

__attribute__((visibility("default"))) int lire_spm_id_to_piece(void* handle, int id, char** piece, size_t* len) {
  const std::string p = sp(handle)->IdToPiece(id);
  *piece = copy(p);
  *len = p.size();
  return 0;
}

__attribute__((visibility("default"))) int lire_spm_is_control(void* handle, int id) {
  return sp(handle)->IsControl(id) ? 1 : 0;
}

__attribute__((visibility("default"))) int lire_spm_encode(void* handle, const char* text, size_t len, int** ids,
                                                           size_t* count, char** error) {
  std::vector<int> out;
  const auto status = sp(handle)->Encode(std::string(text, len), &out);
  if (!status.ok()) return fail(error, status.ToString());
  *count = out.size();
  *ids = static_cast<int*>(std::malloc(sizeof(int) * (out.empty() ? 1 : out.size())));
  std::memcpy(*ids, out.data(), sizeof(int) * out.size());
  return 0;
}

// Pieces joined by '\0' (each piece is followed by one '\0').
__attribute__((visibility("default"))) int lire_spm_encode_pieces(void* handle, const char* text, size_t len,
                                                                  char** pieces, size_t* bytes, char** error) {
  std::vector<std::string> out;
  const auto status = sp(handle)->Encode(std::string(text, len), &out);
  if (!status.ok()) return fail(error, status.ToString());
  std::string joined;
  for (const auto& p : out) joined.append(p).push_back('\0');
  *bytes = joined.size();
  *pieces = static_cast<char*>(std::malloc(joined.size() + 1));
  std::memcpy(*pieces, joined.data(), joined.size());
  return 0;
}

__attribute__((visibility("default"))) int lire_spm_decode(void* handle, const int* ids, size_t count, char** text,
                                                           size_t* len, char** error) {
  std::string out;
  const auto status = sp(handle)->Decode(std::vector<int>(ids, ids + count), &out);
  if (!status.ok()) return fail(error, status.ToString());
  *text = copy(out);
  *len = out.size();
  return 0;
}

// sentencepiece's trainer with a command line such as
// "--input=corpus.txt --model_prefix=m --vocab_size=512 --model_type=bpe".
__attribute__((visibility("default"))) int lire_spm_train(const char* args, char** error) {
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) return fail(error, status.ToString());
  return 0;
}

}  // extern "C"

// Safetensors checkpoints (Hugging Face's format): a memory-mapped reader that
// hands out tensors without copying where dtype and alignment allow, sharded
// checkpoints through model.safetensors.index.json, and a writer whose files
// HF transformers and the `safetensors` library read back.
//
// The header is untrusted: safetensors_header.h validates it completely
// before any tensor is touched.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "lire/io/safetensors_header.h"

namespace lire::io {

class SafetensorsFile {
 public:
  // Maps the file (private, copy-on-write) and validates its header; errors
  // name the file.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const TensorEntry& entry(const std::string& name) const;  // throws naming file and tensor

  // The tensor, on CPU, in the file's dtype. Zero-copy (a view of the mapping
  // that keeps the file mapped while it lives) when the data is suitably
  // aligned for its dtype; otherwise a copy. Unknown names throw naming the
  // file and tensor (with a suggestion).
  //
  // The file is mapped MAP_PRIVATE and writable, so in-place ops on a
  // zero-copy tensor are safe: touched pages are copied by the kernel and
  // nothing ever reaches the file. Two calls for the same name share storage
  // (an in-place change to one shows in the other); clone() to get
  // independent memory. Zero-size tensors are fresh empty tensors. If the
  // file is truncated or rewritten in place by another process while mapped,
  // reading a tensor may fault (SIGBUS), as with any mmap reader; lire's own
  // writer replaces files by rename, which never affects existing mappings.
  torch::Tensor tensor(const std::string& name) const;

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

 private:
  SafetensorsFile() = default;
  std::string path_;
  SafetensorsHeader header_;
  std::map<std::string, std::size_t> index_;  // name -> position in header_.tensors
  void* map_ = nullptr;                        // MAP_PRIVATE mapping of the whole file (null if empty)
  std::size_t size_ = 0;
  bool zero_copy_ = true;  // false when only a read-only mapping could be made: tensor() copies
  std::weak_ptr<SafetensorsFile> self_;
};

// A checkpoint folder (or a single .safetensors file): model.safetensors, or
// model.safetensors.index.json and its shards (the index's weight_map is
// checked: every shard exists, no tensor is claimed twice, every mapped tensor
// is in its shard). Also reads adapter_model.safetensors when named directly.
class CheckpointReader {
 public:
  // `path`: a folder holding model.safetensors or model.safetensors.index.json,
  // a .safetensors file, or an index .json file.
  explicit CheckpointReader(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted, over all shards
  bool contains(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;  // as SafetensorsFile::tensor
  const TensorEntry& entry(const std::string& name) const;
  // Which file holds `name`.
  const std::string& file_of(const std::string& name) const;
  // The `__metadata__` of the first shard (e.g. {"format": "pt"}).
  std::map<std::string, std::string> metadata() const;

 private:
  std::string path_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::size_t> owner_;  // tensor name -> index in files_
  std::size_t owner_index(const std::string& name) const;  // throws naming the tensor (with a suggestion)
};

// Writes tensors (any device, contiguous or not; written in their dtype, in
// the given order) to `path` atomically (temp file + rename). Names must be
// unique and non-empty; dtypes must be representable (F64 F32 F16 BF16 I64 I32
// I16 I8 U8 BOOL). `metadata` goes into __metadata__ (HF writes {"format": "pt"}).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes a sharded checkpoint (model-00001-of-0000N.safetensors +
// model.safetensors.index.json with metadata.total_size) into `folder`,
// starting a new shard when one would exceed `max_shard_bytes` (a tensor larger
// than that gets a shard of its own). Always writes the index, even for one
// shard; shards are written first and the index last. Shard files of an
// earlier save with a different count are not removed.
void save_sharded_safetensors(const std::string& folder,
                              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              std::size_t max_shard_bytes);

}  // namespace lire::io

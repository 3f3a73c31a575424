// Safetensors reader (mmap, zero-copy where aligned), sharded checkpoints and
// the writer. The header is validated by parse_safetensors_header before any
// tensor byte is touched.
//
// Mapping: MAP_PRIVATE with PROT_READ | PROT_WRITE. Zero-copy tensors are
// views of that mapping, so an in-place op on one (param.mul_(2)) neither
// crashes nor reaches the file: the kernel copies the touched pages
// (copy-on-write). A changed page is private to the process, so two tensor()
// calls for the same name share storage and see each other's in-place
// changes. If the writable private mapping is refused (strict overcommit, a
// file larger than RAM + swap), the file is mapped read-only and every
// tensor() is a copy instead, so no tensor ever points at read-only memory.
#include "lire/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/config/config_tree.h"
#include "lire/core/error.h"
#include "lire/core/suggest.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lire's safetensors IO assumes a little-endian host (the format is little-endian)"
#endif

namespace lire::io {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

torch::ScalarType to_scalar_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::F64: return torch::kDouble;
    case Dtype::F32: return torch::kFloat;
    case Dtype::F16: return torch::kHalf;
    case Dtype::BF16: return torch::kBFloat16;
    case Dtype::I64: return torch::kLong;
    case Dtype::I32: return torch::kInt;
    case Dtype::I16: return torch::kShort;
    case Dtype::I8: return torch::kChar;
    case Dtype::U8: return torch::kByte;
    case Dtype::BOOL: return torch::kBool;
  }
  throw Error("invalid lire::io::Dtype");
}

bool from_scalar_type(torch::ScalarType type, Dtype* out) {
  switch (type) {
    case torch::kDouble: *out = Dtype::F64; return true;
    case torch::kFloat: *out = Dtype::F32; return true;
    case torch::kHalf: *out = Dtype::F16; return true;
    case torch::kBFloat16: *out = Dtype::BF16; return true;
    case torch::kLong: *out = Dtype::I64; return true;
    case torch::kInt: *out = Dtype::I32; return true;
    case torch::kShort: *out = Dtype::I16; return true;
    case torch::kChar: *out = Dtype::I8; return true;
    case torch::kByte: *out = Dtype::U8; return true;
    case torch::kBool: *out = Dtype::BOOL; return true;
    default: return false;
  }
}

std::string system_error(int error) { return std::strerror(error); }

// Writes all of [data, data + size) or returns the errno.
int write_all(int fd, const void* data, std::size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return 0;
}

// What save_safetensors needs to know about one tensor before writing it.
struct PlannedTensor {
  const std::string* name;
  const torch::Tensor* tensor;
  Dtype dtype;
  uint64_t bytes;
};

// Checks names and dtypes of tensors about to be written; errors name `path`.
std::vector<PlannedTensor> plan(const std::string& path,
                                const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::vector<PlannedTensor> planned;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    const auto fail = [&](const std::string& reason) {
      return Error(str("cannot write '", path, "': tensor '", name, "': ", reason));
    };
    if (name.empty()) throw Error(str("cannot write '", path, "': a tensor has an empty name"));
    if (name == "__metadata__") throw fail("the name is reserved by the format");
    if (!seen.insert(name).second) throw fail("the name appears twice");
    try {
      (void)nlohmann::json(name).dump();
    } catch (const nlohmann::json::exception&) {
      throw fail("the name is not valid UTF-8");
    }
    if (!tensor.defined()) throw fail("undefined tensor");
    if (tensor.layout() != torch::kStrided) throw fail("only dense (strided) tensors can be written");
    PlannedTensor p{&name, &tensor, Dtype::F32, 0};
    if (!from_scalar_type(tensor.scalar_type(), &p.dtype)) {
      throw fail(str("dtype ", tensor.scalar_type(), " has no safetensors equivalent lire writes (supported: ",
                     supported_dtype_names(), ")"));
    }
    p.bytes = static_cast<uint64_t>(tensor.numel()) * dtype_size(p.dtype);
    planned.push_back(p);
  }
  return planned;
}

// The 8-byte prefix and the header, padded with spaces so that 8 + N is a
// multiple of 8 (as the safetensors library writes it).
std::string header_bytes(const std::vector<PlannedTensor>& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.tensor->sizes().vec();
    entry["data_offsets"] = {offset, offset + t.bytes};
    header[*t.name] = std::move(entry);
    offset += t.bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + text;
}

// The .safetensors and index files in `folder` (for "what did you find" errors).
std::string checkpoint_like_files(const std::string& folder) {
  std::vector<std::string> found;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string ext = it->path().extension().string();
    if (ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".pth" ||
        name.find(".index.json") != std::string::npos) {
      found.push_back(name);
    }
  }
  if (found.empty()) return "it holds no .safetensors files";
  if (found.size() > 8) found.resize(8);
  return "it holds " + join_sorted(found) + " (.bin/.pt checkpoints are not supported; a PEFT adapter is read "
         "by naming its adapter_model.safetensors)";
}

}  // namespace

// ------------------------------------------------------------ SafetensorsFile

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->self_ = file;

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    throw Error(str(path, ": cannot open: ", system_error(error)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    throw Error(str(path, ": cannot stat: ", system_error(error)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(str(path, ": not a regular file", S_ISDIR(st.st_mode) ? " (a folder)" : ""));
  }
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ > 0) {
    void* map = ::mmap(nullptr, file->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      // A writable private mapping reserves commit charge; fall back to a
      // read-only one and hand out copies only.
      map = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      file->zero_copy_ = false;
    }
    if (map == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      throw Error(str(path, ": cannot map ", file->size_, " bytes: ", system_error(error)));
    }
    file->map_ = map;
  }
  ::close(fd);

  file->header_ = parse_safetensors_header(static_cast<const uint8_t*>(file->map_), file->size_, path);
  for (std::size_t i = 0; i < file->header_.tensors.size(); ++i) file->index_.emplace(file->header_.tensors[i].name, i);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, unused] : index_) out.push_back(name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) {
    throw Error(str(path_, ": tensor '", name, "': not in this file", did_you_mean(name, names())));
  }
  return header_.tensors[it->second];
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry& e = entry(name);
  const auto options = torch::TensorOptions().dtype(to_scalar_type(e.dtype)).device(torch::kCPU);
  if (e.byte_size() == 0) return torch::empty(e.shape, options);
  const uint64_t offset = header_.data_offset + e.begin;
  auto* data = static_cast<uint8_t*>(map_) + offset;
  if (zero_copy_ && offset % dtype_size(e.dtype) == 0) {
    std::shared_ptr<const SafetensorsFile> keep_mapped = self_.lock();
    return torch::from_blob(
        data, e.shape, [keep_mapped](void*) { (void)keep_mapped; }, options);
  }
  torch::Tensor copy = torch::empty(e.shape, options);
  std::memcpy(copy.data_ptr(), data, e.byte_size());
  return copy;
}

// ------------------------------------------------------------ CheckpointReader

CheckpointReader::CheckpointReader(const std::string& path) : path_(path) {
  std::error_code ec;
  std::string index_path;
  std::string single_path;
  if (fs::is_directory(path, ec)) {
    const fs::path folder(path);
    // Hugging Face prefers the single file when both exist.
    if (fs::exists(folder / kSingleFile, ec)) {
      single_path = (folder / kSingleFile).string();
    } else if (fs::exists(folder / kIndexFile, ec)) {
      index_path = (folder / kIndexFile).string();
    } else {
      throw Error(str(path, ": no checkpoint in this folder: looked for ", kSingleFile, " and ", kIndexFile, "; ",
                      checkpoint_like_files(path)));
    }
  } else if (!fs::exists(path, ec)) {
    throw Error(str(path, ": no such file or folder"));
  } else if (fs::path(path).extension() == ".json") {
    index_path = path;
  } else {
    single_path = path;
  }

  if (!single_path.empty()) {
    files_.push_back(SafetensorsFile::open(single_path));
    for (const auto& name : files_[0]->names()) owner_.emplace(name, 0);
    return;
  }

  // The index: {"metadata": {...}, "weight_map": {"tensor": "shard file", ...}}.
  std::ifstream in(index_path, std::ios::binary);
  if (!in) throw Error(str(index_path, ": cannot open: ", system_error(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(str(index_path, ": not valid JSON: ", e.what()));
  }
  if (!index.is_object() || !index.contains("weight_map")) {
    throw Error(str(index_path, ": expected a JSON object with a \"weight_map\" (a safetensors index file)"));
  }
  const auto& weight_map = index.at("weight_map");
  if (!weight_map.is_object()) throw Error(str(index_path, ": \"weight_map\" must be an object of tensor name -> shard file"));

  std::map<std::string, std::vector<std::string>> by_shard;  // shard file -> tensor names
  for (const auto& [name, shard] : weight_map.items()) {
    if (!shard.is_string() || shard.get_ref<const std::string&>().empty()) {
      throw Error(str(index_path, ": tensor '", name, "': weight_map value must be a shard file name"));
    }
    by_shard[shard.get<std::string>()].push_back(name);
  }

  const fs::path folder = fs::path(index_path).parent_path();
  for (const auto& [shard, names] : by_shard) {
    const std::string shard_path = (folder / shard).string();
    if (!fs::is_regular_file(shard_path, ec)) {
      throw Error(str(index_path, ": shard '", shard, "' (holding '", names.front(), "'",
                      names.size() > 1 ? str(" and ", names.size() - 1, " more tensors") : std::string(),
                      ") is missing: ", shard_path, " does not exist"));
    }
    const std::size_t i = files_.size();
    files_.push_back(SafetensorsFile::open(shard_path));
    for (const auto& name : names) {
      if (!files_[i]->contains(name)) {
        throw Error(str(index_path, ": tensor '", name, "': the weight_map puts it in shard '", shard,
                        "' but that file does not hold it"));
      }
      owner_.emplace(name, i);
    }
  }
  // Tensors a shard holds beyond the weight_map (HF loads whole shards, so
  // these load too); one held by two shards is ambiguous.
  std::map<std::string, std::size_t> unlisted;
  for (std::size_t i = 0; i < files_.size(); ++i) {
    for (const auto& name : files_[i]->names()) {
      if (owner_.count(name)) continue;
      const auto [it, inserted] = unlisted.emplace(name, i);
      if (!inserted) {
        throw Error(str(index_path, ": tensor '", name, "': not in the weight_map and held by two shards, ",
                        files_[it->second]->path(), " and ", files_[i]->path()));
      }
    }
  }
  owner_.insert(unlisted.begin(), unlisted.end());
}

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  out.reserve(owner_.size());
  for (const auto& [name, unused] : owner_) out.push_back(name);
  return out;
}

bool CheckpointReader::contains(const std::string& name) const { return owner_.count(name) != 0; }

const TensorEntry& CheckpointReader::entry(const std::string& name) const {
  return files_[owner_index(name)]->entry(name);
}

torch::Tensor CheckpointReader::tensor(const std::string& name) const {
  return files_[owner_index(name)]->tensor(name);
}

const std::string& CheckpointReader::file_of(const std::string& name) const {
  return files_[owner_index(name)]->path();
}

std::map<std::string, std::string> CheckpointReader::metadata() const {
  if (files_.empty()) return {};
  return files_.front()->header().metadata;
}

std::size_t CheckpointReader::owner_index(const std::string& name) const {
  const auto it = owner_.find(name);
  if (it == owner_.end()) {
    throw Error(str(path_, ": tensor '", name, "': not in the checkpoint", did_you_mean(name, names())));
  }
  return it->second;
}

// ------------------------------------------------------------ writers

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::vector<PlannedTensor> planned = plan(path, tensors);
  const std::string header = header_bytes(planned, metadata);

  const std::string temp = str(path, ".tmp.", ::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int error = errno;
    throw Error(str("cannot write '", path, "': cannot create '", temp, "': ", system_error(error)));
  }
  bool open = true;
  try {
    const auto check = [&](int error, const char* what) {
      if (error != 0) throw Error(str("cannot write '", path, "': ", what, system_error(error)));
    };
    check(write_all(fd, header.data(), header.size()), "");
    for (const auto& t : planned) {
      if (t.bytes == 0) continue;
      const torch::Tensor cpu = t.tensor->detach().to(torch::kCPU).contiguous();
      check(write_all(fd, cpu.data_ptr(), t.bytes), "");
    }
    check(::fsync(fd) != 0 ? errno : 0, "fsync: ");
    open = false;
    check(::close(fd) != 0 ? errno : 0, "close: ");
    check(::rename(temp.c_str(), path.c_str()) != 0 ? errno : 0, "rename: ");
  } catch (...) {
    if (open) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  // Make the rename itself durable (best effort).
  std::string folder = fs::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void save_sharded_safetensors(const std::string& folder,
                              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              std::size_t max_shard_bytes) {
  const fs::path dir(folder);
  const std::vector<PlannedTensor> planned = plan((dir / kIndexFile).string(), tensors);

  // Greedy, in the given order, as transformers does: a new shard starts when
  // the next tensor would push the current one past the limit; a tensor larger
  // than the limit gets a shard of its own.
  std::vector<std::vector<std::size_t>> shards(1);
  uint64_t shard_bytes = 0;
  uint64_t total_bytes = 0;
  for (std::size_t i = 0; i < planned.size(); ++i) {
    if (!shards.back().empty() && shard_bytes + planned[i].bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += planned[i].bytes;
    total_bytes += planned[i].bytes;
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(str("cannot create folder '", folder, "': ", ec.message()));

  nlohmann::json weight_map = nlohmann::json::object();  // sorted by tensor name, as transformers writes it
  for (std::size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    std::vector<std::pair<std::string, torch::Tensor>> shard;
    for (const std::size_t i : shards[s]) {
      shard.emplace_back(tensors[i].first, tensors[i].second);
      weight_map[tensors[i].first] = name;
    }
    save_safetensors((dir / name).string(), shard, {{"format", "pt"}});
  }
  // The index last, so that an interrupted save never leaves an index that
  // names shards not yet written.
  const nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
  config::write_file_atomically((dir / kIndexFile).string(), index.dump(2) + "\n");
}

}  // namespace lire::io

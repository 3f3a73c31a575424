#include "lire/cli/jsonl_output.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iterator>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "lire/core/error.h"

namespace lire::cli {
namespace {

namespace fs = std::filesystem;

// Complete lines of an interrupted run's partial output; a trailing incomplete
// line is cut off so that appending continues cleanly.
int64_t recover_partial(const std::string& partial) {
  std::ifstream in(partial, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto last_newline = text.rfind('\n');
  const std::size_t keep = last_newline == std::string::npos ? 0 : last_newline + 1;
  if (keep != text.size()) fs::resize_file(partial, keep);
  int64_t lines = 0;
  for (std::size_t i = 0; i < keep; ++i) lines += text[i] == '\n';
  return lines;
}

}  // namespace

PartialJsonl::PartialJsonl(std::string output, bool resume)
    : output_(std::move(output)), partial_(output_ + ".partial") {
  if (resume && fs::exists(partial_)) {
    done_ = recover_partial(partial_);
    spdlog::info("resuming: {} records already in {}", done_, partial_);
  }
  out_.open(partial_, done_ > 0 ? std::ios::app : std::ios::trunc);
  LIRE_CHECK(out_.good(), partial_, ": cannot write");
}

void PartialJsonl::write(const nlohmann::json& record) { out_ << record.dump() << '\n'; }

void PartialJsonl::write_line(const std::string& line) { out_ << line << '\n'; }

void PartialJsonl::flush() {
  out_.flush();
  LIRE_CHECK(out_.good(), partial_, ": write failed (disk full?)");
}

void PartialJsonl::commit() {
  out_.close();
  LIRE_CHECK(!out_.fail(), partial_, ": close failed");
  if (FILE* f = std::fopen(partial_.c_str(), "r")) {
    ::fsync(fileno(f));
    std::fclose(f);
  }
  fs::rename(partial_, output_);
}

int64_t count_records(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(str(path, ": cannot open file"));
  int64_t n = 0;
  std::string line;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) ++n;
  return n;
}

void check_distinct_output(const std::string& input, const std::string& output) {
  LIRE_CHECK(fs::absolute(input).lexically_normal() != fs::absolute(output).lexically_normal(),
             "--output must differ from --data");
}

}  // namespace lire::cli

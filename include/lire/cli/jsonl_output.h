// The output file of the streaming commands (lire-score, lire-sample): records
// go to "<output>.partial", flushed after each batch; commit() fsyncs it and
// renames it to <output>, so a reader never sees a half-written file. With
// resume, an interrupted run's complete lines are kept (a trailing partial line
// is cut off) and the command skips that many input records.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace lire::cli {

class PartialJsonl {
 public:
  PartialJsonl(std::string output, bool resume);
  // Records already in the partial file (0 unless resuming).
  int64_t done() const { return done_; }
  // Appends one record as a line. Call flush() after a batch.
  void write(const nlohmann::json& record);
  // Appends a line that is already a serialised record (no newline).
  void write_line(const std::string& line);
  void flush();
  // Closes, fsyncs and renames the partial file to the output.
  void commit();
  const std::string& partial_path() const { return partial_; }

 private:
  std::string output_, partial_;
  std::ofstream out_;
  int64_t done_ = 0;
};

// Non-blank lines of a file (a progress total); DataError when it cannot be opened.
int64_t count_records(const std::string& path);

// Throws unless `output` and `input` are different files ("--output must differ from --data").
void check_distinct_output(const std::string& input, const std::string& output);

}  // namespace lire::cli

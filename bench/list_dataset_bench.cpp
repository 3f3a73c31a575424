// lire-bench-data: shows that ListDataset streams a large JSONL file with
// bounded memory. It writes a file of canonical candidate lists (a prompt, four
// responses of a few hundred characters, rewards) of the requested size into a
// fresh temporary folder, opens it with ListDataset (one validating pass that
// keeps 16 bytes a record), reads every record back with get(i) in a shuffled
// EpochOrder, and prints the file size, record count, open and iteration times,
// records/s, the index memory and the peak resident memory (getrusage
// ru_maxrss) before and after. The folder is deleted at the end.
//
// A benchmark, not a test: it prints figures and asserts nothing (docs/perf.md
// records a run). Usage:
//   lire-bench-data [--dir /tmp] [--mib 1024] [--seed 1234] [--keep]
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "lire/data/list_dataset.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string dir = fs::temp_directory_path().string();  // where the temporary folder is made
  std::uint64_t mib = 1024;                                 // file size to write, MiB
  std::uint64_t seed = 1234;                                // text and epoch-order seed
  bool keep = false;                                        // keep the file (its path is printed)
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "lire-bench-data: " << problem << "\n"
            << "usage: lire-bench-data [--dir DIR] [--mib N] [--seed N] [--keep]\n";
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    try {
      if (flag == "--dir")
        args.dir = value();
      else if (flag == "--mib")
        args.mib = std::stoull(value());
      else if (flag == "--seed")
        args.seed = std::stoull(value());
      else if (flag == "--keep")
        args.keep = true;
      else if (flag == "--help" || flag == "-h")
        usage("help");
      else
        usage("unknown flag '" + flag + "'");
    } catch (const std::logic_error&) {  // stoull: not a number
      usage(flag + " needs a non-negative integer");
    }
  }
  if (args.mib == 0) usage("--mib must be at least 1");
  return args;
}

// Peak resident set size of this process so far, MiB (ru_maxrss is in KiB on Linux).
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Resident set size now, MiB ("VmRSS:" of /proc/self/status; -1 where there is none).
double rss_now_mib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kib = 0;
      in >> kib;
      return static_cast<double>(kib) / 1024.0;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return -1.0;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Pseudo-English text of about `chars` characters from a small vocabulary.
void append_text(std::string& out, std::size_t chars, std::mt19937_64& rng) {
  static const char* const kWords[] = {
      "the", "model", "answer", "question", "because", "water", "minutes", "should", "first", "people",
      "reward", "list", "prompt", "helpful", "honest", "boil", "egg", "pan", "carefully", "usually",
      "which", "about", "preference", "ranking", "response", "there", "would", "could", "example", "simple"};
  constexpr std::size_t kCount = sizeof(kWords) / sizeof(kWords[0]);
  const std::size_t start = out.size();
  while (out.size() - start < chars) {
    if (out.size() > start) out += ' ';
    out += kWords[rng() % kCount];
  }
  out += '.';
}

// One canonical record: {"id", "prompt", "responses": [4 texts], "rewards": [4]}.
void make_record(std::string& line, std::uint64_t n, std::mt19937_64& rng) {
  line.clear();
  line += "{\"id\": \"b" + std::to_string(n) + "\", \"prompt\": \"";
  append_text(line, 80 + rng() % 120, rng);
  line += "\", \"responses\": [";
  for (int j = 0; j < 4; ++j) {
    line += j ? ", \"" : "\"";
    append_text(line, 200 + rng() % 300, rng);
    line += '"';
  }
  line += "], \"rewards\": [";
  for (int j = 0; j < 4; ++j) {
    if (j) line += ", ";
    line += std::to_string(static_cast<double>(rng() % 2001) / 1000.0 - 1.0);
  }
  line += "]}\n";
}

// Writes records until the file reaches `bytes`; returns how many.
std::uint64_t write_file(const std::string& path, std::uint64_t bytes, std::uint64_t seed) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot create the file");
  std::mt19937_64 rng(seed);
  std::string line;
  std::uint64_t written = 0, records = 0;
  while (written < bytes) {
    make_record(line, records++, rng);
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
    written += line.size();
  }
  out.close();
  if (!out) throw std::runtime_error(path + ": write failed (disk full?)");
  return records;
}

int run(const Args& args) {
  // A fresh folder under --dir, removed whatever happens below.
  std::string folder_template = (fs::path(args.dir) / "lire_bench_data_XXXXXX").string();
  if (!mkdtemp(folder_template.data())) throw std::runtime_error(args.dir + ": cannot create a temporary folder");
  const fs::path folder = folder_template;
  struct Cleanup {
    fs::path folder;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(folder, ec);
    }
  } cleanup{folder, args.keep};
  const std::string path = (folder / "lists.jsonl").string();

  const double rss_start = peak_rss_mib();
  auto t0 = Clock::now();
  const std::uint64_t written = write_file(path, args.mib << 20, args.seed);
  const double write_s = seconds_since(t0);
  const double file_mib = static_cast<double>(fs::file_size(path)) / (1 << 20);
  const double peak_before = peak_rss_mib();
  std::printf("file          %s\n", path.c_str());
  std::printf("file size     %.1f MiB, %llu records written in %.1f s\n", file_mib,
              static_cast<unsigned long long>(written), write_s);
  std::printf("peak RSS      %.1f MiB at start, %.1f MiB after writing (now %.1f MiB)\n", rss_start, peak_before,
              rss_now_mib());

  lire::data::ListDatasetOptions opts;
  opts.seed = args.seed;
  t0 = Clock::now();
  const auto dataset = lire::data::ListDataset::open(path, opts);
  const double open_s = seconds_since(t0);
  const double peak_open = peak_rss_mib();
  const double index_mib = static_cast<double>(dataset.size()) * 16.0 / (1 << 20);
  std::printf("open          %zu records in %.1f s (%.1f MiB/s, %.0f records/s)\n", dataset.size(), open_s,
              file_mib / open_s, static_cast<double>(dataset.size()) / open_s);
  std::printf("index         %.1f MiB (16 bytes a record)\n", index_mib);
  std::printf("peak RSS      %.1f MiB after open (now %.1f MiB)\n", peak_open, rss_now_mib());

  std::vector<std::size_t> all(dataset.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  lire::data::EpochOrder epochs(std::move(all), args.seed, /*shuffle=*/true);
  const auto& order = epochs.order(0);
  t0 = Clock::now();
  std::uint64_t responses = 0, chars = 0;
  for (std::size_t i : order) {
    const lire::data::CandidateList list = dataset.get(i);
    responses += list.size();
    for (const auto& r : list.responses) chars += r.size();
  }
  const double iterate_s = seconds_since(t0);
  const double peak_after = peak_rss_mib();
  std::printf("iterate       %zu records (shuffled) in %.1f s: %.0f records/s, %.1f MiB/s; %llu responses, "
              "%.1f MiB of response text\n",
              order.size(), iterate_s, static_cast<double>(order.size()) / iterate_s, file_mib / iterate_s,
              static_cast<unsigned long long>(responses), static_cast<double>(chars) / (1 << 20));
  std::printf("peak RSS      %.1f MiB after iterating (now %.1f MiB); grew %.1f MiB over a %.1f MiB file "
              "(%.2f%%)\n",
              peak_after, rss_now_mib(), peak_after - peak_before, file_mib,
              100.0 * (peak_after - peak_before) / file_mib);
  if (args.keep) std::printf("kept          %s\n", path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "lire-bench-data: " << e.what() << "\n";
    return 1;
  }
}

// Training datasets: the offset index (round trip, blank lines, CRLF, errors with
// file:line, on_error skip), the seeded eval split, epoch orders, max_responses
// subsampling, training targets, and bounded memory on a ~200 MB file.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <random>

#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "lire/data/list_dataset.h"

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace lire::data;

// A temporary JSONL file, removed at the end of the test.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/lire_list_dataset_XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path = name;
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

std::string record(const std::string& id, int k) {
  std::string responses, rewards;
  for (int i = 0; i < k; ++i) {
    responses += (i ? "," : "") + std::string("\"r") + std::to_string(i) + "\"";
    rewards += (i ? "," : "") + std::to_string(i);
  }
  return "{\"id\": \"" + id + "\", \"prompt\": \"p " + id + "\", \"responses\": [" + responses + "], \"rewards\": [" +
         rewards + "]}";
}

// Runs `fn` and returns the DataError's message ("" when nothing was thrown).
template <typename Fn>
std::string data_error(Fn fn) {
  try {
    fn();
  } catch (const lire::DataError& e) {
    return e.what();
  }
  return "";
}

// A /proc/self/status field in KiB: "VmRSS:" (resident now) or "VmHWM:" (peak).
long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == field) {
      long kib = 0;
      in >> kib;
      return kib;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return -1;
}

TEST(ListDataset, OpenGetRoundTrip) {
  TempFile file("\xEF\xBB\xBF" + record("a", 2) + "\n\n   \n" + record("b", 3) + "\r\n" + record("c", 4) + "\r\n\n" +
                "{\"prompt\": \"q\", \"chosen\": \"x\", \"rejected\": \"y\"}");  // last line unterminated
  const ListDataset ds = ListDataset::open(file.path);
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.stats().lines, 7u);
  EXPECT_EQ(ds.stats().blank_lines, 3u);
  EXPECT_EQ(ds.stats().records, 4u);
  EXPECT_EQ(ds.stats().skipped, 0u);
  EXPECT_EQ(ds.line(0), 1u);
  EXPECT_EQ(ds.line(1), 4u);
  EXPECT_EQ(ds.line(2), 5u);
  EXPECT_EQ(ds.line(3), 7u);
  // Out of order, and twice: get is a seek, not a cursor.
  for (std::size_t i : {2u, 0u, 3u, 1u, 2u}) {
    const CandidateList list = ds.get(i);
    EXPECT_EQ(list.line, ds.line(i));
    EXPECT_EQ(list.file, file.path);
  }
  EXPECT_EQ(ds.get(0).id, "a");
  EXPECT_EQ(ds.get(1).id, "b");
  EXPECT_EQ(ds.get(1).responses, (std::vector<std::string>{"r0", "r1", "r2"}));
  EXPECT_EQ(ds.get(2).prompt, "p c");
  EXPECT_EQ(ds.get(2).size(), 4u);
  EXPECT_EQ(ds.get(3).responses, (std::vector<std::string>{"x", "y"}));
  EXPECT_THAT(data_error([&] { ds.get(4); }), HasSubstr("out of range"));
}

TEST(ListDataset, ErrorsNameFileAndLine) {
  TempFile bad_json(record("a", 2) + "\n\n{\"prompt\": \n");
  EXPECT_THAT(data_error([&] { ListDataset::open(bad_json.path); }),
              StartsWith(bad_json.path + ":3: invalid JSON"));
  TempFile bad_rewards(record("a", 2) + "\n{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"], \"rewards\": [1]}\n");
  EXPECT_THAT(data_error([&] { ListDataset::open(bad_rewards.path); }),
              AllOf(StartsWith(bad_rewards.path + ":2: "), HasSubstr("rewards")));
  TempFile no_targets("{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"]}\n");
  EXPECT_EQ(data_error([&] { ListDataset::open(no_targets.path); }),
            no_targets.path + ":1: the list has no 'rewards', 'ranks' or 'labels' to train on");
  ListDatasetOptions lax;
  lax.require_targets = false;
  EXPECT_EQ(ListDataset::open(no_targets.path, lax).size(), 1u);
  EXPECT_THAT(data_error([] { ListDataset::open("/nonexistent/lists.jsonl"); }), HasSubstr("cannot open"));
}

TEST(ListDataset, OptionsAreChecked) {
  TempFile file(record("a", 2) + "\n");
  ListDatasetOptions opts;
  opts.on_error = "ignore";
  EXPECT_THROW(ListDataset::open(file.path, opts), lire::ConfigError);
  opts.on_error = "skip";
  opts.eval_fraction = 1.0;
  EXPECT_THROW(ListDataset::open(file.path, opts), lire::ConfigError);
  opts.eval_fraction = -0.1;
  EXPECT_THROW(ListDataset::open(file.path, opts), lire::ConfigError);
}

TEST(ListDataset, FieldsAreMappedAtOpenAndGet) {
  // The file's own names: question/answers/scores. Without data.fields the
  // first record has no prompt.
  TempFile file("{\"question\": \"Q1\", \"answers\": [\"a\", \"b\"], \"scores\": [0.5, 1.5]}\n"
                "{\"question\": \"Q2\", \"answers\": [\"c\", \"d\", \"e\"], \"scores\": [3, 2, 1]}\n");
  EXPECT_THAT(data_error([&] { ListDataset::open(file.path); }),
              StartsWith(file.path + ":1: missing 'prompt'"));
  ListDatasetOptions opts;
  opts.fields = {{"question", "prompt"}, {"answers", "responses"}, {"scores", "rewards"}};
  const ListDataset ds = ListDataset::open(file.path, opts);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.get(1).prompt, "Q2");
  EXPECT_EQ(ds.get(1).responses, (std::vector<std::string>{"c", "d", "e"}));
  EXPECT_EQ(training_targets(ds.get(0)).values, (std::vector<double>{0.5, 1.5}));
  // An unknown target fails before the file is read.
  opts.fields = {{"question", "promt"}};
  try {
    ListDataset::open("/nonexistent/lists.jsonl", opts);
    FAIL() << "expected a ConfigError";
  } catch (const lire::ConfigError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("data.fields"), HasSubstr("did you mean prompt?")));
  }
}

TEST(ListDataset, SkipCountsAndReports) {
  std::string text;
  for (int i = 0; i < 30; ++i) text += (i % 3 == 1 ? std::string("{oops") : record(std::to_string(i), 2)) + "\n";
  TempFile file(text);
  EXPECT_THAT(data_error([&] { ListDataset::open(file.path); }), StartsWith(file.path + ":2: invalid JSON"));
  ListDatasetOptions opts;
  opts.on_error = "skip";
  const ListDataset ds = ListDataset::open(file.path, opts);
  EXPECT_EQ(ds.size(), 20u);
  EXPECT_EQ(ds.stats().skipped, 10u);
  ASSERT_EQ(ds.stats().errors.size(), 10u);
  EXPECT_THAT(ds.stats().errors[0], StartsWith(file.path + ":2: invalid JSON"));
  EXPECT_THAT(ds.stats().errors[1], StartsWith(file.path + ":5: "));
  // The index holds only the good records, in file order.
  EXPECT_EQ(ds.get(0).id, "0");
  EXPECT_EQ(ds.get(1).id, "2");
  EXPECT_EQ(ds.line(1), 3u);
  // At most 20 reasons kept, all counted.
  std::string many;
  for (int i = 0; i < 25; ++i) many += "[1]\n";
  TempFile all_bad(many);
  const ListDataset none = ListDataset::open(all_bad.path, opts);
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.stats().skipped, 25u);
  EXPECT_EQ(none.stats().errors.size(), 20u);
}

TEST(ListDataset, MaxResponsesIsStablePerRecord) {
  TempFile file(record("a", 8) + "\n" + record("b", 2) + "\n" + record("c", 8) + "\n");
  ListDatasetOptions opts;
  opts.max_responses = 3;
  opts.seed = 7;
  const ListDataset ds = ListDataset::open(file.path, opts);
  const CandidateList a = ds.get(0);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_TRUE(a.rewards);
  for (std::size_t i = 0; i < 3; ++i)  // rewards[j] = j, so each kept reward names its response
    EXPECT_EQ("r" + std::to_string(static_cast<int>((*a.rewards)[i])), a.responses[i]);
  EXPECT_EQ(ds.get(0).responses, a.responses);           // the same record keeps the same responses
  EXPECT_EQ(ListDataset::open(file.path, opts).get(0).responses, a.responses);  // across opens
  EXPECT_EQ(ds.get(1).size(), 2u);                        // fewer than K: untouched
  EXPECT_EQ(ds.get(2).size(), 3u);
}

TEST(ListDataset, ConcurrentGets) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += record(std::to_string(i), 3) + "\n";
  TempFile file(text);
  const ListDataset ds = ListDataset::open(file.path);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 5; ++r)
        for (std::size_t i = static_cast<std::size_t>(t); i < ds.size(); i += 2)
          if (ds.get(i).id != std::to_string(i)) ++wrong;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Split, SizesAndDeterminism) {
  const auto [train, eval] = split_indices(100, 0.1, 1234);
  EXPECT_EQ(eval.size(), 10u);
  EXPECT_EQ(train.size(), 90u);
  EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
  EXPECT_TRUE(std::is_sorted(eval.begin(), eval.end()));
  std::set<std::size_t> all(train.begin(), train.end());
  all.insert(eval.begin(), eval.end());
  EXPECT_EQ(all.size(), 100u);
  EXPECT_EQ(*all.rbegin(), 99u);
  EXPECT_EQ(split_indices(100, 0.1, 1234).second, eval);
  EXPECT_NE(split_indices(100, 0.1, 1235).second, eval);
  EXPECT_EQ(split_indices(10, 0.25, 1).second.size(), 3u);  // round(2.5) = 3
  EXPECT_EQ(split_indices(10, 0.04, 1).second.size(), 0u);
  EXPECT_EQ(split_indices(0, 0.5, 1).first.size(), 0u);
  EXPECT_EQ(split_indices(5, 0.0, 1).first, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  EXPECT_THROW(split_indices(5, 1.0, 1), lire::ConfigError);
  // Splits and orders are the same on every platform because they rest on
  // std::mt19937_64, whose output the C++ standard fixes ([rand.predef]: the
  // 10000th draw of a default-seeded engine), and on our own Fisher-Yates.
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ull);
}

TEST(EpochOrder, PermutationPerEpoch) {
  std::vector<std::size_t> indices(200);
  std::iota(indices.begin(), indices.end(), 5);
  EpochOrder order(indices, 42, true);
  const std::vector<std::size_t> e0 = order.order(0);
  const std::vector<std::size_t> e1 = order.order(1);
  std::vector<std::size_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, indices);
  sorted = e1;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, indices);
  EXPECT_NE(e0, indices);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(order.order(0), e0);  // revisiting an epoch (resume) gives it again
  EpochOrder again(indices, 42, true);
  EXPECT_EQ(again.order(1), e1);
  EXPECT_NE(EpochOrder(indices, 43, true).order(0), e0);
  EpochOrder plain(indices, 42, false);
  EXPECT_EQ(plain.order(3), indices);
}

// Padding a batch costs: each run is padded to its longest list.
std::size_t padded_cost(const std::vector<std::size_t>& order, const std::vector<std::size_t>& lengths,
                        std::size_t group) {
  std::size_t cost = 0;
  for (std::size_t b = 0; b < order.size(); b += group) {
    std::size_t longest = 0, n = std::min(group, order.size() - b);
    for (std::size_t i = b; i < b + n; ++i) longest = std::max(longest, lengths[order[i]]);
    cost += longest * n;
  }
  return cost;
}

TEST(EpochOrder, LengthGroupingSortsWindowsIntoRuns) {
  const std::size_t n = 203, group = 4, window = 40;  // a partial last window, a short last run
  std::vector<std::size_t> indices(n), lengths(n + 5);
  std::iota(indices.begin(), indices.end(), 5);
  std::mt19937_64 rng(7);
  for (auto& l : lengths) l = 10 + rng() % 500;
  for (bool shuffle : {true, false}) {
    SCOPED_TRACE(shuffle ? "shuffled" : "in order");
    EpochOrder plain(indices, 42, shuffle);
    EpochOrder grouped(indices, 42, shuffle);
    grouped.group_by_length(lengths, group, window);
    for (std::size_t epoch : {0u, 1u}) {
      const auto base = plain.order(epoch);
      const auto g = grouped.order(epoch);
      auto sorted = g;
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(sorted, indices);  // a permutation
      for (std::size_t w = 0; w < n; w += window) {
        // Each window holds the same records as the plain order's window...
        const std::size_t end = std::min(n, w + window);
        std::vector<std::size_t> a(base.begin() + w, base.begin() + end), b(g.begin() + w, g.begin() + end);
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        EXPECT_EQ(a, b);
        // ...and each run of `group` is a consecutive block of the window sorted
        // by length: no run's length range overlaps another's interior.
        std::vector<std::size_t> lens;
        for (std::size_t i = w; i < end; ++i) lens.push_back(lengths[g[i]]);
        std::vector<std::size_t> desc = lens;
        std::stable_sort(desc.begin(), desc.end(), std::greater<>());
        std::multiset<std::size_t> runs_seen;
        for (std::size_t r = 0; r < lens.size(); r += group) {
          const auto lo = std::min_element(lens.begin() + r, lens.begin() + std::min(lens.size(), r + group));
          const auto hi = std::max_element(lens.begin() + r, lens.begin() + std::min(lens.size(), r + group));
          // The run's members are exactly desc[k*group .. ) for some k.
          bool found = false;
          for (std::size_t k = 0; k < desc.size(); k += group) {
            std::vector<std::size_t> run(lens.begin() + r, lens.begin() + std::min(lens.size(), r + group));
            std::vector<std::size_t> block(desc.begin() + k, desc.begin() + std::min(desc.size(), k + group));
            std::sort(run.begin(), run.end());
            std::sort(block.begin(), block.end());
            found = found || run == block;
          }
          EXPECT_TRUE(found) << "run at " << w + r << " spans " << *lo << ".." << *hi;
        }
        EXPECT_EQ(lens.front(), desc.front());  // the longest run first
      }
      EXPECT_LT(padded_cost(g, lengths, group), padded_cost(base, lengths, group) * 9 / 10);
      EpochOrder again(indices, 42, shuffle);
      again.group_by_length(lengths, group, window);
      EXPECT_EQ(again.order(epoch), g);  // deterministic (resume)
    }
    if (shuffle) {
      const std::vector<std::size_t> e0 = grouped.order(0);  // a copy: order() reuses its buffer
      EXPECT_NE(e0, grouped.order(1));
    }
  }
  EpochOrder bad(indices, 1, true);
  EXPECT_THROW(bad.group_by_length(lengths, 4, 10), lire::Error);  // window not a multiple of the group
  EXPECT_THROW(bad.group_by_length(std::vector<std::size_t>(10, 1), 4, 8), lire::Error);  // records without a length
}

TEST(Subsample, KeepsFieldsAlignedAndIsDeterministic) {
  CandidateList list;
  list.id = "x";
  list.prompt = "p";
  const std::size_t k = 10;
  list.rewards.emplace();
  list.ranks.emplace();
  list.labels.emplace();
  list.ref_logps.emplace();
  list.ref_token_counts.emplace();
  list.human.emplace();
  list.responses_ids.emplace();
  for (std::size_t i = 0; i < k; ++i) {
    list.responses.push_back("r" + std::to_string(i));
    list.rewards->push_back(static_cast<double>(i));
    list.ranks->push_back(static_cast<std::int64_t>(i) + 1);
    list.labels->push_back(static_cast<double>(i) / 10.0);
    list.ref_logps->push_back(-static_cast<double>(i));
    list.ref_token_counts->push_back(static_cast<std::int64_t>(i) + 100);
    list.human->push_back(i % 2 == 0);
    list.responses_ids->push_back({static_cast<std::int64_t>(i), 7});
  }
  const CandidateList sub = subsample(list, 4, 99);
  ASSERT_EQ(sub.size(), 4u);
  ASSERT_EQ(sub.responses.size(), 4u);
  std::vector<std::size_t> kept;
  for (std::size_t j = 0; j < 4; ++j) {
    const auto i = static_cast<std::size_t>((*sub.rewards)[j]);
    kept.push_back(i);
    EXPECT_EQ(sub.responses[j], "r" + std::to_string(i));
    EXPECT_EQ((*sub.ranks)[j], static_cast<std::int64_t>(i) + 1);
    EXPECT_DOUBLE_EQ((*sub.labels)[j], static_cast<double>(i) / 10.0);
    EXPECT_DOUBLE_EQ((*sub.ref_logps)[j], -static_cast<double>(i));
    EXPECT_EQ((*sub.ref_token_counts)[j], static_cast<std::int64_t>(i) + 100);
    EXPECT_EQ((*sub.human)[j], i % 2 == 0);
    EXPECT_EQ((*sub.responses_ids)[j], (std::vector<std::int64_t>{static_cast<std::int64_t>(i), 7}));
  }
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
  EXPECT_EQ(std::set<std::size_t>(kept.begin(), kept.end()).size(), 4u);
  EXPECT_EQ(subsample(list, 4, 99).responses, sub.responses);
  // Different seeds pick different subsets (at least one of several).
  bool differs = false;
  for (std::uint64_t s = 100; s < 110; ++s) differs |= subsample(list, 4, s).responses != sub.responses;
  EXPECT_TRUE(differs);
  EXPECT_EQ(subsample(list, 0, 1).size(), k);
  EXPECT_EQ(subsample(list, k, 1).responses, list.responses);
  // Only-ids lists and absent fields.
  CandidateList ids;
  ids.responses_ids = std::vector<std::vector<std::int64_t>>{{1}, {2}, {3}};
  const CandidateList ids_sub = subsample(ids, 2, 5);
  EXPECT_EQ(ids_sub.size(), 2u);
  EXPECT_TRUE(ids_sub.responses.empty());
  EXPECT_FALSE(ids_sub.rewards);
}

TEST(TrainingTargets, Conversions) {
  CandidateList list;
  list.file = "f.jsonl";
  list.line = 9;
  list.responses = {"a", "b", "c"};
  EXPECT_EQ(data_error([&] { training_targets(list); }),
            "f.jsonl:9: the list has no 'rewards', 'ranks' or 'labels' to train on");
  list.labels = std::vector<double>{0.2, 0.5, 1.0};
  TrainingTargets t = training_targets(list);
  EXPECT_EQ(t.kind, "labels");
  EXPECT_EQ(t.values, (std::vector<double>{0.2, 0.5, 1.0}));
  list.ranks = std::vector<std::int64_t>{2, 1, 3};
  t = training_targets(list);
  EXPECT_EQ(t.kind, "ranks");
  EXPECT_EQ(t.values, (std::vector<double>{-2, -1, -3}));
  list.rewards = std::vector<double>{0.5, 1.5, -1};
  t = training_targets(list);
  EXPECT_EQ(t.kind, "rewards");
  EXPECT_EQ(t.values, (std::vector<double>{0.5, 1.5, -1}));
}

TEST(TrainingTargets, PairsAndPROFromTheReader) {
  TempFile file(
      "{\"prompt\": \"q\", \"chosen\": \"x\", \"rejected\": \"y\"}\n"
      "{\"prompt\": \"q\", \"chosen\": \"x\", \"rejected\": \"y\", \"score_chosen\": 8, \"score_rejected\": 3}\n"
      "{\"prefix\": [\"p\", \"p\", \"p\"], \"suffix\": [\"a\", \"b\", \"c\"]}\n");
  const ListDataset ds = ListDataset::open(file.path);
  ASSERT_EQ(ds.size(), 3u);
  TrainingTargets t = training_targets(ds.get(0));
  EXPECT_EQ(t.kind, "ranks");  // the reader gives pairs ranks [1, 2]
  EXPECT_EQ(t.values, (std::vector<double>{-1, -2}));
  t = training_targets(ds.get(1));
  EXPECT_EQ(t.kind, "rewards");
  EXPECT_EQ(t.values, (std::vector<double>{8, 3}));
  t = training_targets(ds.get(2));
  EXPECT_EQ(t.kind, "ranks");  // PRO without "reward": list order is the ranking
  EXPECT_EQ(t.values, (std::vector<double>{-1, -2, -3}));
}

// Opens a ~200 MB file and checks the index, not the records, stays in memory.
TEST(ListDataset, BoundedMemoryOnALargeFile) {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine and adds shadow memory,
  // so RSS says nothing about the reader there; the plain build measures it.
  GTEST_SKIP() << "memory bound not measurable under AddressSanitizer";
#endif
  const std::string path = "/tmp/lire_list_dataset_big_" + std::to_string(getpid()) + ".jsonl";
  const std::size_t target_bytes = 200u << 20;
  std::size_t records = 0, bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  {
    const std::string text(480, 'w');
    const std::string tail = "\", \"responses\": [\"" + text + "\", \"" + text + "\", \"" + text + "\", \"" + text +
                             "\"], \"rewards\": [0.5, 1.5, -2, 3]}\n";
    std::ofstream out(path, std::ios::binary);
    std::string chunk;
    while (bytes < target_bytes) {
      chunk.clear();
      for (int j = 0; j < 256; ++j, ++records) {
        chunk += "{\"id\": \"rec-";
        chunk += std::to_string(records);
        chunk += "\", \"prompt\": \"question ";
        chunk += std::to_string(records * 7);
        chunk += tail;
      }
      out << chunk;
      bytes += chunk.size();
    }
    ASSERT_TRUE(out.good());
  }
  const auto t1 = std::chrono::steady_clock::now();
  const long before = status_kib("VmRSS:");
  const long peak_before = status_kib("VmHWM:");
  std::size_t size = 0;
  {
    const ListDataset ds = ListDataset::open(path);
    size = ds.size();
    const long after = status_kib("VmRSS:");
    const long peak_after = status_kib("VmHWM:");
    const auto t2 = std::chrono::steady_clock::now();
    EXPECT_EQ(ds.get(records - 1).id, "rec-" + std::to_string(records - 1));
    EXPECT_EQ(ds.get(records / 2).prompt, "question " + std::to_string(records / 2 * 7));
    const double gen_s = std::chrono::duration<double>(t1 - t0).count();
    const double open_s = std::chrono::duration<double>(t2 - t1).count();
    std::cout << "[ListDataset memory] file " << bytes / (1 << 20) << " MiB, " << records << " records; VmRSS before "
              << before / 1024 << " MiB, after open " << after / 1024 << " MiB, growth " << (after - before) / 1024.0
              << " MiB; VmHWM (peak) " << peak_before / 1024 << " -> " << peak_after / 1024
              << " MiB; generate " << gen_s << " s, open " << open_s << " s ("
              << static_cast<double>(bytes) / (1 << 20) / open_s << " MiB/s)\n";
    EXPECT_LT(after - before, 64 * 1024) << "RSS grew by " << (after - before) << " KiB";
  }
  std::remove(path.c_str());
  EXPECT_EQ(size, records);
}

}  // namespace

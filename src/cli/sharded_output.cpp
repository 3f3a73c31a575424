// Sharded outputs of streaming commands (see the header).
#include "lire/cli/sharded_output.h"

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/torch_runtime.h"
#include "lire/train/process_group.h"

namespace lire::cli {

namespace fs = std::filesystem;

std::string shard_path(const std::string& output, int rank, int world_size) {
  return str(output, ".rank", rank, "-of", world_size);
}

std::string rank_device(const std::string& device, const DistEnv& env) {
  if (!env.distributed()) return device;
  const auto resolved = resolve_device(device);
  if (!resolved.is_cuda()) return device;
  return str("cuda:", env.local_rank);
}

ShardedOutput::ShardedOutput(const std::string& output, bool resume, double dist_timeout_s)
    : output_(output), env_(read_dist_env()) {
  if (env_.distributed()) {
    group_ = train::ProcessGroup::connect(env_, dist_timeout_s, torch::kCPU);
    if (env_.rank != 0) spdlog::set_level(spdlog::level::warn);  // rank 0 reports for the job
    out_ = std::make_unique<PartialJsonl>(shard_path(output, env_.rank, env_.world_size), resume);
  } else {
    out_ = std::make_unique<PartialJsonl>(output, resume);
  }
}

ShardedOutput::~ShardedOutput() = default;

std::vector<double> ShardedOutput::sum(const std::vector<double>& values) {
  return group_ ? group_->all_reduce_sum(values) : values;
}

void ShardedOutput::commit(std::int64_t records) {
  out_->commit();
  if (!group_) return;
  group_->barrier();  // every shard is complete
  if (env_.rank == 0) {
    const int W = env_.world_size;
    std::vector<std::ifstream> shards;
    for (int r = 0; r < W; ++r) {
      shards.emplace_back(shard_path(output_, r, W));
      LIRE_CHECK(shards.back().good(), shard_path(output_, r, W), ": cannot read the shard of rank ", r);
    }
    PartialJsonl merged(output_, /*resume=*/false);  // <output>.partial, renamed when complete
    std::string line;
    for (std::int64_t i = 0; i < records; ++i) {
      auto& shard = shards[static_cast<std::size_t>(i % W)];
      LIRE_CHECK(std::getline(shard, line), shard_path(output_, static_cast<int>(i % W), W),
                 ": ends before record ", i + 1, " of the input");
      merged.write_line(line);
    }
    merged.commit();
    shards.clear();
    for (int r = 0; r < W; ++r) fs::remove(shard_path(output_, r, W));
    spdlog::info("merged {} shards into {}", W, output_);
  }
  group_->barrier();  // the output is complete before any rank returns
}

}  // namespace lire::cli

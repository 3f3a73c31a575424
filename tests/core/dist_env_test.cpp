// The launcher environment: torchrun's and SLURM's variables, their errors,
// and SLURM node lists.
#include "lire/core/dist_env.h"

#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lire/core/error.h"
#include "support/error_message.h"

namespace lire {
namespace {

using ::testing::HasSubstr;

DistEnv read(const std::map<std::string, std::string>& vars) {
  return read_dist_env([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  return lire::testing::error_message<ConfigError>([&] { read(vars); });
}

TEST(DistEnv, NoLauncherIsOneProcess) {
  const auto env = read({});
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.launcher, "none");
}

TEST(DistEnv, Torchrun) {
  const auto env = read({{"RANK", "5"}, {"WORLD_SIZE", "16"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node3"},
                         {"MASTER_PORT", "29400"}});
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 16);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "node3");
  EXPECT_EQ(env.master_port, 29400);
  EXPECT_EQ(env.launcher, "torchrun");
  EXPECT_TRUE(env.distributed());
  // LOCAL_RANK defaults to RANK, the address and port to torchrun's defaults.
  const auto plain = read({{"RANK", "1"}, {"WORLD_SIZE", "2"}});
  EXPECT_EQ(plain.local_rank, 1);
  EXPECT_EQ(plain.master_addr, "127.0.0.1");
  EXPECT_EQ(plain.master_port, 29500);
}

TEST(DistEnv, Slurm) {
  const auto env = read({{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"},
                         {"SLURM_JOB_NODELIST", "gpu[07-08],cpu1"}});
  EXPECT_EQ(env.rank, 9);
  EXPECT_EQ(env.world_size, 16);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "gpu07");
  EXPECT_EQ(env.launcher, "slurm");
  // MASTER_ADDR / MASTER_PORT win; torchrun's variables win over SLURM's.
  EXPECT_EQ(read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"MASTER_ADDR", "head"}}).master_addr, "head");
  EXPECT_EQ(read({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"RANK", "0"}, {"WORLD_SIZE", "1"}}).launcher,
            "torchrun");
}

TEST(DistEnv, SlurmNodeLists) {
  EXPECT_EQ(first_slurm_host("node7"), "node7");
  EXPECT_EQ(first_slurm_host("node7,node8"), "node7");
  EXPECT_EQ(first_slurm_host("gpu[03-05,9],cpu1"), "gpu03");
  EXPECT_EQ(first_slurm_host("a-[1-2]-x,b"), "a-1-x");
  EXPECT_EQ(first_slurm_host("rack[12]"), "rack12");
  EXPECT_THROW(first_slurm_host(""), ConfigError);
  EXPECT_THROW(first_slurm_host("gpu[03-05"), ConfigError);
  EXPECT_THROW(first_slurm_host("gpu[x]"), ConfigError);
}

TEST(DistEnv, ErrorsNameTheVariable) {
  EXPECT_THAT(error_of({{"RANK", "1"}}), HasSubstr("RANK is set but WORLD_SIZE is not"));
  EXPECT_THAT(error_of({{"WORLD_SIZE", "2"}}), HasSubstr("WORLD_SIZE is set but RANK is not"));
  EXPECT_THAT(error_of({{"RANK", "one"}, {"WORLD_SIZE", "2"}}), HasSubstr("RANK='one': expected a non-negative integer"));
  EXPECT_THAT(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), HasSubstr("rank 2 is outside [0, 2)"));
  EXPECT_THAT(error_of({{"RANK", "0"}, {"WORLD_SIZE", "0"}}), HasSubstr("must be >= 1"));
  EXPECT_THAT(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}), HasSubstr("MASTER_PORT=70000"));
  EXPECT_THAT(error_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}), HasSubstr("rendezvous host is unknown"));
  EXPECT_THAT(error_of({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n1"}}),
              HasSubstr("SLURM_PROCID vs SLURM_NTASKS"));
}

}  // namespace
}  // namespace lire

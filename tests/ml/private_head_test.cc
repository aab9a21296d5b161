// The private-head file a site keeps on its own disk, and the head's seed:
// a saved head reads back bit for bit; a file of other tasks, another size,
// a truncated one, one with a non-finite value or no header is refused
// naming the file; no file is kNotFound (the site then starts a new head).
#include "services/ml/private_head.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "tests/support/child_process.h"

namespace fedrx::ml {
namespace {

class PrivateHeadFileTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }
  fedrx::testing::TempDir dir_;
  const std::vector<std::string> tasks_ = {"NR-AR", "SR-p53"};
  const std::vector<float> head_ = {0.5f, -1.25f, 3e-8f, 7.0f, -0.0f};
};

TEST_F(PrivateHeadFileTest, SavedHeadReadsBackExactly) {
  ASSERT_TRUE(SaveHeadFile(Path("s.head"), tasks_, head_, "test").ok());
  auto read = ReadHeadFile(Path("s.head"), tasks_, head_.size());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), head_.size());
  for (std::size_t i = 0; i < head_.size(); ++i) EXPECT_EQ((*read)[i], head_[i]) << i;
  EXPECT_FALSE(std::filesystem::exists(Path("s.head.tmp")));
}

TEST_F(PrivateHeadFileTest, MissingFileIsNotFound) {
  auto read = ReadHeadFile(Path("none.head"), tasks_, head_.size());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), core::StatusCode::kNotFound);
}

TEST_F(PrivateHeadFileTest, MismatchesAreRefusedNamingTheFile) {
  ASSERT_TRUE(SaveHeadFile(Path("s.head"), tasks_, head_, "test").ok());
  auto other_tasks = ReadHeadFile(Path("s.head"), {"NR-AR"}, head_.size());
  ASSERT_FALSE(other_tasks.ok());
  EXPECT_EQ(other_tasks.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(other_tasks.status().where(), Path("s.head"));
  EXPECT_NE(other_tasks.status().message().find("NR-AR,SR-p53"), std::string::npos);

  auto other_size = ReadHeadFile(Path("s.head"), tasks_, head_.size() + 1);
  ASSERT_FALSE(other_size.ok());
  EXPECT_NE(other_size.status().message().find("needs 6"), std::string::npos)
      << other_size.status();

  std::filesystem::resize_file(Path("s.head"), std::filesystem::file_size(Path("s.head")) - 2);
  auto truncated = ReadHeadFile(Path("s.head"), tasks_, head_.size());
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), core::StatusCode::kInvalidArgument);

  std::vector<float> bad = head_;
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(SaveHeadFile(Path("nan.head"), tasks_, bad, "test").ok());
  auto nan = ReadHeadFile(Path("nan.head"), tasks_, head_.size());
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.status().message().find("parameter 3"), std::string::npos) << nan.status();

  std::ofstream(Path("raw.head"), std::ios::binary).write("\0\0\0\0", 4);
  auto raw = ReadHeadFile(Path("raw.head"), tasks_, 1);
  ASSERT_FALSE(raw.ok());
  EXPECT_NE(raw.status().message().find("not a private head file"), std::string::npos);
}

TEST(PrivateHeadSeedTest, DiffersBySiteAndStudyAndFromTheStudySeed) {
  EXPECT_EQ(PrivateHeadSeed(3, "site-a"), PrivateHeadSeed(3, "site-a"));
  EXPECT_NE(PrivateHeadSeed(3, "site-a"), PrivateHeadSeed(3, "site-b"));
  EXPECT_NE(PrivateHeadSeed(3, "site-a"), PrivateHeadSeed(4, "site-a"));
  EXPECT_NE(PrivateHeadSeed(3, "site-a"), 3u);
  // Pinned: sites that restart or upgrade must derive the same head.
  EXPECT_EQ(PrivateHeadSeed(3, "site-a"), 470015111948089502ULL);
}

}  // namespace
}  // namespace fedrx::ml

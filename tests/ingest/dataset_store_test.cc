// DatasetStore: versions are numbered and CURRENT follows the last commit; a
// commit that fails midway (after writing some files) leaves CURRENT and the
// previous version's files untouched and no trace behind; a version left
// uncommitted by a crash is never reused.
#include "services/ingest/dataset_store.h"

#include <gtest/gtest.h>

#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest {
namespace {

using testing::ReadBytes;
using testing::ScratchDir;

TEST(DatasetStoreTest, CommitsNumberVersionsAndMoveCurrent) {
  ScratchDir dir;
  auto store = DatasetStore::Open(dir.File("store"), true);
  ASSERT_TRUE(store.ok()) << store.status();
  auto none = store->Current();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  for (int i = 1; i <= 2; ++i) {
    auto v = store->Commit([&](const std::string& d) {
      return WriteFileSynced(d + "/data.csv", "v" + std::to_string(i) + "\n");
    });
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->number, static_cast<std::uint64_t>(i));
  }
  auto current = store->Current();
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->number, 2u);
  EXPECT_EQ(ReadBytes((*current)->dir + "/data.csv"), "v2\n");
  EXPECT_EQ(ReadBytes(dir.File("store/CURRENT")), "2\n");
  EXPECT_EQ(ReadBytes(dir.File("store/versions/1/data.csv")), "v1\n");
}

TEST(DatasetStoreTest, AFailedIngestMidwayLeavesThePreviousVersionIntact) {
  ScratchDir dir;
  auto store = DatasetStore::Open(dir.File("store"), true);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->Commit([](const std::string& d) {
                     return WriteFileSynced(d + "/compounds.csv", "good\n");
                   }).ok());
  const std::string before_current = ReadBytes(dir.File("store/CURRENT"));
  const std::string before_data = ReadBytes(dir.File("store/versions/1/compounds.csv"));
  auto failed = store->Commit([](const std::string& d) -> core::Status {
    // Half the version is written, then the input turns out bad.
    FEDRX_RETURN_IF_ERROR(WriteFileSynced(d + "/compounds.csv", "half"));
    return core::InvalidArgument("record 812: not what it claims", "input.csv");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadBytes(dir.File("store/CURRENT")), before_current);
  EXPECT_EQ(ReadBytes(dir.File("store/versions/1/compounds.csv")), before_data);
  EXPECT_FALSE(std::filesystem::exists(dir.File("store/versions/2")));
  EXPECT_TRUE(std::filesystem::is_empty(dir.File("store/tmp")));
  auto current = store->Current();
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->number, 1u);
}

TEST(DatasetStoreTest, AnOrphanVersionFromACrashIsNeverReused) {
  ScratchDir dir;
  auto store = DatasetStore::Open(dir.File("store"), true);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->Commit([](const std::string& d) { return WriteFileSynced(d + "/a", "1"); }).ok());
  // A crash after the rename of version 2 but before CURRENT moved.
  std::filesystem::create_directories(dir.File("store/versions/2"));
  auto current = store->Current();
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->number, 1u);
  auto v = store->Commit([](const std::string& d) { return WriteFileSynced(d + "/a", "3"); });
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->number, 3u);
}

TEST(DatasetStoreTest, MalformedCurrentIsDataLossAndMissingStoreIsNotFound) {
  ScratchDir dir;
  EXPECT_EQ(DatasetStore::Open(dir.File("nope"), false).status().code(), core::StatusCode::kNotFound);
  auto store = DatasetStore::Open(dir.File("store"), true);
  ASSERT_TRUE(store.ok());
  testing::WriteBytes(dir.File("store/CURRENT"), "7\n");
  EXPECT_EQ(store->Current().status().code(), core::StatusCode::kDataLoss);
  testing::WriteBytes(dir.File("store/CURRENT"), "garbage");
  EXPECT_EQ(store->Current().status().code(), core::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace fedrx::ingest

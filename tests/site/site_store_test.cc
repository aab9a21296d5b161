// A site with site.store loads the CURRENT version of its dataset store: the
// prepared rows split by their split column, and the descriptor's preparation
// hash and fingerprint width, which it reports instead of computing its own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "services/ingest/compounds.h"
#include "services/ingest/dataset_store.h"
#include "services/site/site_main.h"

namespace fedrx::site {
namespace {

class SiteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fedrx_site_store_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Ingests `csv` into the store as `fedrx ingest compounds` does.
  ingest::StoreVersion Ingest(const std::string& csv, const ingest::ConsortiumKey& key) {
    const std::string in = (dir_ / "in.csv").string();
    std::ofstream(in) << csv;
    auto src = ingest::ReadCompoundFile(in, {});
    EXPECT_TRUE(src.ok()) << src.status();
    auto p = ingest::PrepareCompounds(*src, ingest::PrepOptions{}, key);
    EXPECT_TRUE(p.ok());
    const auto d = ingest::DescribeCompounds(*p, *src, ingest::PrepOptions{});
    prep_hash_ = p->preparation_hash;
    auto store = ingest::DatasetStore::Open((dir_ / "store").string(), true);
    EXPECT_TRUE(store.ok());
    auto v = store->Commit(
        [&](const std::string& d_dir) { return ingest::WriteCompoundVersion(d_dir, *p, d); });
    EXPECT_TRUE(v.ok()) << v.status();
    return *v;
  }

  std::filesystem::path dir_;
  std::string prep_hash_;
};

TEST_F(SiteStoreTest, LoadsTheCurrentVersionWithItsSplitAndPreparationHash) {
  const ingest::ConsortiumKey key("consortium-key-a-0123456789");
  Ingest("smiles,NR-AR,split\nCCO,1,train\nCCN,0,train\nc1ccccc1,0,valid\nCCCl,1,train\n", key);
  auto loaded = LoadStoreData((dir_ / "store").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->version, 1u);
  EXPECT_EQ(loaded->compounds, 4u);
  EXPECT_EQ(loaded->data.train.size(), 3u);
  EXPECT_EQ(loaded->data.valid.size(), 1u);
  EXPECT_EQ(loaded->data.valid.smiles[0], "c1ccccc1");
  EXPECT_EQ(loaded->data.train.tasks, (std::vector<std::string>{"NR-AR"}));
  EXPECT_EQ(loaded->fingerprint_bits, 2048u);
  EXPECT_EQ(loaded->preparation_hash, prep_hash_);
  EXPECT_NE(loaded->preparation_hash.find("key-"), std::string::npos);
  EXPECT_EQ(loaded->preparation_hash.find("key-none"), std::string::npos);

  // A second ingest becomes the current version.
  Ingest("smiles,NR-AR,split\nCCO,1,train\nCCN,0,valid\n", key);
  auto again = LoadStoreData((dir_ / "store").string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, 2u);
  EXPECT_EQ(again->compounds, 2u);
}

// What the ingest set aside travels with the version (the site exports it as
// fedrx_site_dataset_records{outcome}): one unparseable row, one duplicate
// (ethanol written two ways) merged.
TEST_F(SiteStoreTest, CarriesTheIngestsRecordCounts) {
  const ingest::ConsortiumKey key("consortium-key-a-0123456789");
  Ingest("smiles,NR-AR,split\nCCO,1,train\nOCC,1,train\nC1CC,0,train\nCCN,0,train\n", key);
  auto loaded = LoadStoreData((dir_ / "store").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->records_read, 4u);
  EXPECT_EQ(loaded->compounds, 2u);
  EXPECT_EQ(loaded->unparseable, 1u);
  EXPECT_EQ(loaded->duplicates_merged, 1u);
  EXPECT_EQ(loaded->label_conflicts, 0u);
}

TEST_F(SiteStoreTest, AStoreWithoutVersionsIsNotFound) {
  ASSERT_TRUE(ingest::DatasetStore::Open((dir_ / "store").string(), true).ok());
  EXPECT_EQ(LoadStoreData((dir_ / "store").string()).status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(LoadStoreData((dir_ / "missing").string()).status().code(),
            core::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedrx::site

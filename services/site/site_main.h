// The site process: reads config and the institution's dataset, builds the
// real adapters, and runs SiteService under the ServiceRunner.
#pragma once

#include <string>

#include "services/core/status.h"
#include "services/site/site_service.h"

namespace fedrx::site {

// The local data of a site whose `site.store` is set: the CURRENT version of
// the DatasetStore at `store_dir` (written by `fedrx ingest compounds`), split
// by its split column (train/valid/test) or, without one, by scaffold as for
// `site.data`, with the descriptor's preparation hash and fingerprint width.
struct StoreData {
  LocalData data;
  std::string preparation_hash;
  std::uint32_t fingerprint_bits = 0;
  std::uint64_t version = 0;
  std::size_t compounds = 0;
  std::size_t records_read = 0;
  std::size_t unparseable = 0;
  std::size_t duplicates_merged = 0;
  std::size_t label_conflicts = 0;
};
// kNotFound when the store or its CURRENT version is missing; the store's and
// LoadCompoundVersion's errors otherwise; kInvalidArgument without training rows.
core::Result<StoreData> LoadStoreData(const std::string& store_dir);

// Returns the process exit code.
int Main(int argc, char** argv);

}  // namespace fedrx::site

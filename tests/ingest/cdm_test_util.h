// Helpers shared by the common-data-model tests: loading the vendored studies
// and building small synthetic domains.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "services/ingest/cdm_map.h"
#include "services/ingest/study_folder.h"
#include "services/ingest/table.h"
#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest::testing {

// Maps the vendored folders (domains of later folders are added to the first).
inline cdm::StudyData MapVendored(const std::vector<std::string>& studies) {
  std::map<std::string, Table> domains;
  for (const std::string& s : studies) {
    auto folder = ReadStudyFolder(DataDir(s));
    EXPECT_TRUE(folder.ok()) << folder.status();
    if (!folder.ok()) return {};
    for (auto& [name, table] : folder->domains) domains.emplace(name, std::move(table));
  }
  auto data = cdm::MapDomains(domains);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? std::move(data).value() : cdm::StudyData{};
}

// A table whose columns are all text; numbers are given as text too.
inline Table TextTable(const std::string& name, const std::vector<std::string>& columns,
                       const std::vector<std::vector<std::string>>& rows) {
  Table t;
  t.name = name;
  for (const std::string& c : columns) {
    Column col;
    col.name = c;
    t.columns.push_back(std::move(col));
  }
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < columns.size(); ++i) t.columns[i].AppendText(row.at(i));
  }
  t.num_rows = rows.size();
  return t;
}

}  // namespace fedrx::ingest::testing

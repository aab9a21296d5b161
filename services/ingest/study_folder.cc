#include "services/ingest/study_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "services/ingest/dataset_json_reader.h"
#include "services/ingest/xport_reader.h"

namespace fedrx::ingest {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

struct Candidate {
  fs::path xport;
  fs::path json;
};

}  // namespace

core::Result<StudyFolder> ReadStudyFolder(const std::string& path,
                                          const StudyFolderOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return core::NotFound("not a directory", path);

  std::vector<fs::path> entries;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec) return core::NotFound("cannot list directory: " + ec.message(), path);
  std::sort(entries.begin(), entries.end());

  StudyFolder folder;
  folder.path = path;
  std::map<std::string, Candidate> candidates;  // by domain
  for (const fs::path& entry : entries) {
    const std::string file_name = entry.filename().string();
    if (!fs::is_regular_file(entry, ec)) {
      folder.files_ignored.push_back(file_name);
      continue;
    }
    const std::string ext = Lower(entry.extension().string());
    if (Lower(file_name) == "define.xml") {
      folder.has_define_xml = true;
      folder.define_xml = entry.string();
      auto define = ReadDefineXml(folder.define_xml);
      if (define.ok()) {
        folder.define = std::move(define).value();
      } else {
        folder.define_error = define.status().ToString();
      }
      continue;
    }
    if (ext != ".xpt" && ext != ".json") {
      folder.files_ignored.push_back(file_name);
      continue;
    }
    const std::string domain = Upper(entry.stem().string());
    fs::path& slot = ext == ".xpt" ? candidates[domain].xport : candidates[domain].json;
    if (!slot.empty()) {
      return core::Status(
          core::StatusCode::kAlreadyExists,
          "two files name domain " + domain + ": " + slot.filename().string() + " and " + file_name,
          path);
    }
    slot = entry;
  }
  if (candidates.empty()) {
    return core::NotFound("no .xpt or Dataset-JSON .json dataset in the folder", path);
  }

  for (auto& [domain, candidate] : candidates) {
    const bool prefer_xport = options.prefer == SourceFormat::kXport;
    const fs::path& preferred = prefer_xport ? candidate.xport : candidate.json;
    const fs::path& other = prefer_xport ? candidate.json : candidate.xport;
    fs::path chosen = preferred;
    if (chosen.empty()) {
      if (!options.read_other_format) {
        folder.files_skipped.push_back(other.filename().string());
        continue;
      }
      chosen = other;
    } else if (!other.empty()) {
      folder.files_skipped.push_back(other.filename().string());
    }
    const bool is_xport = chosen == candidate.xport;
    core::Result<Table> table = is_xport ? ReadXport(chosen.string(), options.read)
                                         : ReadDatasetJson(chosen.string(), options.read);
    if (!table.ok()) return table.status().WithContext("study folder domain " + domain);
    folder.files_read.push_back(chosen.filename().string());
    folder.domains.emplace(domain, std::move(table).value());
  }
  return folder;
}

}  // namespace fedrx::ingest

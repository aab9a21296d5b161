#include "services/ingest/descriptor.h"

#include <nlohmann/json.hpp>

namespace fedrx::ingest {

std::string DescriptorToJson(const CompoundDescriptor& d) {
  nlohmann::ordered_json j;
  j["kind"] = d.kind;
  j["records_read"] = d.records_read;
  j["compounds"] = d.compounds;
  j["unparseable"] = d.unparseable;
  j["duplicates_merged"] = d.duplicates_merged;
  j["label_conflicts"] = d.label_conflicts;
  j["findings"] = nlohmann::ordered_json::object();
  for (const auto& [code, n] : d.findings) j["findings"][code] = n;
  j["tasks"] = d.tasks;
  auto balance = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < d.balance.size(); ++i) {
    balance.push_back({{"task", i < d.tasks.size() ? d.tasks[i] : ""},
                       {"positives", d.balance[i].positives},
                       {"negatives", d.balance[i].negatives},
                       {"missing", d.balance[i].missing}});
  }
  j["label_balance"] = balance;
  j["has_split"] = d.has_split;
  j["fingerprint"] = {{"radius", d.fingerprint_radius}, {"bits", d.fingerprint_bits}};
  j["folds"] = d.folds;
  j["schema_hash"] = d.schema_hash;
  j["preparation_hash"] = d.preparation_hash;
  j["reference_hash"] = d.reference_hash;
  j["source"] = {{"sha256", d.source_sha256}, {"bytes", d.source_bytes}, {"format", d.source_format}};
  return j.dump(2) + "\n";
}

core::Result<CompoundDescriptor> DescriptorFromJson(const std::string& text,
                                                    const std::string& where) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return core::InvalidArgument("descriptor is not a JSON object", where);
  }
  CompoundDescriptor d;
  try {
    d.kind = j.at("kind").get<std::string>();
    if (d.kind != "fedrx-compounds/1") {
      return core::InvalidArgument("descriptor kind \"" + d.kind + "\" is not fedrx-compounds/1",
                                   where);
    }
    d.records_read = j.at("records_read").get<std::size_t>();
    d.compounds = j.at("compounds").get<std::size_t>();
    d.unparseable = j.at("unparseable").get<std::size_t>();
    d.duplicates_merged = j.at("duplicates_merged").get<std::size_t>();
    d.label_conflicts = j.at("label_conflicts").get<std::size_t>();
    for (const auto& [code, n] : j.at("findings").items()) d.findings[code] = n.get<std::size_t>();
    d.tasks = j.at("tasks").get<std::vector<std::string>>();
    for (const auto& b : j.at("label_balance")) {
      d.balance.push_back({b.at("positives").get<std::size_t>(), b.at("negatives").get<std::size_t>(),
                           b.at("missing").get<std::size_t>()});
    }
    d.has_split = j.at("has_split").get<bool>();
    d.fingerprint_radius = j.at("fingerprint").at("radius").get<std::uint32_t>();
    d.fingerprint_bits = j.at("fingerprint").at("bits").get<std::uint32_t>();
    d.folds = j.at("folds").get<std::uint32_t>();
    d.schema_hash = j.at("schema_hash").get<std::string>();
    d.preparation_hash = j.at("preparation_hash").get<std::string>();
    d.reference_hash = j.at("reference_hash").get<std::string>();
    d.source_sha256 = j.at("source").at("sha256").get<std::string>();
    d.source_bytes = j.at("source").at("bytes").get<std::uint64_t>();
    d.source_format = j.at("source").at("format").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return core::InvalidArgument(std::string("malformed descriptor: ") + e.what(), where);
  }
  if (d.balance.size() != d.tasks.size()) {
    return core::InvalidArgument("label_balance and tasks differ in length", where);
  }
  if (d.fingerprint_bits == 0 || d.fingerprint_bits > (1u << 24)) {
    return core::InvalidArgument("fingerprint bits out of range", where);
  }
  return d;
}

}  // namespace fedrx::ingest

#include "services/ingest/define_xml.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iterator>
#include <pugixml.hpp>
#include <system_error>

namespace fedrx::ingest {
namespace {

// Define-XML mixes the ODM default namespace with def: (and xlink:) prefixed
// names; pugixml does not resolve namespaces, so names are compared on their
// local part and any prefix a producer chose is accepted.
std::string_view LocalName(const char* name) {
  std::string_view view(name);
  const auto colon = view.find(':');
  return colon == std::string_view::npos ? view : view.substr(colon + 1);
}

pugi::xml_node Child(pugi::xml_node node, std::string_view local) {
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element && LocalName(child.name()) == local) return child;
  }
  return {};
}

template <typename Fn>
void ForEachChild(pugi::xml_node node, std::string_view local, Fn&& fn) {
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element && LocalName(child.name()) == local) fn(child);
  }
}

pugi::xml_attribute Attr(pugi::xml_node node, std::string_view local) {
  for (pugi::xml_attribute attr : node.attributes()) {
    if (LocalName(attr.name()) == local) return attr;
  }
  return {};
}

std::string AttrValue(pugi::xml_node node, std::string_view local) {
  return Attr(node, local).value();
}

// Description/TranslatedText (the first one), trimmed.
std::string TranslatedText(pugi::xml_node node, std::string_view container) {
  const pugi::xml_node text = Child(Child(node, container), "TranslatedText");
  std::string value = text.text().get();
  const auto first = value.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = value.find_last_not_of(" \t\r\n");
  return value.substr(first, last - first + 1);
}

class Parser {
 public:
  Parser(std::string_view xml, const std::string& source) : xml_(xml), source_(source) {}

  core::Result<DefineXml> Run() {
    pugi::xml_document doc;
    const pugi::xml_parse_result parsed =
        doc.load_buffer(xml_.data(), xml_.size(), pugi::parse_default, pugi::encoding_auto);
    if (!parsed) {
      return core::InvalidArgument(std::string("malformed XML: ") + parsed.description(),
                                   source_ + ":" + std::to_string(LineOf(parsed.offset)));
    }
    DefineXml define;
    define.source = source_;
    const pugi::xml_node odm = doc.document_element();
    if (LocalName(odm.name()) != "ODM") {
      return Error("the root element is not ODM", odm);
    }
    const pugi::xml_node study = Child(odm, "Study");
    if (!study) return Error("ODM has no Study element", odm);
    define.study_oid = AttrValue(study, "OID");
    if (define.study_oid.empty()) return Error("Study has no OID attribute", study);
    const pugi::xml_node globals = Child(study, "GlobalVariables");
    define.study_name = Child(globals, "StudyName").text().get();
    define.protocol_name = Child(globals, "ProtocolName").text().get();
    const pugi::xml_node mdv = Child(study, "MetaDataVersion");
    if (!mdv) return Error("Study has no MetaDataVersion element", study);
    define.define_version = AttrValue(mdv, "DefineVersion");
    define.standard_name = AttrValue(mdv, "StandardName");
    define.standard_version = AttrValue(mdv, "StandardVersion");
    if (define.standard_name.empty()) {
      // Define-XML 2.1 lists standards in def:Standards instead.
      ForEachChild(Child(mdv, "Standards"), "Standard", [&](pugi::xml_node standard) {
        if (define.standard_name.empty() && AttrValue(standard, "Type") == "IG") {
          define.standard_name = AttrValue(standard, "Name");
          define.standard_version = AttrValue(standard, "Version");
        }
      });
    }

    // Items and codelists first: ItemRefs and CodeListRefs point at them.
    core::Status status;
    ForEachChild(mdv, "ItemDef", [&](pugi::xml_node node) {
      if (status.ok()) status = ParseItem(node, define);
    });
    ForEachChild(mdv, "CodeList", [&](pugi::xml_node node) {
      if (status.ok()) status = ParseCodeList(node, define);
    });
    ForEachChild(mdv, "ItemGroupDef", [&](pugi::xml_node node) {
      if (status.ok()) status = ParseDataset(node, define);
    });
    if (!status.ok()) return status;
    for (const auto& [oid, item] : define.items) {
      if (!item.codelist_oid.empty() && define.codelists.count(item.codelist_oid) == 0) {
        return core::InvalidArgument(
            "ItemDef " + item.name + " refers to undefined CodeList " + item.codelist_oid,
            Where(item.line, "ItemDef"));
      }
    }
    return define;
  }

 private:
  int LineOf(std::ptrdiff_t offset) const {
    if (offset < 0) return 0;
    const auto end = xml_.begin() + std::min<std::size_t>(offset, xml_.size());
    return 1 + static_cast<int>(std::count(xml_.begin(), end, '\n'));
  }
  int LineOf(pugi::xml_node node) const { return LineOf(node.offset_debug()); }

  std::string Where(int line, std::string_view element) const {
    return source_ + ":" + std::to_string(line) + " <" + std::string(element) + ">";
  }

  core::Status Error(const std::string& message, pugi::xml_node node) const {
    return core::InvalidArgument(message, Where(LineOf(node), node.name()));
  }

  // The attribute `name`, which must be present and non-empty.
  core::Status Required(pugi::xml_node node, std::string_view name, std::string& out) const {
    out = AttrValue(node, name);
    if (out.empty()) {
      return Error(
          std::string(LocalName(node.name())) + " has no " + std::string(name) + " attribute",
          node);
    }
    return core::Status::Ok();
  }

  // An optional non-negative integer attribute; 0 when absent.
  core::Status Integer(pugi::xml_node node, std::string_view name, int& out) const {
    out = 0;
    const std::string text = AttrValue(node, name);
    if (text.empty()) return core::Status::Ok();
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc() || end != text.data() + text.size() || out < 0) {
      return Error(std::string(name) + " is not a non-negative integer", node);
    }
    return core::Status::Ok();
  }

  core::Status ParseItem(pugi::xml_node node, DefineXml& define) const {
    DefineItem item;
    item.line = LineOf(node);
    FEDRX_RETURN_IF_ERROR(Required(node, "OID", item.oid));
    FEDRX_RETURN_IF_ERROR(Required(node, "Name", item.name));
    FEDRX_RETURN_IF_ERROR(Required(node, "DataType", item.data_type));
    FEDRX_RETURN_IF_ERROR(Integer(node, "Length", item.length));
    item.codelist_oid = AttrValue(Child(node, "CodeListRef"), "CodeListOID");
    item.label = TranslatedText(node, "Description");
    const std::string oid = item.oid;
    if (!define.items.emplace(oid, std::move(item)).second) {
      return Error("two ItemDefs have OID " + oid, node);
    }
    return core::Status::Ok();
  }

  core::Status ParseCodeList(pugi::xml_node node, DefineXml& define) const {
    DefineCodeList list;
    list.line = LineOf(node);
    FEDRX_RETURN_IF_ERROR(Required(node, "OID", list.oid));
    FEDRX_RETURN_IF_ERROR(Required(node, "Name", list.name));
    FEDRX_RETURN_IF_ERROR(Required(node, "DataType", list.data_type));
    list.external = static_cast<bool>(Child(node, "ExternalCodeList"));
    core::Status status;
    for (pugi::xml_node child : node.children()) {
      if (child.type() != pugi::node_element || !status.ok()) continue;
      const std::string_view local = LocalName(child.name());
      if (local != "EnumeratedItem" && local != "CodeListItem") continue;
      DefineCodeListTerm term;
      status = Required(child, "CodedValue", term.coded_value);
      if (local == "CodeListItem") term.decode = TranslatedText(child, "Decode");
      list.terms.push_back(std::move(term));
    }
    FEDRX_RETURN_IF_ERROR(status);
    const std::string oid = list.oid;
    if (!define.codelists.emplace(oid, std::move(list)).second) {
      return Error("two CodeLists have OID " + oid, node);
    }
    return core::Status::Ok();
  }

  core::Status ParseDataset(pugi::xml_node node, DefineXml& define) const {
    DefineDataset dataset;
    dataset.line = LineOf(node);
    FEDRX_RETURN_IF_ERROR(Required(node, "OID", dataset.oid));
    FEDRX_RETURN_IF_ERROR(Required(node, "Name", dataset.name));
    dataset.domain = AttrValue(node, "Domain");
    dataset.purpose = AttrValue(node, "Purpose");
    dataset.structure = AttrValue(node, "Structure");
    // 2.0: def:Class="Findings"; 2.1: <def:Class Name="FINDINGS"/>.
    dataset.class_name = AttrValue(node, "Class");
    if (dataset.class_name.empty()) dataset.class_name = AttrValue(Child(node, "Class"), "Name");
    dataset.label = TranslatedText(node, "Description");
    std::vector<std::pair<int, std::string>> keys;
    core::Status status;
    ForEachChild(node, "ItemRef", [&](pugi::xml_node ref) {
      if (!status.ok()) return;
      DefineVariable variable;
      status = Required(ref, "ItemOID", variable.item_oid);
      if (status.ok()) status = Integer(ref, "OrderNumber", variable.order);
      if (status.ok()) status = Integer(ref, "KeySequence", variable.key_sequence);
      if (!status.ok()) return;
      variable.mandatory = AttrValue(ref, "Mandatory") == "Yes";
      const auto item = define.items.find(variable.item_oid);
      if (item == define.items.end()) {
        status = Error(
            "ItemRef in " + dataset.name + " refers to undefined ItemDef " + variable.item_oid,
            ref);
        return;
      }
      variable.name = item->second.name;
      if (variable.key_sequence > 0) keys.emplace_back(variable.key_sequence, variable.name);
      dataset.variables.push_back(std::move(variable));
    });
    FEDRX_RETURN_IF_ERROR(status);
    std::stable_sort(keys.begin(), keys.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& key : keys) dataset.keys.push_back(std::move(key.second));
    define.datasets.push_back(std::move(dataset));
    return core::Status::Ok();
  }

  std::string_view xml_;
  const std::string& source_;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::toupper(x) == std::toupper(y);
         });
}

}  // namespace

const DefineDataset* DefineXml::FindDataset(std::string_view name) const {
  for (const DefineDataset& dataset : datasets) {
    if (EqualsIgnoreCase(dataset.name, name)) return &dataset;
  }
  return nullptr;
}

const DefineItem* DefineXml::FindItem(const DefineDataset& dataset,
                                      std::string_view variable) const {
  for (const DefineVariable& v : dataset.variables) {
    if (v.name == variable) {
      const auto it = items.find(v.item_oid);
      return it == items.end() ? nullptr : &it->second;
    }
  }
  return nullptr;
}

core::Result<DefineXml> ParseDefineXml(std::string_view xml, const std::string& source,
                                       const DefineXmlOptions& options) {
  if (xml.size() > options.max_bytes) {
    return core::ResourceExhausted("define.xml is " + std::to_string(xml.size()) +
                                       " bytes, above the limit of " +
                                       std::to_string(options.max_bytes),
                                   source);
  }
  return Parser(xml, source).Run();
}

core::Result<DefineXml> ReadDefineXml(const std::string& path, const DefineXmlOptions& options) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return core::NotFound("cannot open define.xml", path);
  const std::streamoff size = in.tellg();
  if (size < 0) return core::NotFound("cannot read define.xml", path);
  if (static_cast<std::uint64_t>(size) > options.max_bytes) {
    return core::ResourceExhausted("define.xml is " + std::to_string(size) +
                                       " bytes, above the limit of " +
                                       std::to_string(options.max_bytes),
                                   path);
  }
  in.seekg(0);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (!in.read(bytes.data(), size)) return core::NotFound("cannot read define.xml", path);
  return ParseDefineXml(bytes, path, options);
}

}  // namespace fedrx::ingest

#include "services/ingest/sdf_reader.h"

namespace fedrx::ingest {
namespace {

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// "> <NAME>" or ">  <NAME> (12)" etc.: the text between the first < and >.
bool DataHeader(std::string_view line, std::string* name) {
  if (line.empty() || line[0] != '>') return false;
  const auto open = line.find('<');
  if (open == std::string_view::npos) {
    name->clear();
    return true;
  }
  const auto close = line.find('>', open + 1);
  *name = std::string(line.substr(open + 1, close == std::string_view::npos
                                                 ? std::string_view::npos
                                                 : close - open - 1));
  return true;
}

}  // namespace

std::vector<SdfRecord> SplitSdf(std::string_view text) {
  std::vector<SdfRecord> out;
  std::vector<std::string_view> lines;
  std::size_t line_no = 0;
  std::size_t record_start = 1;
  std::size_t pos = 0;

  auto finish = [&](bool terminated) {
    bool any = false;
    for (auto l : lines) any = any || !IsBlank(l);
    if (!terminated && !any) return;
    SdfRecord r;
    r.record = out.size() + 1;
    r.line = record_start;
    std::size_t i = 0;
    // The molfile block: every line up to "M  END", unless a data item comes first.
    std::size_t end = lines.size();
    for (std::size_t k = 0; k < lines.size(); ++k) {
      if (lines[k].rfind("M  END", 0) == 0) {
        end = k;
        break;
      }
      // A data header cannot occur in the first 4 lines of a molfile block
      // (name, program, comment, counts): those are taken as is.
      std::string ignored;
      if (k >= 4 && DataHeader(lines[k], &ignored)) break;
      if (k < 4 && lines[k].rfind("> ", 0) == 0 && lines[k].find('<') != std::string_view::npos) break;
    }
    if (end < lines.size()) {
      for (std::size_t k = 0; k <= end; ++k) {
        r.molblock.append(lines[k]);
        r.molblock.push_back('\n');
      }
      i = end + 1;
    }
    // Data items after the block (or everywhere when there is no block).
    std::string name;
    for (; i < lines.size(); ++i) {
      if (!DataHeader(lines[i], &name)) continue;
      std::string value;
      std::size_t k = i + 1;
      for (; k < lines.size() && !IsBlank(lines[k]); ++k) {
        std::string scratch;
        if (DataHeader(lines[k], &scratch)) break;
        if (!value.empty()) value.push_back('\n');
        value.append(lines[k]);
      }
      r.items.emplace_back(name, value);
      i = k - 1;
    }
    out.push_back(std::move(r));
  };

  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = StripCr(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++line_no;
    if (line.rfind("$$$$", 0) == 0) {
      finish(/*terminated=*/true);
      lines.clear();
      record_start = line_no + 1;
      continue;
    }
    lines.push_back(line);
  }
  finish(/*terminated=*/false);
  return out;
}

bool LooksLikeSdf(std::string_view head) {
  return head.find("V2000") != std::string_view::npos ||
         head.find("V3000") != std::string_view::npos ||
         head.find("M  END") != std::string_view::npos ||
         head.find("\n$$$$") != std::string_view::npos || head.rfind("$$$$", 0) == 0;
}

}  // namespace fedrx::ingest

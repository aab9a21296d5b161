#include "services/report/html.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace fedrx::report {

namespace {

// Length of the valid UTF-8 sequence at text[i], 0 when it is not one.
std::size_t Utf8Length(std::string_view text, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = b(i);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  // Overlong forms, surrogates, beyond U+10FFFF, and U+FFFE/U+FFFF (not XML characters).
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF || cp == 0xFFFE || cp == 0xFFFF) {
    return 0;
  }
  return n;
}

constexpr std::string_view kStyle = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9;font-size:14px;line-height:1.45}
header{background:#1d2b45;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d3e6}
main{max-width:1100px;margin:0 auto;padding:12px 24px 48px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;margin:16px 0;padding:12px 20px}
h2{font-size:18px;margin:6px 0 10px;color:#1d2b45}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #e3e7ee;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.unavailable{color:#8a5a00;background:#fff6e0;border-left:4px solid #e0a800;padding:6px 10px}
.verdict{font-size:18px;font-weight:600;padding:8px 12px;border-radius:4px;display:inline-block}
.verdict-proceed{background:#e3f5e8;color:#1b6b34}
.verdict-proceed_with_conditions{background:#fff3d6;color:#7a5200}
.verdict-do_not_proceed{background:#fde4e4;color:#8c1c1c}
.verdict-incomplete{background:#eceff4;color:#3b4557}
.muted{color:#667085}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
svg.chart{display:block;margin:8px 0;max-width:100%;height:auto;font-family:inherit}
svg.chart text{font-size:11px;fill:#1d2433}
svg.chart .title{font-size:13px;font-weight:600}
svg.chart .axis{stroke:#8a94a6;stroke-width:1}
svg.chart .grid{stroke:#e6e9ef;stroke-width:1}
svg.chart .whisker{stroke:#1d2433;stroke-width:1.5}
footer{color:#667085;font-size:12px;text-align:center;padding:16px}
)css";

}  // namespace

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    switch (c) {
      case '&':
        out += "&amp;";
        ++i;
        continue;
      case '<':
        out += "&lt;";
        ++i;
        continue;
      case '>':
        out += "&gt;";
        ++i;
        continue;
      case '"':
        out += "&quot;";
        ++i;
        continue;
      case '\'':
        out += "&#39;";
        ++i;
        continue;
      default:
        break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20) {
      if (c == '\t' || c == '\n' || c == '\r') out += c;
      ++i;
      continue;
    }
    if (u == 0x7F) {
      ++i;
      continue;
    }
    const std::size_t n = Utf8Length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string Num(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string Pct(double p, int digits) {
  if (!std::isfinite(p)) return "-";
  return Num(p * 100.0, digits) + "%";
}

HtmlWriter& HtmlWriter::Open(std::string_view tag, const Attrs& attrs) {
  out_ += '<';
  out_.append(tag);
  for (const auto& [name, value] : attrs) {
    out_ += ' ';
    out_ += name;
    out_ += "=\"";
    out_ += Escape(value);
    out_ += '"';
  }
  out_ += '>';
  open_.emplace_back(tag);
  return *this;
}

HtmlWriter& HtmlWriter::Close() {
  if (open_.empty()) return *this;
  out_ += "</";
  out_ += open_.back();
  out_ += '>';
  open_.pop_back();
  return *this;
}

HtmlWriter& HtmlWriter::Element(std::string_view tag, std::string_view text, const Attrs& attrs) {
  Open(tag, attrs);
  Text(text);
  return Close();
}

HtmlWriter& HtmlWriter::Text(std::string_view text) {
  out_ += Escape(text);
  return *this;
}

HtmlWriter& HtmlWriter::Raw(std::string_view markup) {
  out_.append(markup);
  return *this;
}

HtmlWriter& HtmlWriter::Table(const std::vector<std::string>& header,
                              const std::vector<std::vector<std::string>>& rows,
                              const std::vector<bool>& numeric) {
  Open("table");
  if (std::any_of(header.begin(), header.end(), [](const std::string& h) { return !h.empty(); })) {
    Open("thead").Open("tr");
    for (const std::string& h : header) Element("th", h);
    Close().Close();
  }
  Open("tbody");
  for (const auto& row : rows) {
    Open("tr");
    for (std::size_t i = 0; i < row.size(); ++i) {
      const bool num = i < numeric.size() && numeric[i];
      if (num) {
        Element("td", row[i], {{"class", "num"}});
      } else {
        Element("td", row[i]);
      }
    }
    Close();
  }
  Close();
  return Close();
}

HtmlWriter& HtmlWriter::Unavailable(std::string_view reason) {
  return Element("p", "not available: " + std::string(reason), {{"class", "unavailable"}});
}

std::string HtmlWriter::Finish() {
  while (!open_.empty()) Close();
  return std::move(out_);
}

std::string Page(std::string_view title, std::string_view body_markup) {
  std::string out;
  out.reserve(body_markup.size() + kStyle.size() + 512);
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>";
  out += "<title>";
  out += Escape(title);
  out += "</title><style>";
  out += kStyle;
  out += "</style></head><body>";
  out.append(body_markup);
  out += "</body></html>\n";
  return out;
}

}  // namespace fedrx::report

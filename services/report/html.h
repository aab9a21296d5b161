// HTML building blocks of the reports: text escaping (every string that came
// from a request, a run or a study goes through Escape), a small element
// writer that always closes what it opens, and the page shell with its inline
// style. The output is XHTML-compatible (an XML parser accepts it) and
// self-contained (no external URL). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fedrx::report {

// `text` safe as element content or a quoted attribute value: & < > " '
// escaped, invalid UTF-8 bytes replaced by U+FFFD and control characters
// that XML 1.0 forbids dropped.
std::string Escape(std::string_view text);

// A number as text with `digits` significant digits ("-" for NaN/inf).
std::string Num(double v, int digits = 3);
// A probability 0..1 as a percentage ("12.5%").
std::string Pct(double p, int digits = 3);

// Appends elements to a string; every Open is matched by a Close (the
// destructor does not close: Finish() reports whether the writer balanced).
class HtmlWriter {
 public:
  using Attrs = std::vector<std::pair<std::string, std::string>>;

  // <tag a="v" ...> with attribute values escaped.
  HtmlWriter& Open(std::string_view tag, const Attrs& attrs = {});
  HtmlWriter& Close();
  // <tag ...>escaped text</tag>.
  HtmlWriter& Element(std::string_view tag, std::string_view text, const Attrs& attrs = {});
  HtmlWriter& Text(std::string_view text);
  // Markup built elsewhere (an SVG chart, another writer's output): trusted.
  HtmlWriter& Raw(std::string_view markup);
  // A table of text cells (escaped); `numeric` columns are right-aligned.
  HtmlWriter& Table(const std::vector<std::string>& header,
                    const std::vector<std::vector<std::string>>& rows,
                    const std::vector<bool>& numeric = {});
  // <p class="unavailable">not available: reason</p>.
  HtmlWriter& Unavailable(std::string_view reason);

  // The markup; closes what is still open.
  std::string Finish();

 private:
  std::string out_;
  std::vector<std::string> open_;
};

// The whole page: doctype, head with title and inline CSS, `body_markup`.
std::string Page(std::string_view title, std::string_view body_markup);

}  // namespace fedrx::report

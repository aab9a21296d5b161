#include "services/report/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "services/report/html.h"

namespace fedrx::report::svg {

namespace {

// Coordinates with one decimal: compact and never "nan".
std::string C(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string Tick(double v) {
  if (std::fabs(v) < 1e-12) v = 0;
  return Num(v, 4);
}

std::string Open(const ChartOptions& o, int height) {
  std::string s = "<svg class=\"chart\" data-chart=\"" + Escape(o.name) + "\" viewBox=\"0 0 " +
                  std::to_string(o.width) + " " + std::to_string(height) + "\" width=\"" +
                  std::to_string(o.width) + "\" height=\"" + std::to_string(height) +
                  "\" role=\"img\" aria-label=\"" + Escape(o.title) + "\">";
  s += "<title>" + Escape(o.title) + "</title>";
  if (!o.title.empty()) {
    s += "<text class=\"title\" x=\"8\" y=\"16\">" + Escape(o.title) + "</text>";
  }
  return s;
}

std::string TextAt(double x, double y, std::string_view text, std::string_view anchor = "start",
                   std::string_view extra = "") {
  std::string s = "<text x=\"" + C(x) + "\" y=\"" + C(y) + "\"";
  if (anchor != "start") s += " text-anchor=\"" + std::string(anchor) + "\"";
  if (!extra.empty()) s += " " + std::string(extra);
  s += ">" + Escape(text) + "</text>";
  return s;
}

std::string LineEl(double x1, double y1, double x2, double y2, std::string_view cls,
                   std::string_view extra = "") {
  std::string s =
      "<line x1=\"" + C(x1) + "\" y1=\"" + C(y1) + "\" x2=\"" + C(x2) + "\" y2=\"" + C(y2) + "\"";
  if (!cls.empty()) s += " class=\"" + std::string(cls) + "\"";
  if (!extra.empty()) s += " " + std::string(extra);
  return s + "/>";
}

std::string RectEl(double x, double y, double w, double h, std::string_view fill,
                   std::string_view tip = "") {
  std::string s = "<rect x=\"" + C(x) + "\" y=\"" + C(y) + "\" width=\"" + C(std::max(w, 0.0)) +
                  "\" height=\"" + C(std::max(h, 0.0)) + "\" fill=\"" + Escape(fill) + "\"";
  if (tip.empty()) return s + "/>";
  return s + "><title>" + Escape(tip) + "</title></rect>";
}

std::string SeriesColor(const Series& series, std::size_t k);

// A shortened label for the left margin (the full one stays in the tooltip).
std::string Clip(const std::string& label, std::size_t max_chars) {
  if (label.size() <= max_chars) return label;
  std::size_t cut = max_chars - 1;
  // Do not cut inside a UTF-8 sequence.
  while (cut > 0 && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) --cut;
  return label.substr(0, cut) + "\xE2\x80\xA6";
}

struct Range {
  double lo = 0;
  double hi = 1;
};

// The axis range: the options' bounds where given, else the data's, widened
// so that lo < hi and rounded out to ticks.
Range AxisRange(const ChartOptions& o, std::vector<double> values, bool from_zero) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) {
    lo = 0;
    hi = 1;
  }
  if (from_zero) lo = std::min(lo, 0.0);
  if (std::isfinite(o.min)) lo = o.min;
  if (std::isfinite(o.max)) hi = o.max;
  if (!(hi > lo)) hi = lo + (std::fabs(lo) > 0 ? std::fabs(lo) : 1.0);
  if (!std::isfinite(o.min) || !std::isfinite(o.max)) {
    const std::vector<double> t = NiceTicks(lo, hi);
    if (!t.empty()) {
      if (!std::isfinite(o.min)) lo = std::min(lo, t.front());
      if (!std::isfinite(o.max)) hi = std::max(hi, t.back());
    }
  }
  return {lo, hi};
}

constexpr std::size_t kLegendChars = 28;

// Room a legend entry takes: marker, text (about 6.2 px a character), gap.
double LegendWidth(const std::string& name) {
  return 18.0 + 6.2 * static_cast<double>(std::min(name.size(), kLegendChars + 1)) + 14.0;
}

}  // namespace

const std::vector<std::string>& Palette() {
  static const std::vector<std::string> kPalette = {"#3b6fb6", "#e07b39", "#3a9a5b", "#b84a62",
                                                    "#7b5ea7", "#8c6d46", "#c4a000", "#4a8f9c"};
  return kPalette;
}

namespace {
std::string SeriesColor(const Series& series, std::size_t k) {
  return series.color.empty() ? Palette()[k % Palette().size()] : series.color;
}
}  // namespace

std::vector<double> NiceTicks(double lo, double hi, int count) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || count < 1) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (int i = 0; i < 50; ++i) {
    const double t = first + step * i;
    if (t > hi + step * 0.999) break;
    ticks.push_back(t);
    if (t >= hi - 1e-9 * step) break;
  }
  return ticks;
}

std::string HorizontalBars(const ChartOptions& o, const std::vector<Bar>& bars, double reference) {
  constexpr int kRow = 22, kTop = 30, kLeft = 200, kNoteWidth = 230, kBottom = 40;
  const int plot_w = std::max(120, o.width - kLeft - kNoteWidth);
  const int height =
      kTop + static_cast<int>(std::max<std::size_t>(bars.size(), 1)) * kRow + kBottom;
  std::vector<double> values;
  for (const Bar& b : bars) {
    values.push_back(b.value);
    values.push_back(b.low);
    values.push_back(b.high);
  }
  if (std::isfinite(reference)) values.push_back(reference);
  const Range r = AxisRange(o, values, true);
  const auto X = [&](double v) {
    v = std::clamp(v, r.lo, r.hi);
    return kLeft + (v - r.lo) / (r.hi - r.lo) * plot_w;
  };
  const double plot_bottom =
      kTop + static_cast<double>(std::max<std::size_t>(bars.size(), 1)) * kRow;
  std::string s = Open(o, height);
  for (double t : NiceTicks(r.lo, r.hi)) {
    if (t < r.lo - 1e-12 || t > r.hi + 1e-12) continue;
    s += LineEl(X(t), kTop, X(t), plot_bottom, "grid");
    s += TextAt(X(t), plot_bottom + 14, Tick(t), "middle");
  }
  s += LineEl(kLeft, plot_bottom, kLeft + plot_w, plot_bottom, "axis");
  s += LineEl(kLeft, kTop, kLeft, plot_bottom, "axis");
  if (!o.x_label.empty()) {
    s += TextAt(kLeft + plot_w / 2.0, plot_bottom + 30, o.x_label, "middle");
  }
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double y = kTop + static_cast<double>(i) * kRow;
    s += TextAt(kLeft - 6, y + kRow * 0.68, Clip(b.label, 28), "end");
    const std::string fill = b.color.empty() ? Palette()[0] : b.color;
    if (std::isfinite(b.value)) {
      const double x0 = X(std::max(r.lo, std::min(0.0, r.hi)));
      const double x1 = X(b.value);
      s += RectEl(std::min(x0, x1), y + 4, std::max(std::fabs(x1 - x0), 1.0), kRow - 8, fill,
                  b.label + ": " + Num(b.value, 4));
    }
    if (std::isfinite(b.low) && std::isfinite(b.high)) {
      const double cy = y + kRow / 2.0;
      s += LineEl(X(b.low), cy, X(b.high), cy, "whisker");
      s += LineEl(X(b.low), cy - 5, X(b.low), cy + 5, "whisker");
      s += LineEl(X(b.high), cy - 5, X(b.high), cy + 5, "whisker");
    }
    if (!b.note.empty()) s += TextAt(kLeft + plot_w + 8, y + kRow * 0.68, b.note);
  }
  if (std::isfinite(reference)) {
    s += LineEl(X(reference), kTop - 4, X(reference), plot_bottom, "",
                "stroke=\"#b84a62\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"");
  }
  return s + "</svg>";
}

std::string GroupedBars(const ChartOptions& o, const std::vector<std::string>& categories,
                        const std::vector<Series>& series) {
  constexpr int kTop = 40, kLeft = 60, kRight = 20, kBottom = 56, kPlotH = 200;
  const int height = kTop + kPlotH + kBottom;
  const int plot_w = std::max(100, o.width - kLeft - kRight);
  std::vector<double> values;
  for (const Series& se : series) values.insert(values.end(), se.values.begin(), se.values.end());
  const Range r = AxisRange(o, values, true);
  const auto Y = [&](double v) {
    v = std::clamp(v, r.lo, r.hi);
    return kTop + kPlotH - (v - r.lo) / (r.hi - r.lo) * kPlotH;
  };
  std::string s = Open(o, height);
  // Legend on the title line, right-aligned blocks.
  double legend_w = 0;
  for (const Series& se : series) legend_w += LegendWidth(se.name);
  double lx = std::max(260.0, o.width - kRight - legend_w);
  for (std::size_t k = 0; k < series.size(); ++k) {
    s += RectEl(lx, 8, 10, 10, SeriesColor(series[k], k));
    s += TextAt(lx + 14, 17, Clip(series[k].name, kLegendChars));
    lx += LegendWidth(series[k].name);
  }
  for (double t : NiceTicks(r.lo, r.hi)) {
    if (t < r.lo - 1e-12 || t > r.hi + 1e-12) continue;
    s += LineEl(kLeft, Y(t), kLeft + plot_w, Y(t), "grid");
    s += TextAt(kLeft - 6, Y(t) + 4, Tick(t), "end");
  }
  s += LineEl(kLeft, kTop + kPlotH, kLeft + plot_w, kTop + kPlotH, "axis");
  s += LineEl(kLeft, kTop, kLeft, kTop + kPlotH, "axis");
  if (!o.y_label.empty()) {
    s += TextAt(14, kTop + kPlotH / 2.0, o.y_label, "middle",
                "transform=\"rotate(-90 14 " + C(kTop + kPlotH / 2.0) + ")\"");
  }
  if (!o.x_label.empty()) s += TextAt(kLeft + plot_w / 2.0, height - 8, o.x_label, "middle");
  const std::size_t groups = std::max<std::size_t>(categories.size(), 1);
  const double group_w = static_cast<double>(plot_w) / static_cast<double>(groups);
  const double bar_w =
      std::max(2.0, group_w * 0.8 / static_cast<double>(std::max<std::size_t>(series.size(), 1)));
  for (std::size_t g = 0; g < categories.size(); ++g) {
    const double gx = kLeft + group_w * static_cast<double>(g) + group_w * 0.1;
    s += TextAt(kLeft + group_w * (static_cast<double>(g) + 0.5), kTop + kPlotH + 14,
                Clip(categories[g], static_cast<std::size_t>(std::max(4.0, group_w / 6.2))),
                "middle");
    for (std::size_t k = 0; k < series.size(); ++k) {
      if (g >= series[k].values.size() || !std::isfinite(series[k].values[g])) continue;
      const double v = series[k].values[g];
      const double y0 = Y(std::max(r.lo, 0.0));
      const double y1 = Y(v);
      s += RectEl(gx + bar_w * static_cast<double>(k), std::min(y0, y1), bar_w - 1,
                  std::max(std::fabs(y0 - y1), 1.0), SeriesColor(series[k], k),
                  series[k].name + ", " + categories[g] + ": " + Num(v, 4));
    }
  }
  return s + "</svg>";
}

std::string LineChart(const ChartOptions& o, const std::vector<Line>& lines) {
  constexpr int kTop = 40, kLeft = 60, kRight = 20, kBottom = 50, kPlotH = 220;
  const int height = kTop + kPlotH + kBottom;
  const int plot_w = std::max(100, o.width - kLeft - kRight);
  std::vector<double> xs, ys;
  for (const Line& l : lines) {
    for (const Point& p : l.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      xs.push_back(p.x);
      ys.push_back(p.y);
    }
  }
  ChartOptions xo;  // x from the data alone
  const Range rx = AxisRange(xo, xs, false);
  const Range ry = AxisRange(o, ys, false);
  const auto X = [&](double v) { return kLeft + (v - rx.lo) / (rx.hi - rx.lo) * plot_w; };
  const auto Y = [&](double v) {
    v = std::clamp(v, ry.lo, ry.hi);
    return kTop + kPlotH - (v - ry.lo) / (ry.hi - ry.lo) * kPlotH;
  };
  std::string s = Open(o, height);
  double legend_w = 0;
  for (const Line& l : lines) legend_w += LegendWidth(l.name);
  double lx = std::max(300.0, o.width - kRight - legend_w);
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const std::string& color = Palette()[k % Palette().size()];
    s += LineEl(lx, 13, lx + 14, 13, "", "stroke=\"" + color + "\" stroke-width=\"2\"");
    s += TextAt(lx + 18, 17, Clip(lines[k].name, kLegendChars));
    lx += LegendWidth(lines[k].name);
  }
  for (double t : NiceTicks(ry.lo, ry.hi)) {
    if (t < ry.lo - 1e-12 || t > ry.hi + 1e-12) continue;
    s += LineEl(kLeft, Y(t), kLeft + plot_w, Y(t), "grid");
    s += TextAt(kLeft - 6, Y(t) + 4, Tick(t), "end");
  }
  for (double t : NiceTicks(rx.lo, rx.hi)) {
    if (t < rx.lo - 1e-12 || t > rx.hi + 1e-12) continue;
    if (o.integer_x && std::fabs(t - std::round(t)) > 1e-9) continue;
    s += LineEl(X(t), kTop + kPlotH, X(t), kTop + kPlotH + 4, "axis");
    s += TextAt(X(t), kTop + kPlotH + 16, Tick(t), "middle");
  }
  s += LineEl(kLeft, kTop + kPlotH, kLeft + plot_w, kTop + kPlotH, "axis");
  s += LineEl(kLeft, kTop, kLeft, kTop + kPlotH, "axis");
  if (!o.x_label.empty()) s += TextAt(kLeft + plot_w / 2.0, height - 10, o.x_label, "middle");
  if (!o.y_label.empty()) {
    s += TextAt(14, kTop + kPlotH / 2.0, o.y_label, "middle",
                "transform=\"rotate(-90 14 " + C(kTop + kPlotH / 2.0) + ")\"");
  }
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const std::string& color = Palette()[k % Palette().size()];
    std::string d;
    std::string dots;
    for (const Point& p : lines[k].points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      d += (d.empty() ? "M" : " L") + C(X(p.x)) + " " + C(Y(p.y));
      dots += "<circle cx=\"" + C(X(p.x)) + "\" cy=\"" + C(Y(p.y)) + "\" r=\"3\" fill=\"" + color +
              "\"><title>" + Escape(lines[k].name + " at " + Num(p.x, 4) + ": " + Num(p.y, 4)) +
              "</title></circle>";
    }
    if (d.empty()) continue;
    s += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\"/>";
    s += dots;
  }
  return s + "</svg>";
}

std::string Gantt(const ChartOptions& o, const std::vector<Span>& spans) {
  constexpr int kRow = 22, kTop = 30, kLeft = 200, kRight = 30, kBottom = 40;
  const int plot_w = std::max(120, o.width - kLeft - kRight);
  const double plot_bottom =
      kTop + static_cast<double>(std::max<std::size_t>(spans.size(), 1)) * kRow;
  const int height = static_cast<int>(plot_bottom) + kBottom;
  std::vector<double> values{0.0};
  for (const Span& sp : spans) {
    values.push_back(sp.start);
    values.push_back(sp.end);
  }
  const Range r = AxisRange(o, values, true);
  const auto X = [&](double v) {
    v = std::clamp(v, r.lo, r.hi);
    return kLeft + (v - r.lo) / (r.hi - r.lo) * plot_w;
  };
  std::string s = Open(o, height);
  for (double t : NiceTicks(r.lo, r.hi)) {
    if (t < r.lo - 1e-12 || t > r.hi + 1e-12) continue;
    s += LineEl(X(t), kTop, X(t), plot_bottom, "grid");
    s += TextAt(X(t), plot_bottom + 14, Tick(t), "middle");
  }
  s += LineEl(kLeft, plot_bottom, kLeft + plot_w, plot_bottom, "axis");
  s += LineEl(kLeft, kTop, kLeft, plot_bottom, "axis");
  if (!o.x_label.empty()) s += TextAt(kLeft + plot_w / 2.0, plot_bottom + 30, o.x_label, "middle");
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const Span& sp = spans[i];
    const double y = kTop + static_cast<double>(i) * kRow;
    s += TextAt(kLeft - 6, y + kRow * 0.68, Clip(sp.label, 28), "end");
    std::string color = "#8a94a6";
    if (sp.state == "succeeded") color = "#3a9a5b";
    if (sp.state == "failed") color = "#c0392b";
    if (sp.state == "running") color = "#3b6fb6";
    if (sp.state == "skipped") color = "#c4a000";
    const double x0 = X(std::isfinite(sp.start) ? sp.start : 0);
    const double x1 = X(std::isfinite(sp.end) ? sp.end : 0);
    s += RectEl(x0, y + 4, std::max(x1 - x0, 2.0), kRow - 8, color,
                sp.label + " (" + sp.state + "): " + Num(sp.start, 4) + " to " + Num(sp.end, 4));
  }
  return s + "</svg>";
}

}  // namespace fedrx::report::svg

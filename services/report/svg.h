// Inline SVG charts of the reports: horizontal bars with intervals, grouped
// bars, line charts and a Gantt timeline. Each returns one
// <svg class="chart" data-chart="NAME"> element with axes, ticks, labels and
// its marks (rect, line, path, circle); every text is escaped, so labels
// may come from input. Non-finite values are drawn as absent, never as NaN
// coordinates. Pure functions; thread-safe.
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace fedrx::report::svg {

inline constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

struct ChartOptions {
  std::string name;     // data-chart attribute: stable, unique within a page
  std::string title;    // drawn above the chart
  std::string x_label;  // value axis (bars) or x axis (lines)
  std::string y_label;  // lines and grouped bars
  double min = kNone;   // value-axis range; NaN: from the data (bars from 0)
  double max = kNone;
  int width = 760;
  bool integer_x = false;  // line charts: x ticks on whole numbers only (rounds)
};

// One bar: `value` with an optional interval [low, high] drawn as a whisker,
// and a note printed right of the bar (e.g. "set {positive}, p+=0.31").
struct Bar {
  std::string label;
  double value = 0;
  double low = kNone;
  double high = kNone;
  std::string note;
  std::string color;  // CSS colour; "" = the palette's first
};

// Bars from the value-axis minimum, one row per bar; `reference` (if
// finite) draws a dashed vertical line (a decision threshold).
std::string HorizontalBars(const ChartOptions& options, const std::vector<Bar>& bars,
                           double reference = kNone);

struct Series {
  std::string name;
  std::vector<double> values;  // grouped bars: one per category
  std::string color;           // CSS colour; "" = the palette's, by position
};

// Vertical bars, one group per category, one bar per series, with a legend.
std::string GroupedBars(const ChartOptions& options, const std::vector<std::string>& categories,
                        const std::vector<Series>& series);

struct Point {
  double x = 0;
  double y = 0;
};
struct Line {
  std::string name;
  std::vector<Point> points;  // drawn in order; non-finite points skipped
};

// Lines with markers on x/y axes with ticks and a legend.
std::string LineChart(const ChartOptions& options, const std::vector<Line>& lines);

struct Span {
  std::string label;
  double start = 0;  // x units (seconds from the run's start)
  double end = 0;
  std::string state;  // colours the bar: succeeded, failed, skipped, running, pending
};

// One row per span on a shared time axis; spans with end <= start are drawn
// as a thin marker at start.
std::string Gantt(const ChartOptions& options, const std::vector<Span>& spans);

// Round tick values covering [lo, hi], about `count` of them.
std::vector<double> NiceTicks(double lo, double hi, int count = 5);

// The palette used for series, in order.
const std::vector<std::string>& Palette();

}  // namespace fedrx::report::svg

// Needs Debian's chromium (/usr/bin/chromium; deploy/install-deps.sh
// installs it); skipped with a message when it is missing. Renders each
// report kind in headless Chromium: a screenshot is taken (a real PNG of
// non-trivial size) and the DOM Chromium built holds every chart's <svg>
// with its drawn marks.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "services/report/candidate_report.h"
#include "services/report/study_report.h"
#include "tests/report/report_fixtures.h"

namespace fedrx::report {
namespace {

namespace fs = std::filesystem;

constexpr char kChromium[] = "/usr/bin/chromium";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory under the system temp dir, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "fedrx-report-XXXXXX").string();
    char* made = mkdtemp(templ.data());
    if (made != nullptr) path = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

// Runs chromium headless with `args` (HOME in `dir`, bounded by timeout);
// returns its exit status.
int RunChromium(const fs::path& dir, const std::string& args) {
  const std::string cmd =
      "cd '" + dir.string() + "' && HOME='" + dir.string() + "' XDG_CONFIG_HOME='" + dir.string() +
      "/.config' timeout 120 " + kChromium +
      " --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
      "--no-first-run --no-default-browser-check --hide-scrollbars "
      "--user-data-dir='" +
      dir.string() + "/profile' " + args + " 2>'" + dir.string() + "/chromium.log'";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Each <svg class="chart" ...>...</svg> of `dom` with whether it holds a mark.
std::map<std::string, bool> ChartsInDom(const std::string& dom) {
  std::map<std::string, bool> out;
  const std::string open = "<svg class=\"chart\" data-chart=\"";
  for (std::size_t at = dom.find(open); at != std::string::npos; at = dom.find(open, at + 1)) {
    const std::size_t name_start = at + open.size();
    const std::size_t name_end = dom.find('"', name_start);
    const std::size_t end = dom.find("</svg>", at);
    if (name_end == std::string::npos || end == std::string::npos) break;
    const std::string body = dom.substr(at, end - at);
    out[dom.substr(name_start, name_end - name_start)] = body.find("<rect") != std::string::npos ||
                                                         body.find("<path") != std::string::npos ||
                                                         body.find("<circle") != std::string::npos;
  }
  return out;
}

void RenderInChromium(const std::string& html, const std::set<std::string>& expected_charts) {
  if (!fs::exists(kChromium)) {
    GTEST_SKIP() << "needs Debian chromium at " << kChromium
                 << " (deploy/install-deps.sh installs it)";
  }
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const fs::path page = dir.path / "report.html";
  std::ofstream(page, std::ios::binary) << html;
  const fs::path png = dir.path / "report.png";
  const std::string url = "file://" + page.string();
  ASSERT_EQ(RunChromium(dir.path, "--window-size=1200,3000 --screenshot='" + png.string() + "' '" +
                                      url + "'"),
            0)
      << ReadFile(dir.path / "chromium.log");
  ASSERT_TRUE(fs::exists(png)) << ReadFile(dir.path / "chromium.log");
  const std::string image = ReadFile(png);
  ASSERT_GT(image.size(), 24u);
  EXPECT_EQ(image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // IHDR: width and height, big-endian, as the window asked for.
  const auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(image[at + i]);
    return v;
  };
  EXPECT_EQ(be32(16), 1200u);
  EXPECT_EQ(be32(20), 3000u);
  // A blank 1200x3000 page compresses to a few kB; charts and tables do not.
  EXPECT_GT(image.size(), 30000u);

  const fs::path dom_file = dir.path / "dom.html";
  ASSERT_EQ(RunChromium(dir.path, "--dump-dom '" + url + "' >'" + dom_file.string() + "'"), 0)
      << ReadFile(dir.path / "chromium.log");
  const std::string dom = ReadFile(dom_file);
  const std::map<std::string, bool> charts = ChartsInDom(dom);
  std::set<std::string> names;
  for (const auto& [name, drawn] : charts) {
    names.insert(name);
    EXPECT_TRUE(drawn) << name << " has no mark in Chromium's DOM";
  }
  EXPECT_EQ(names, expected_charts);
  EXPECT_EQ(dom.find("<script"), std::string::npos);
  // FEDRX_REPORT_TEST_OUT=DIR keeps the page and the screenshot for a look.
  if (const char* keep = std::getenv("FEDRX_REPORT_TEST_OUT"); keep != nullptr && *keep != 0) {
    std::error_code ec;
    fs::create_directories(keep, ec);
    const std::string stem = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::copy_file(page, fs::path(keep) / (stem + ".html"), fs::copy_options::overwrite_existing,
                  ec);
    fs::copy_file(png, fs::path(keep) / (stem + ".png"), fs::copy_options::overwrite_existing, ec);
  }
}

TEST(ChromiumRenderTest, CandidateReportDrawsEveryChart) {
  auto r = RenderCandidateReport(testing::FirstInHumanRun(), 1795719700000);
  ASSERT_TRUE(r.ok());
  RenderInChromium(r->html, testing::FirstInHumanCharts());
}

TEST(ChromiumRenderTest, StudyReportDrawsEveryChart) {
  const RenderedReport r = RenderStudyReport(testing::ThreeRoundStudy(), 1795719700000);
  RenderInChromium(r.html, {"metric-curves", "task-roc", "privacy-budget", "sites-per-round"});
}

}  // namespace
}  // namespace fedrx::report

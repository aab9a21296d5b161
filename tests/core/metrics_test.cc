#include "services/core/metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace fedrx::core {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(MetricsTest, CounterIsPrefixedWithServiceAndReadByFullName) {
  Metrics metrics("coord");
  metrics.Counter("rounds_total", "Rounds.", {{"outcome", "closed"}}).Inc(3);
  EXPECT_EQ(metrics.Read("fedrx_coord_rounds_total", {{"outcome", "closed"}}), 3);
  EXPECT_EQ(metrics.service(), "coord");
}

TEST(MetricsTest, ReadOfAbsentSeriesIsZeroAndDoesNotCreateIt) {
  Metrics metrics("t");
  metrics.Counter("rounds_total", "Rounds.", {{"outcome", "closed"}}).Inc();
  EXPECT_EQ(metrics.Read("fedrx_t_rounds_total", {{"outcome", "failed"}}), 0);
  EXPECT_EQ(metrics.Read("fedrx_t_rounds_total"), 0);
  EXPECT_EQ(metrics.Read("fedrx_t_nothing_total"), 0);
  EXPECT_FALSE(Contains(metrics.Serialize(), "failed"));
}

TEST(MetricsTest, SameNameAndLabelsShareOneSeries) {
  Metrics metrics("t");
  const CounterRef a = metrics.Counter("hits_total", "Hits.", {{"kind", "x"}});
  const CounterRef b = metrics.Counter("hits_total", "Hits.", {{"kind", "x"}});
  a.Inc();
  b.Inc(2);
  EXPECT_EQ(a.Value(), 3);
  EXPECT_EQ(metrics.Read("fedrx_t_hits_total", {{"kind", "x"}}), 3);
}

TEST(MetricsTest, GaugeSetsIncrementsAndDecrements) {
  Metrics metrics("t");
  const GaugeRef g = metrics.Gauge("sites", "Sites.");
  g.Set(10);
  g.Inc(2);
  g.Dec(5);
  EXPECT_EQ(g.Value(), 7);
  EXPECT_EQ(metrics.Read("fedrx_t_sites"), 7);
}

TEST(MetricsTest, NameTakenByAnotherTypeGivesADetachedHandle) {
  Metrics metrics("t");
  metrics.Counter("things_total", "Things.").Inc();
  const GaugeRef clash = metrics.Gauge("things_total", "Things as a gauge.");
  clash.Set(42);
  EXPECT_EQ(metrics.Read("fedrx_t_things_total"), 1);
  const std::string text = metrics.Serialize();
  EXPECT_TRUE(Contains(text, "# TYPE fedrx_t_things_total counter"));
  EXPECT_FALSE(Contains(text, "42"));
  // The clashing handle still works for its holder, it is just not exported.
  EXPECT_EQ(clash.Value(), 42);
}

TEST(MetricsTest, InvalidNameGivesADetachedHandle) {
  Metrics metrics("t");
  const CounterRef bad = metrics.Counter("bad-name total", "Invalid.");
  bad.Inc();
  const HistogramRef bad_h = metrics.Histogram("h", "Bad buckets.", {2.0, 1.0});
  bad_h.Observe(1.5);
  const std::string text = metrics.Serialize();
  EXPECT_FALSE(Contains(text, "bad-name"));
  EXPECT_FALSE(Contains(text, "fedrx_t_h_bucket"));
  // A valid family registered afterwards is unaffected.
  metrics.Counter("good_total", "Valid.").Inc();
  EXPECT_EQ(metrics.Read("fedrx_t_good_total"), 1);
}

TEST(MetricsTest, DefaultHandlesAreNoOps) {
  const CounterRef c;
  const GaugeRef g;
  const HistogramRef h;
  c.Inc();
  g.Set(3);
  h.Observe(1);
  EXPECT_EQ(c.Value(), 0);
  EXPECT_EQ(g.Value(), 0);
}

TEST(MetricsTest, CountMessageCountsByDirectionAndType) {
  Metrics metrics("t");
  metrics.CountMessage(Direction::kIn, "RegisterSite", 100);
  metrics.CountMessage(Direction::kIn, "RegisterSite", 50);
  metrics.CountMessage(Direction::kOut, "SiteRegistered", 30);
  EXPECT_EQ(metrics.Read("fedrx_t_messages_total", {{"direction", "in"}, {"type", "RegisterSite"}}),
            2);
  EXPECT_EQ(
      metrics.Read("fedrx_t_messages_total", {{"direction", "out"}, {"type", "SiteRegistered"}}),
      1);
  EXPECT_EQ(metrics.Read("fedrx_t_bytes_total", {{"direction", "in"}}), 150);
  EXPECT_EQ(metrics.Read("fedrx_t_bytes_total", {{"direction", "out"}}), 30);
}

TEST(MetricsTest, ObserveRequestCountsByTypeAndCodeAndBucketsLatency) {
  Metrics metrics("t");
  metrics.ObserveRequest("RegisterSite", "ok", 0.002);
  metrics.ObserveRequest("RegisterSite", "invalid_argument", 0.00003);
  EXPECT_EQ(metrics.Read("fedrx_t_requests_total", {{"type", "RegisterSite"}, {"code", "ok"}}), 1);
  EXPECT_EQ(metrics.Read("fedrx_t_requests_total",
                         {{"type", "RegisterSite"}, {"code", "invalid_argument"}}),
            1);
  const std::string text = metrics.Serialize();
  EXPECT_TRUE(Contains(text, "# TYPE fedrx_t_request_duration_seconds histogram")) << text;
  EXPECT_TRUE(Contains(text, "fedrx_t_request_duration_seconds_count{type=\"RegisterSite\"} 2"))
      << text;
  // 30us falls in the first (50us) bucket; 2ms only from the 2.5ms bucket on.
  EXPECT_TRUE(Contains(
      text, "fedrx_t_request_duration_seconds_bucket{type=\"RegisterSite\",le=\"5e-05\"} 1"))
      << text;
  EXPECT_TRUE(Contains(
      text, "fedrx_t_request_duration_seconds_bucket{type=\"RegisterSite\",le=\"0.001\"} 1"))
      << text;
  EXPECT_TRUE(Contains(
      text, "fedrx_t_request_duration_seconds_bucket{type=\"RegisterSite\",le=\"0.0025\"} 2"))
      << text;
  EXPECT_TRUE(
      Contains(text, "fedrx_t_request_duration_seconds_bucket{type=\"RegisterSite\",le=\"10\"} 2"))
      << text;
}

TEST(MetricsTest, RejectedAndErrorsAreCountedByReason) {
  Metrics metrics("t");
  metrics.CountRejected("verify_failed");
  metrics.CountRejected("verify_failed");
  metrics.CountError("redis", "timeout");
  EXPECT_EQ(metrics.Read("fedrx_t_rejected_total", {{"reason", "verify_failed"}}), 2);
  EXPECT_EQ(metrics.Read("fedrx_t_errors_total", {{"component", "redis"}, {"reason", "timeout"}}),
            1);
}

TEST(MetricsTest, SerializeUsesPrometheusTextFormat) {
  Metrics metrics("t");
  metrics.Counter("rounds_total", "Rounds closed.", {{"outcome", "closed"}}).Inc(3);
  const std::string text = metrics.Serialize();
  EXPECT_TRUE(Contains(text, "# HELP fedrx_t_rounds_total Rounds closed.\n")) << text;
  EXPECT_TRUE(Contains(text, "# TYPE fedrx_t_rounds_total counter\n")) << text;
  EXPECT_TRUE(Contains(text, "fedrx_t_rounds_total{outcome=\"closed\"} 3")) << text;
}

TEST(MetricsTest, ConcurrentFirstUseAndIncrementsAreAllCounted) {
  Metrics metrics("t");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < 1000; ++i) {
        metrics.Counter("work_total", "Work.", {{"worker", std::to_string(t % 2)}}).Inc();
        metrics.CountRejected("bad");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(metrics.Read("fedrx_t_work_total", {{"worker", "0"}}), 2000);
  EXPECT_EQ(metrics.Read("fedrx_t_work_total", {{"worker", "1"}}), 2000);
  EXPECT_EQ(metrics.Read("fedrx_t_rejected_total", {{"reason", "bad"}}), 4000);
}

}  // namespace
}  // namespace fedrx::core

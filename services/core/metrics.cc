#include "services/core/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <iostream>
#include <mutex>
#include <set>
#include <utility>

namespace fedrx::core {

void CounterRef::Inc(double by) const {
  if (c_ != nullptr) c_->Increment(by);
}
double CounterRef::Value() const { return c_ == nullptr ? 0 : c_->Value(); }

void GaugeRef::Set(double v) const {
  if (g_ != nullptr) g_->Set(v);
}
void GaugeRef::Inc(double by) const {
  if (g_ != nullptr) g_->Increment(by);
}
void GaugeRef::Dec(double by) const {
  if (g_ != nullptr) g_->Decrement(by);
}
double GaugeRef::Value() const { return g_ == nullptr ? 0 : g_->Value(); }

void HistogramRef::Observe(double v) const {
  if (h_ != nullptr) h_->Observe(v);
}

namespace {

// Request latencies range from tens of microseconds (a cached lookup) to
// seconds (a large model upload); roughly 1-2.5-5 steps across that span.
const std::vector<double>& RequestDurationBuckets() {
  static const std::vector<double> kBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                               0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                               0.5,     1.0,    2.5,     5.0,    10.0};
  return kBuckets;
}

const char* DirectionName(Direction d) { return d == Direction::kIn ? "in" : "out"; }

enum class Kind { kCounter, kGauge, kHistogram };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      return "histogram";
  }
  return "metric";
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  mutable std::mutex mu;
  // Keyed by full name. Families live as long as the registry.
  std::map<std::string, prometheus::Family<prometheus::Counter>*, std::less<>> counters;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*, std::less<>> gauges;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*, std::less<>> histograms;
  // The standard per-message counters, by direction and body type, so the
  // hot path does not build label sets and look families up every message.
  std::map<std::string, CounterRef, std::less<>> message_counters[2];
  CounterRef bytes_counters[2];
  // Names that were misused, logged once each so a hot path cannot flood the log.
  std::set<std::string, std::less<>> reported;

  // Detached metrics handed out when a family cannot be used (a name taken
  // by another type, an invalid name or label): callers keep working and
  // the problem is logged, but nothing is exported.
  prometheus::Counter dummy_counter;
  prometheus::Gauge dummy_gauge;
  prometheus::Histogram dummy_histogram{prometheus::Histogram::BucketBoundaries{}};

  // Requires mu.
  bool TakenByOtherKind(std::string_view name, Kind kind) const {
    return (kind != Kind::kCounter && counters.count(name) != 0) ||
           (kind != Kind::kGauge && gauges.count(name) != 0) ||
           (kind != Kind::kHistogram && histograms.count(name) != 0);
  }

  // Requires mu.
  void Report(const std::string& service, std::string_view name, Kind kind, std::string_view why) {
    if (!reported.emplace(name).second) return;
    std::cerr << "fedrx " << service << ": metric " << name << " (" << KindName(kind)
              << ") is not exported: " << why << "\n";
  }
};

Metrics::Metrics(std::string service) : service_(std::move(service)), impl_(new Impl) {}

Metrics::~Metrics() = default;

prometheus::Registry& Metrics::registry() { return *impl_->registry; }

CounterRef Metrics::Counter(std::string_view name, std::string_view help, const Labels& labels) {
  const std::string full = "fedrx_" + service_ + "_" + std::string(name);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->TakenByOtherKind(full, Kind::kCounter)) {
    impl_->Report(service_, full, Kind::kCounter, "the name is already used by another type");
    return CounterRef(&impl_->dummy_counter);
  }
  // prometheus-cpp reports invalid names and labels by throwing; this is
  // the boundary where that becomes a logged, harmless dummy.
  try {
    auto it = impl_->counters.find(full);
    if (it == impl_->counters.end()) {
      auto& family =
          prometheus::BuildCounter().Name(full).Help(std::string(help)).Register(*impl_->registry);
      it = impl_->counters.emplace(full, &family).first;
    }
    return CounterRef(&it->second->Add(labels));
  } catch (const std::exception& e) {
    impl_->Report(service_, full, Kind::kCounter, e.what());
    return CounterRef(&impl_->dummy_counter);
  }
}

GaugeRef Metrics::Gauge(std::string_view name, std::string_view help, const Labels& labels) {
  const std::string full = "fedrx_" + service_ + "_" + std::string(name);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->TakenByOtherKind(full, Kind::kGauge)) {
    impl_->Report(service_, full, Kind::kGauge, "the name is already used by another type");
    return GaugeRef(&impl_->dummy_gauge);
  }
  try {
    auto it = impl_->gauges.find(full);
    if (it == impl_->gauges.end()) {
      auto& family =
          prometheus::BuildGauge().Name(full).Help(std::string(help)).Register(*impl_->registry);
      it = impl_->gauges.emplace(full, &family).first;
    }
    return GaugeRef(&it->second->Add(labels));
  } catch (const std::exception& e) {
    impl_->Report(service_, full, Kind::kGauge, e.what());
    return GaugeRef(&impl_->dummy_gauge);
  }
}

HistogramRef Metrics::Histogram(std::string_view name, std::string_view help,
                                const std::vector<double>& buckets, const Labels& labels) {
  const std::string full = "fedrx_" + service_ + "_" + std::string(name);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->TakenByOtherKind(full, Kind::kHistogram)) {
    impl_->Report(service_, full, Kind::kHistogram, "the name is already used by another type");
    return HistogramRef(&impl_->dummy_histogram);
  }
  try {
    auto it = impl_->histograms.find(full);
    if (it == impl_->histograms.end()) {
      auto& family = prometheus::BuildHistogram()
                         .Name(full)
                         .Help(std::string(help))
                         .Register(*impl_->registry);
      it = impl_->histograms.emplace(full, &family).first;
    }
    // An existing series keeps the buckets it was created with.
    return HistogramRef(&it->second->Add(labels, buckets));
  } catch (const std::exception& e) {
    impl_->Report(service_, full, Kind::kHistogram, e.what());
    return HistogramRef(&impl_->dummy_histogram);
  }
}

void Metrics::CountMessage(Direction direction, std::string_view body_type, std::uint64_t bytes) {
  const int d = direction == Direction::kIn ? 0 : 1;
  CounterRef messages;
  CounterRef bytes_counter;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->message_counters[d].find(body_type);
    if (it != impl_->message_counters[d].end()) {
      messages = it->second;
      bytes_counter = impl_->bytes_counters[d];
    }
  }
  if (!messages.valid()) {
    // First message of this kind: create the series (outside the lock, which
    // Counter() takes itself), then remember them.
    const std::string dir = DirectionName(direction);
    messages = Counter("messages_total", "Messages sent or received, by direction and body type.",
                       {{"direction", dir}, {"type", std::string(body_type)}});
    bytes_counter = Counter("bytes_total",
                            "Bytes sent or received (envelope and tensors), by direction.",
                            {{"direction", dir}});
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->message_counters[d].emplace(std::string(body_type), messages);
    impl_->bytes_counters[d] = bytes_counter;
  }
  messages.Inc();
  bytes_counter.Inc(static_cast<double>(bytes));
}

void Metrics::ObserveRequest(std::string_view body_type, std::string_view code, double seconds) {
  const std::string type(body_type);
  Counter("requests_total", "Requests handled, by body type and result code.",
          {{"type", type}, {"code", std::string(code)}})
      .Inc();
  Histogram("request_duration_seconds", "Time spent handling a request, by body type.",
            RequestDurationBuckets(), {{"type", type}})
      .Observe(seconds);
}

void Metrics::CountRejected(std::string_view reason) {
  Counter("rejected_total", "Inputs refused (bad frames, bad fields, bad HTTP requests).",
          {{"reason", std::string(reason)}})
      .Inc();
}

void Metrics::CountError(std::string_view component, std::string_view reason) {
  Counter("errors_total", "Degraded operations, by component and reason.",
          {{"component", std::string(component)}, {"reason", std::string(reason)}})
      .Inc();
}

double Metrics::Read(std::string_view full_name, const Labels& labels) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // Has() before Add(): Add() would create the series being asked about.
  if (auto it = impl_->counters.find(full_name); it != impl_->counters.end()) {
    return it->second->Has(labels) ? it->second->Add(labels).Value() : 0;
  }
  if (auto it = impl_->gauges.find(full_name); it != impl_->gauges.end()) {
    return it->second->Has(labels) ? it->second->Add(labels).Value() : 0;
  }
  return 0;
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace fedrx::core

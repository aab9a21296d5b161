// Metrics: one Prometheus registry per service (prometheus-cpp), with the
// standard families every service exposes and typed handles for its own.
// Names are fedrx_<service>_<what>_<unit>; label values must be bounded.
// Thread-safe: handles may be used from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace fedrx::core {

using Labels = std::map<std::string, std::string>;

class CounterRef {
 public:
  CounterRef() = default;
  explicit CounterRef(prometheus::Counter* c) : c_(c) {}
  void Inc(double by = 1) const;
  double Value() const;
  bool valid() const { return c_ != nullptr; }

 private:
  prometheus::Counter* c_ = nullptr;
};

class GaugeRef {
 public:
  GaugeRef() = default;
  explicit GaugeRef(prometheus::Gauge* g) : g_(g) {}
  void Set(double v) const;
  void Inc(double by = 1) const;
  void Dec(double by = 1) const;
  double Value() const;

 private:
  prometheus::Gauge* g_ = nullptr;
};

class HistogramRef {
 public:
  HistogramRef() = default;
  explicit HistogramRef(prometheus::Histogram* h) : h_(h) {}
  void Observe(double v) const;

 private:
  prometheus::Histogram* h_ = nullptr;
};

enum class Direction { kIn, kOut };

class Metrics {
 public:
  // `service` becomes the name prefix: fedrx_<service>_.
  explicit Metrics(std::string service);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  const std::string& service() const { return service_; }

  // Families below are created on first use. `name` excludes the prefix:
  // Counter("rounds_total", ...) is fedrx_<service>_rounds_total.
  CounterRef Counter(std::string_view name, std::string_view help, const Labels& labels = {});
  GaugeRef Gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  HistogramRef Histogram(std::string_view name, std::string_view help,
                         const std::vector<double>& buckets, const Labels& labels = {});

  // Standard families.
  // fedrx_<s>_messages_total{direction,type} and fedrx_<s>_bytes_total{direction}.
  void CountMessage(Direction direction, std::string_view body_type, std::uint64_t bytes);
  // fedrx_<s>_requests_total{type,code} and fedrx_<s>_request_duration_seconds{type}.
  void ObserveRequest(std::string_view body_type, std::string_view code, double seconds);
  // fedrx_<s>_rejected_total{reason}: inputs refused (bad frames, bad fields, ...).
  void CountRejected(std::string_view reason);
  // fedrx_<s>_errors_total{component,reason}: degraded operations (Redis down, ...).
  void CountError(std::string_view component, std::string_view reason);

  // Current value of a counter or gauge sample (full name, exact labels); 0 if absent.
  double Read(std::string_view full_name, const Labels& labels = {}) const;
  // The Prometheus text exposition of every family.
  std::string Serialize() const;

  prometheus::Registry& registry();

 private:
  struct Impl;
  std::string service_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedrx::core

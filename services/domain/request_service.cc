#include "services/domain/request_service.h"

#include <algorithm>
#include <exception>
#include <iostream>
#include <memory>
#include <utility>

#include "services/core/curve_server.h"
#include "services/core/process.h"

namespace fedrx::domain {

RequestService::RequestService(RequestServiceOptions options, core::Bus& bus,
                               core::Metrics& metrics, const core::Clock& clock)
    : options_(std::move(options)),
      bus_(bus),
      metrics_(metrics),
      clock_(clock),
      in_flight_(
          metrics.Gauge("requests_in_flight", "Requests queued for or running on a worker")) {}

RequestService::~RequestService() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& t : workers_) t.join();
}

core::Status RequestService::Start() {
  if (options_.workers < 1) {
    return core::InvalidArgument("must be at least 1", options_.name + ".workers");
  }
  started_ = clock_.Now();
  FEDRX_RETURN_IF_ERROR(
      bus_.Serve(options_.endpoint, [this](core::Inbound&& in) { OnRequest(std::move(in)); }));
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  return core::Status::Ok();
}

void RequestService::OnRequest(core::Inbound&& in) {
  const codec::Body& body = in.message.body;
  const char* type = codec::BodyName(body);
  if (std::holds_alternative<codec::HealthCheck>(body)) {
    const core::Readiness ready = CheckReady();
    const double uptime = std::chrono::duration<double>(clock_.Now() - started_).count();
    core::Reply(
        bus_, in,
        codec::HealthStatus{options_.name, ready.ready, options_.version, uptime, ready.reason})
        .IgnoreError();
    return;
  }
  auto handler = handlers_.find(body.index());
  if (handler == handlers_.end()) {
    metrics_.CountRejected("message_type");
    metrics_.ObserveRequest(type, core::StatusCodeName(core::StatusCode::kUnimplemented), 0);
    core::ReplyError(
        bus_, in,
        core::Status(core::StatusCode::kUnimplemented,
                     std::string("the ") + options_.name + " service does not answer " + type,
                     "envelope.body"))
        .IgnoreError();
    return;
  }
  if (draining_) {
    core::ReplyError(
        bus_, in,
        core::Unavailable("the " + options_.name + " service is shutting down", options_.name))
        .IgnoreError();
    return;
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (queued_.size() >= options_.max_queued) {
      lock.unlock();
      metrics_.CountRejected("overloaded");
      metrics_.ObserveRequest(type, core::StatusCodeName(core::StatusCode::kResourceExhausted), 0);
      core::ReplyError(bus_, in,
                       core::ResourceExhausted(std::to_string(options_.max_queued) +
                                                   " requests are already waiting; retry later",
                                               options_.name + ".max_queued"))
          .IgnoreError();
      return;
    }
    Job job;
    job.in = std::move(in);
    job.handler = &handler->second;
    queued_.push_back(std::move(job));
    in_flight_.Set(static_cast<double>(queued_.size() + running_ + done_.size()));
  }
  work_ready_.notify_one();
}

void RequestService::WorkerLoop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
      if (stopping_) return;
      job = std::move(queued_.front());
      queued_.pop_front();
      ++running_;
    }
    const auto begin = std::chrono::steady_clock::now();
    try {
      job.answer = (*job.handler)(job.in.message.body);
    } catch (const std::exception& e) {
      job.answer = core::Internal(std::string("the handler failed: ") + e.what(), options_.name);
    } catch (...) {
      job.answer = core::Internal("the handler failed", options_.name);
    }
    job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
      done_.push_back(std::move(job));
    }
    // The answer goes out from the runner's thread: wake its poll now.
    bus_.Wake();
  }
}

void RequestService::Finish(Job& job) {
  const char* type = codec::BodyName(job.in.message.body);
  if (job.answer.ok()) {
    metrics_.ObserveRequest(type, "ok", job.seconds);
    if (core::Status s = core::Reply(bus_, job.in, std::move(*job.answer)); !s.ok()) {
      metrics_.CountError(options_.name, "reply");
      std::cerr << options_.name << ": could not answer a " << type << ": " << s << "\n";
    }
    return;
  }
  const core::Status& error = job.answer.status();
  metrics_.ObserveRequest(type, core::StatusCodeName(error.code()), job.seconds);
  if (error.code() == core::StatusCode::kInvalidArgument) metrics_.CountRejected("bad_field");
  if (error.code() == core::StatusCode::kInternal) metrics_.CountError(options_.name, "handler");
  core::ReplyError(bus_, job.in, error).IgnoreError();
}

void RequestService::Every(std::chrono::milliseconds interval, std::function<void()> task) {
  periodic_.push_back(Periodic{std::max(interval, std::chrono::milliseconds(1)), std::move(task)});
}

core::Status RequestService::Tick() {
  if (!periodic_.empty() && !draining_) {
    const auto now = clock_.Now();
    for (Periodic& p : periodic_) {
      if (p.ran && now - p.last < p.interval) continue;
      p.ran = true;
      p.last = now;
      p.task();
    }
  }
  std::deque<Job> done;
  std::size_t pending = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
    pending = queued_.size() + running_;
  }
  for (Job& job : done) Finish(job);
  in_flight_.Set(static_cast<double>(pending));
  return core::Status::Ok();
}

core::Readiness RequestService::CheckReady() {
  if (draining_) return {false, "draining"};
  return {true, ""};
}

void RequestService::BeginDrain() { draining_ = true; }

bool RequestService::Drained() {
  Tick().IgnoreError();
  return in_flight() == 0;
}

std::size_t RequestService::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_.size() + running_ + done_.size();
}

core::Status LoadRequestServiceOptions(const core::Config& config, RequestServiceOptions& options) {
  const std::string& p = options.name;
  options.endpoint = config.StringOr(p + ".endpoint", options.endpoint);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t workers,
                         config.IntOr(p + ".workers", options.workers, 1, 64));
  options.workers = static_cast<int>(workers);
  FEDRX_ASSIGN_OR_RETURN(
      std::int64_t queued,
      config.IntOr(p + ".max_queued", static_cast<std::int64_t>(options.max_queued), 1, 100000));
  options.max_queued = static_cast<std::size_t>(queued);
  return core::Status::Ok();
}

int RunRequestServiceMain(int argc, char** argv, RequestServiceOptions options, const char* usage,
                          const std::function<void(RequestService&)>& install) {
  return RunRequestServiceMainWith(argc, argv, std::move(options), usage,
                                   [&install](RequestService& service, core::ProcessParts&) {
                                     install(service);
                                     return core::Status::Ok();
                                   });
}

int RunRequestServiceMainWith(
    int argc, char** argv, RequestServiceOptions options, const char* usage,
    const std::function<core::Status(RequestService&, core::ProcessParts&)>& setup) {
  const std::string name = options.name;
  core::ProcessSpec spec{
      "fedrx-" + name, name, usage, {}, [name](const core::Config& config, core::BusOptions& bus) {
        return core::ConfigureCurveServer(config, bus, name);
      }};
  return core::RunServiceMain(
      argc, argv, spec, [&](core::ProcessParts& p) -> core::Result<std::unique_ptr<core::Service>> {
        RequestServiceOptions o = options;
        FEDRX_RETURN_IF_ERROR(LoadRequestServiceOptions(p.config, o));
        FEDRX_RETURN_IF_ERROR(core::InstallCurveClients(p, name).status());
        auto service = std::make_unique<RequestService>(o, p.bus, p.metrics, p.clock);
        FEDRX_RETURN_IF_ERROR(setup(*service, p));
        return std::unique_ptr<core::Service>(std::move(service));
      });
}

}  // namespace fedrx::domain

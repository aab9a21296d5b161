// SiteDirectory: which sites the coordinator can reach now, through which
// gateway connection, and which studies each has approved; learnt from every
// message a gateway forwards. In memory: after a restart it refills from the
// sites' heartbeats within seconds. Not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "services/coordinator/study_runner.h"
#include "services/core/bus.h"
#include "services/core/clock.h"

namespace fedrx::coordinator {

class SiteDirectory final : public SiteChannel {
 public:
  SiteDirectory(core::Bus& bus, const core::Clock& clock,
                std::chrono::milliseconds alive_window = std::chrono::seconds(6))
      : bus_(bus), clock_(clock), alive_window_(alive_window) {}

  // `site` was heard from over `peer` (a gateway connection) just now.
  void Heard(const std::string& site, const core::PeerId& peer);
  void Approved(const std::string& site, std::vector<std::string> studies);
  // `site` registered with preparation hash `hash` (RegisterSite.schema_hash).
  void Prepared(const std::string& site, std::string hash);

  std::vector<std::string> AvailableSites(const std::string& study_id) const override;
  core::Status SendToSite(const std::string& site, codec::Message message) override;
  std::optional<std::string> PreparationHashOf(const std::string& site) const override;

 private:
  struct Entry {
    core::PeerId peer;
    std::chrono::steady_clock::time_point last_seen;
    std::set<std::string> approved;
    std::optional<std::string> preparation_hash;
  };
  core::Bus& bus_;
  const core::Clock& clock_;
  std::chrono::milliseconds alive_window_;
  std::map<std::string, Entry> sites_;
};

}  // namespace fedrx::coordinator

#include "services/coordinator/site_directory.h"

namespace fedrx::coordinator {

void SiteDirectory::Heard(const std::string& site, const core::PeerId& peer) {
  Entry& e = sites_[site];
  e.peer = peer;
  e.last_seen = clock_.Now();
}

void SiteDirectory::Approved(const std::string& site, std::vector<std::string> studies) {
  sites_[site].approved = std::set<std::string>(studies.begin(), studies.end());
}

void SiteDirectory::Prepared(const std::string& site, std::string hash) {
  sites_[site].preparation_hash = std::move(hash);
}

std::optional<std::string> SiteDirectory::PreparationHashOf(const std::string& site) const {
  auto it = sites_.find(site);
  if (it == sites_.end()) return std::nullopt;
  return it->second.preparation_hash;
}

std::vector<std::string> SiteDirectory::AvailableSites(const std::string& study_id) const {
  std::vector<std::string> out;
  const auto now = clock_.Now();
  for (const auto& [site, e] : sites_) {
    if (!e.peer.empty() && now - e.last_seen <= alive_window_ && e.approved.count(study_id) != 0) {
      out.push_back(site);
    }
  }
  return out;
}

core::Status SiteDirectory::SendToSite(const std::string& site, codec::Message message) {
  auto it = sites_.find(site);
  if (it == sites_.end() || it->second.peer.empty()) {
    return core::Unavailable("no route to site " + site, "site " + site);
  }
  message.header.route_to = site;
  return bus_.SendTo(it->second.peer, std::move(message));
}

}  // namespace fedrx::coordinator

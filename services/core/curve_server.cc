#include "services/core/curve_server.h"

#include <iostream>
#include <memory>
#include <string>

#include "services/core/curve_keys.h"
#include "services/core/static_authenticator.h"

namespace fedrx::core {

Result<bool> CurveServerMode(const Config& config, std::string_view prefix) {
  const std::string key_file = std::string(prefix) + ".curve_key_file";
  const std::string clients_file = std::string(prefix) + ".clients_file";
  const bool keys = config.Has(key_file);
  const bool clients = config.Has(clients_file);
  if (keys != clients) {
    const std::string& missing = keys ? clients_file : key_file;
    const std::string& given = keys ? key_file : clients_file;
    return InvalidArgument("CURVE mode needs " + missing + " as well as " + given + " (set at " +
                               config.SourceOf(given) + ")",
                           missing);
  }
  return keys;
}

Status ConfigureCurveServer(const Config& config, BusOptions& bus, std::string_view prefix) {
  FEDRX_ASSIGN_OR_RETURN(bool curve, CurveServerMode(config, prefix));
  if (!curve) return Status::Ok();
  FEDRX_ASSIGN_OR_RETURN(std::string path, config.String(std::string(prefix) + ".curve_key_file"));
  FEDRX_ASSIGN_OR_RETURN(CurveKeyPair pair, LoadCurveKeyPair(path));
  bus.curve_public_key = pair.public_key;
  bus.curve_secret_key = pair.secret_key;
  return Status::Ok();
}

Result<bool> InstallCurveClients(ProcessParts& parts, std::string_view prefix) {
  FEDRX_ASSIGN_OR_RETURN(bool curve, CurveServerMode(parts.config, prefix));
  if (!curve) return false;
  FEDRX_ASSIGN_OR_RETURN(std::string clients,
                         parts.config.String(std::string(prefix) + ".clients_file"));
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<StaticAuthenticator> authenticator,
                         StaticAuthenticator::Load(clients));
  std::cerr << prefix << ": CURVE mode, " << authenticator->size()
            << " authorised client key(s) from " << clients << "\n";
  std::shared_ptr<StaticAuthenticator> shared = std::move(authenticator);
  parts.bus.SetAuthenticator(shared.get());
  parts.keep_alive.push_back(shared);
  return true;
}

}  // namespace fedrx::core

// The tox service's request logic: PredictToxicity -> ToxicityPanel, each
// structure's panel of task probabilities with conformal p-values and
// prediction sets, and its applicability-domain flag, from the federated
// model of the panel's study (serving::ModelServer). Thread-safe: Predict is
// called from the RequestService's workers; the ModelServer is refreshed
// elsewhere (one thread).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/config.h"
#include "services/core/metrics.h"
#include "services/core/status.h"
#include "services/serving/model_server.h"

namespace fedrx::tox {

struct ToxOptions {
  // Panel name -> served study id, e.g. {"tox21": "tox21-demo"}.
  std::map<std::string, std::string> panels;
  // The panel of a request that names none.
  std::string default_panel = "tox21";
  // Structures per request; more are refused whole (1..4096).
  std::size_t max_structures = 1000;
};

// Parses "name=study[,name=study...]" (spaces around items ignored).
// kInvalidArgument (where = `where`) for an empty list, an item without '=',
// an empty or repeated name, or a study id core::ValidateId refuses.
core::Result<std::map<std::string, std::string>> ParsePanels(std::string_view text,
                                                             const std::string& where);

// tox.panels, tox.default_panel (first panel when unset and "tox21" is not
// one), tox.max_structures.
core::Result<ToxOptions> ToxOptionsFrom(const core::Config& config);

class ToxHandler {
 public:
  // `server` serves every panel's study and, like `metrics`, is not owned and
  // outlives the handler. kInvalidArgument when there is no panel, the
  // default panel is not one of them, or max_structures is out of range.
  // Metrics: structures_total{panel, domain} with domain "in" | "out" (the
  // domain flag), "unassessed" (no domain statistics for the model version)
  // or "refused" (the structure could not be read), counted per answered
  // structure.
  static core::Result<std::unique_ptr<ToxHandler>> Create(ToxOptions options,
                                                          const serving::ModelServer& server,
                                                          core::Metrics& metrics);

  // Answers one request. Errors for the whole request (nothing counted per
  // structure), `where` naming the field: kInvalidArgument for no structures,
  // more than max_structures, an unknown panel ("PredictToxicity.panel"), an
  // unknown or repeated task ("PredictToxicity.tasks[i]"), confidence outside
  // (0, 1) ("PredictToxicity.confidence"); kUnavailable naming the study
  // while no model version is loaded for the panel. An unreadable, empty or
  // oversized structure is answered with its own error; the others are
  // predicted. All structures of a request are answered by one model
  // version, even when a new one is switched to meanwhile.
  core::Result<codec::ToxicityPanel> Predict(const codec::PredictToxicity& request) const;

 private:
  struct PanelMetrics {
    core::CounterRef in, out, unassessed, refused;
  };
  ToxHandler(ToxOptions options, const serving::ModelServer& server, core::Metrics& metrics);

  const ToxOptions options_;
  const serving::ModelServer& server_;
  std::map<std::string, PanelMetrics> metrics_;  // by panel; fixed after construction
};

}  // namespace fedrx::tox

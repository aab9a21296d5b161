#include "gateway/gateway_routes.h"

#include <string_view>
#include <type_traits>

namespace fedrx::gateway {
namespace {

template <typename T, typename... Ts>
constexpr bool IsOneOf = (std::is_same_v<T, Ts> || ...);

// Requests only; the answers come back by correlation and are not routed.
template <typename T>
constexpr std::string_view ServiceOfType() {
  if constexpr (IsOneOf<T, codec::TranslateDose, codec::SimulatePk, codec::FitPk>) {
    return "translational";
  } else if constexpr (IsOneOf<T, codec::ComputeSampleSize, codec::SimulateEscalation,
                               codec::RunVirtualTrial>) {
    return "trial";
  } else if constexpr (std::is_same_v<T, codec::PredictToxicity>) {
    return "tox";
  } else if constexpr (std::is_same_v<T, codec::AssessClinical>) {
    return "clinical";
  } else if constexpr (std::is_same_v<T, codec::ReverseTranslate>) {
    return "reverse";
  } else if constexpr (IsOneOf<T, codec::RunWorkflow, codec::GetWorkflowRun, codec::ListWorkflows,
                               codec::ListWorkflowRuns>) {
    return "orchestrator";
  } else if constexpr (IsOneOf<T, codec::CreateReport, codec::GetReport, codec::ListReports>) {
    return "report";
  } else {
    return kCoordinatorService;
  }
}

}  // namespace

std::string_view ServiceFor(const codec::Body& body) {
  return std::visit([](const auto& v) { return ServiceOfType<std::decay_t<decltype(v)>>(); }, body);
}

const std::vector<std::string_view>& DomainServices() {
  static const std::vector<std::string_view> services{
      "translational", "trial", "tox", "clinical", "reverse", "orchestrator", "report"};
  return services;
}

}  // namespace fedrx::gateway

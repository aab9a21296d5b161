// What a renderer returns: the report as JSON and as one HTML page, with
// the title and the one-line summary kept in the report's info.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace fedrx::report {

struct RenderedReport {
  nlohmann::json json;
  std::string html;
  std::string title;
  std::string summary;
};

}  // namespace fedrx::report

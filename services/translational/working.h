// Helpers that build an answer's codec::Working (the steps a reader can check
// by hand). Internal to fedrx_translational; not thread-safe per builder.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "messages/codec/message.h"

namespace fedrx::translational {

inline codec::Quantity Qty(std::string name, double value, std::string unit) {
  return codec::Quantity{std::move(name), value, std::move(unit)};
}

// A number for messages and notes, 6 significant digits.
inline std::string FormatNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Appends steps and notes to a Working it does not own.
class WorkingBuilder {
 public:
  explicit WorkingBuilder(codec::Working* working) : working_(working) {}

  void Step(std::string label, std::string formula, std::vector<codec::Quantity> inputs,
            codec::Quantity result, std::string reference) {
    working_->steps.push_back(codec::WorkStep{std::move(label), std::move(formula),
                                              std::move(inputs), std::move(result),
                                              std::move(reference)});
  }
  void Note(std::string note) { working_->notes.push_back(std::move(note)); }

 private:
  codec::Working* working_;
};

}  // namespace fedrx::translational

// Helpers that build a domain service's answer's codec::Working (the steps a
// reader can check by hand): quantities, steps, notes, numbers in text.
// Header-only, shared by the domain services; not thread-safe per builder.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "messages/codec/message.h"

namespace fedrx::domain {

inline codec::Quantity Qty(std::string name, double value, std::string unit = {}) {
  return codec::Quantity{std::move(name), value, std::move(unit)};
}

// A number for messages and notes, `digits` significant digits.
inline std::string FormatNumber(double v, int digits = 6) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

inline void AddStep(codec::Working& w, std::string label, std::string formula,
                    std::vector<codec::Quantity> inputs, codec::Quantity result,
                    std::string reference) {
  w.steps.push_back(codec::WorkStep{std::move(label), std::move(formula), std::move(inputs),
                                    std::move(result), std::move(reference)});
}

// Appends steps and notes to a Working it does not own.
class WorkingBuilder {
 public:
  explicit WorkingBuilder(codec::Working* working) : working_(working) {}

  void Step(std::string label, std::string formula, std::vector<codec::Quantity> inputs,
            codec::Quantity result, std::string reference) {
    AddStep(*working_, std::move(label), std::move(formula), std::move(inputs), std::move(result),
            std::move(reference));
  }
  void Note(std::string note) { working_->notes.push_back(std::move(note)); }

 private:
  codec::Working* working_;
};

}  // namespace fedrx::domain

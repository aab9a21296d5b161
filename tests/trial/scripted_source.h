// A test double for the escalation engine: DLT counts scripted per dose,
// cohort by cohort (0 once a dose's script runs out), so a test can walk a
// design through exactly the outcomes whose decisions it checks.
#pragma once

#include <deque>
#include <utility>
#include <vector>

#include "services/trial/escalation.h"

namespace fedrx::trial::test_support {

class ScriptedSource final : public OutcomeSource {
 public:
  explicit ScriptedSource(std::vector<std::deque<int>> script) : script_(std::move(script)) {}
  int CountDlts(int dose, int, Rng&) const override {
    auto& q = script_[dose];
    if (q.empty()) return 0;
    const int v = q.front();
    q.pop_front();
    return v;
  }

 private:
  mutable std::vector<std::deque<int>> script_;
};

}  // namespace fedrx::trial::test_support

// References and conditions in workflow files: `${path}` templates inside a step's `with`, and
// the `when:` condition language. Pure functions and an immutable parsed Condition; thread-safe.
//
// Scope: every evaluation runs against {"input": {...}, "steps": {"<id>": <output json>, ...}}.
// Paths: `input.<name>` or `steps.<id>`, followed by any number of `.field` and `[index]`
// (index a non-negative integer), e.g. `steps.tox.tasks[0].probability`. Names are letters,
// digits, '_' and '-' (not starting with a digit or '-').
//
// Templates: a JSON string that is exactly "${path}" (blanks inside the braces allowed) becomes
// the value at the path, whatever its type; "${path}" inside a longer string is replaced by the
// value's text (a string as is, anything else as compact JSON). Arrays and objects are resolved
// element by element; object keys are never templates.
//
// Conditions:
//   expr       := and_expr ('or' and_expr)*
//   and_expr   := not_expr ('and' not_expr)*
//   not_expr   := 'not' not_expr | comparison
//   comparison := operand (('=='|'!='|'<'|'<='|'>'|'>=') operand)?
//   operand    := '(' expr ')' | number | '-' number | 'string' | true | false | null
//               | 'len' '(' path ')' | path
// `and`/`or` short-circuit (a path on the side not evaluated is never looked up). Operands of
// and/or/not and the whole condition must be booleans. `==`/`!=` compare numbers by value and
// values of the same JSON type structurally; `null` may be compared with anything. `<` ... `>=`
// take two numbers or two strings. Any other pairing is InvalidArgument naming both types.
// A path that is missing is FailedPrecondition naming the path, except inside len(): len() of a
// missing path or of null is 0, so `len(steps.flags.organ_classes) > 0` is false when the flags
// step produced nothing. len() of a string counts UTF-8 code points; of a number or boolean it is
// InvalidArgument.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::orchestrator {

// `with` with every template replaced by its value in `scope`. A missing path is
// FailedPrecondition ("missing value at steps.tox.tasks[3]: ...") whose where is `where` followed
// by the location inside `with` (e.g. "steps.dose.with.noaels[0]"); a malformed template is
// InvalidArgument at the same where.
core::Result<nlohmann::json> ResolveTemplate(const nlohmann::json& with,
                                             const nlohmann::json& scope, std::string_view where);

// Step ids named by templates in `with` (the segment after "steps."), sorted and unique.
// Malformed templates are ignored here (ValidateTemplate reports them).
std::vector<std::string> ReferencedSteps(const nlohmann::json& with);
// Input names named by templates in `with` (the segment after "input."), sorted and unique.
std::vector<std::string> ReferencedInputs(const nlohmann::json& with);

// OK when every template in `with` is well formed; else InvalidArgument saying what is wrong,
// where = `where` followed by the location inside `with`.
core::Status ValidateTemplate(const nlohmann::json& with, std::string_view where);

// Template references inside one string, in order of appearance: the path text of each `${...}`
// (blanks trimmed). InvalidArgument for an unterminated `${`, an empty or malformed path; the
// message gives the 1-based column in `text`.
core::Result<std::vector<std::string>> TemplatePaths(std::string_view text);

// A parsed `when:` condition. Copyable (the syntax tree is shared and immutable).
class Condition {
 public:
  // InvalidArgument for a syntax error: the message says what was expected and at which column
  // (1-based, in `text`); where = "column N".
  static core::Result<Condition> Parse(std::string_view text);

  // True or false, or the error of the first path/type problem met (see the file comment).
  core::Result<bool> Evaluate(const nlohmann::json& scope) const;

  // Step ids / input names the condition reads (len() included), sorted and unique.
  std::vector<std::string> ReferencedSteps() const;
  std::vector<std::string> ReferencedInputs() const;
  const std::string& text() const { return text_; }

  struct Node;  // syntax tree node, defined in expression.cc

 private:
  Condition() = default;

  std::string text_;
  std::shared_ptr<const Node> root_;
  std::vector<std::string> steps_;
  std::vector<std::string> inputs_;
};

}  // namespace fedrx::orchestrator

// Templates (`${path}` in a step's `with`) and `when:` conditions: values, precedence, missing
// paths, type errors and syntax errors with their column.
#include "services/orchestrator/expression.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

json Scope() {
  return json::parse(R"({
    "input": {"structure": "CCO", "dose": 3, "ratio": 0.5, "area": "oncology",
              "noaels": [{"species": "rat", "mg_per_kg": 50}], "flag": true, "empty": []},
    "steps": {"tox": {"tasks": [{"name": "NR-AR", "p": 0.8}, {"name": "SR-p53", "p": 0.1}],
                      "panel": "tox21"},
              "flags": {"organ_classes": ["liver", "kidney"], "note": null}}
  })");
}

core::Result<bool> Eval(const std::string& text) {
  auto condition = Condition::Parse(text);
  if (!condition.ok()) return condition.status();
  return condition->Evaluate(Scope());
}

// A string that is exactly "${path}" becomes the value itself, keeping its JSON type.
TEST(TemplateTest, WholeStringReferenceKeepsType) {
  auto out = ResolveTemplate(json::parse(R"({"n": "${input.dose}", "arr": "${input.noaels}",
      "obj": "${steps.tox.tasks[0]}", "b": "${ input.flag }", "p": "${steps.tox.tasks[1].p}"})"),
                             Scope(), "steps.x.with");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)["n"], json(3));
  EXPECT_EQ((*out)["arr"], json::parse(R"([{"species": "rat", "mg_per_kg": 50}])"));
  EXPECT_EQ((*out)["obj"], json::parse(R"({"name": "NR-AR", "p": 0.8})"));
  EXPECT_EQ((*out)["b"], json(true));
  EXPECT_EQ((*out)["p"], json(0.1));
}

// Inside a longer string a reference is replaced by its text: strings as is, others as JSON.
TEST(TemplateTest, EmbeddedReferenceIsText) {
  auto out = ResolveTemplate(json("area ${input.area}, dose ${input.dose} mg, first "
                                  "${steps.tox.tasks[0].name}; ${input.flag}"),
                             Scope(), "w");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, json("area oncology, dose 3 mg, first NR-AR; true"));
  // Non-template strings and other values pass unchanged; a lone '$' is literal.
  auto plain =
      ResolveTemplate(json::parse(R"({"a": "cost $5", "b": 1.5, "c": null})"), Scope(), "w");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, json::parse(R"({"a": "cost $5", "b": 1.5, "c": null})"));
}

// Arrays and objects are resolved element by element, at any depth; keys are untouched.
TEST(TemplateTest, NestedArraysAndObjectsResolved) {
  auto out = ResolveTemplate(
      json::parse(
          R"({"smiles": ["${input.structure}", "C"], "deep": {"x": [{"y": "${steps.flags.organ_classes[1]}"}]},
                      "${input.dose}": "k"})"),
      Scope(), "w");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)["smiles"], json::parse(R"(["CCO", "C"])"));
  EXPECT_EQ((*out)["deep"]["x"][0]["y"], json("kidney"));
  EXPECT_EQ((*out)["${input.dose}"], json("k"));
}

// A missing path is FailedPrecondition naming the path; where locates the string in `with`.
TEST(TemplateTest, MissingPathIsFailedPreconditionNamingPathAndWhere) {
  auto out = ResolveTemplate(json::parse(R"({"a": {"b": [1, "${steps.tox.tasks[5].p}"]}})"),
                             Scope(), "steps.flags.with");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(out.status().where(), "steps.flags.with.a.b[1]");
  EXPECT_THAT(out.status().message(), HasSubstr("steps.tox.tasks[5].p"));
  EXPECT_THAT(out.status().message(), HasSubstr("no index 5"));

  auto no_step = ResolveTemplate(json("${steps.reverse.x}"), Scope(), "w");
  ASSERT_FALSE(no_step.ok());
  EXPECT_EQ(no_step.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_step.status().message(), HasSubstr("step 'reverse' has no output"));

  auto no_field = ResolveTemplate(json("x ${input.missing}"), Scope(), "w");
  ASSERT_FALSE(no_field.ok());
  EXPECT_THAT(no_field.status().message(), HasSubstr("input has no field 'missing'"));

  auto not_array = ResolveTemplate(json("${input.area[0]}"), Scope(), "w");
  ASSERT_FALSE(not_array.ok());
  EXPECT_THAT(not_array.status().message(), HasSubstr("input.area is string, not an array"));
}

// Malformed templates are InvalidArgument with the column of the '${'.
TEST(TemplateTest, MalformedTemplatesRefused) {
  auto unterminated = ResolveTemplate(json("ab ${input.x"), Scope(), "w.s");
  ASSERT_FALSE(unterminated.ok());
  EXPECT_EQ(unterminated.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(unterminated.status().where(), "w.s");
  EXPECT_THAT(unterminated.status().message(), HasSubstr("unterminated '${' at column 4"));

  EXPECT_THAT(ValidateTemplate(json("${}"), "w").message(), HasSubstr("empty reference"));
  EXPECT_THAT(ValidateTemplate(json("${foo.bar}"), "w").message(), HasSubstr("unknown name 'foo'"));
  EXPECT_THAT(ValidateTemplate(json("${steps}"), "w").message(),
              HasSubstr("'steps' must be followed by .<step id>"));
  EXPECT_THAT(ValidateTemplate(json("${input.a[x]}"), "w").message(),
              HasSubstr("non-negative integer"));
  EXPECT_THAT(ValidateTemplate(json("${input.a b}"), "w").message(), HasSubstr("unexpected 'b'"));
  EXPECT_TRUE(ValidateTemplate(json::parse(R"({"a": ["${input.a.b[2]}", "x"]})"), "w").ok());
}

// Referenced step ids and input names are collected from every string, sorted and unique.
TEST(TemplateTest, ReferencedStepsAndInputsSortedUnique) {
  const json with =
      json::parse(R"({"a": "${steps.tox.x} and ${steps.dose.y}", "b": ["${steps.tox}"],
                                    "c": {"d": "${input.noaels}", "e": "${input.area}"}, "f": "${bad"})");
  EXPECT_THAT(ReferencedSteps(with), ElementsAre("dose", "tox"));
  EXPECT_THAT(ReferencedInputs(with), ElementsAre("area", "noaels"));
  auto paths = TemplatePaths("${steps.tox.x} / ${ input.a[0] }");
  ASSERT_TRUE(paths.ok());
  EXPECT_THAT(*paths, ElementsAre("steps.tox.x", "input.a[0]"));
}

// `and` binds tighter than `or`, `not` tighter than `and`; parentheses override.
TEST(ConditionTest, PrecedenceOfNotAndOr) {
  EXPECT_TRUE(*Eval("true or false and false"));  // true or (false and false)
  EXPECT_FALSE(*Eval("(true or false) and false"));
  EXPECT_FALSE(*Eval("not false and false"));  // (not false) and false
  EXPECT_TRUE(*Eval("not (false and false)"));
  EXPECT_TRUE(*Eval("not not true"));
  EXPECT_TRUE(*Eval("false or false or input.flag"));
  EXPECT_TRUE(*Eval("input.dose > 2 and input.area == 'oncology' or false"));
  EXPECT_FALSE(*Eval("not input.dose >= 3"));  // not (3 >= 3)
}

// Comparisons: numbers by value (integer vs float), strings lexicographically, null with anything.
TEST(ConditionTest, ComparisonsOnNumbersStringsNull) {
  EXPECT_TRUE(*Eval("input.dose == 3.0"));
  EXPECT_TRUE(*Eval("input.ratio < 1 and input.ratio >= 0.5 and input.ratio <= .5"));
  EXPECT_TRUE(*Eval("steps.tox.tasks[0].p > 0.75"));
  EXPECT_TRUE(*Eval("input.dose != 4"));
  EXPECT_TRUE(*Eval("-1.5e0 < input.ratio"));
  EXPECT_TRUE(*Eval("input.area > 'neuro'"));
  EXPECT_TRUE(*Eval("steps.tox.panel == 'tox21'"));
  EXPECT_TRUE(*Eval("'it\\'s' == 'it\\'s'"));
  EXPECT_TRUE(*Eval("steps.flags.note == null"));
  EXPECT_TRUE(*Eval("input.area != null"));
  EXPECT_TRUE(*Eval("input.noaels == input.noaels"));
}

// len(): array/object size, string code points, 0 for a missing path or null.
TEST(ConditionTest, LenCountsAndMissingPathIsZero) {
  EXPECT_TRUE(*Eval("len(steps.flags.organ_classes) == 2"));
  EXPECT_TRUE(*Eval("len(steps.tox) == 2"));
  EXPECT_TRUE(*Eval("len(input.area) == 8"));
  EXPECT_TRUE(*Eval("len(input.empty) == 0"));
  EXPECT_TRUE(*Eval("len(steps.reverse.items) == 0"));  // step absent
  EXPECT_TRUE(*Eval("len(steps.flags.organ_classes[7]) == 0"));
  EXPECT_TRUE(*Eval("len(steps.flags.note) == 0"));  // null
  auto number = Eval("len(input.dose) > 0");
  ASSERT_FALSE(number.ok());
  EXPECT_EQ(number.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(number.status().message(), HasSubstr("len() of a number (input.dose)"));
}

// A missing path outside len() is FailedPrecondition naming it; short-circuit skips it.
TEST(ConditionTest, MissingPathNamedAndShortCircuit) {
  auto missing = Eval("steps.reverse.ok == true");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("steps.reverse.ok"));
  EXPECT_FALSE(*Eval("false and steps.reverse.ok == true"));
  EXPECT_TRUE(*Eval("true or steps.reverse.ok"));
}

// Incompatible types are InvalidArgument naming both types and the operator's column.
TEST(ConditionTest, TypeErrorsAreInvalidArgument) {
  auto mixed = Eval("input.area < 1");
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(mixed.status().message(), HasSubstr("cannot compare string with number using '<'"));
  EXPECT_EQ(mixed.status().where(), "column 12");

  auto eq = Eval("input.dose == '3'");
  ASSERT_FALSE(eq.ok());
  EXPECT_THAT(eq.status().message(), HasSubstr("cannot compare number with string using '=='"));

  auto arrays = Eval("input.noaels < input.empty");
  ASSERT_FALSE(arrays.ok());
  EXPECT_THAT(arrays.status().message(), HasSubstr("cannot compare array with array"));

  auto not_bool = Eval("input.dose and true");
  ASSERT_FALSE(not_bool.ok());
  EXPECT_THAT(not_bool.status().message(),
              HasSubstr("expected a boolean, got number (input.dose)"));

  auto not_number = Eval("not 'x'");
  ASSERT_FALSE(not_number.ok());
  EXPECT_THAT(not_number.status().message(), HasSubstr("expected a boolean, got string"));
}

core::Status ParseError(const std::string& text) { return Condition::Parse(text).status(); }

// Syntax errors say what was expected and at which column (1-based).
TEST(ConditionTest, SyntaxErrorsGiveColumn) {
  auto expect = [](const std::string& text, const std::string& what, int column) {
    const core::Status st = ParseError(text);
    EXPECT_EQ(st.code(), core::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(st.message(), HasSubstr(what)) << text;
    EXPECT_EQ(st.where(), "column " + std::to_string(column)) << text << ": " << st;
  };
  expect("input.dose ==", "unexpected end of condition (expected an operand)", 14);
  expect("input.dose = 1", "'=' is not an operator (use '==')", 12);
  expect("len(input.a > 0", "expected ')' closing len(", 13);
  expect("len('a') > 0", "expected a path inside len()", 5);
  expect("(true or false", "expected ')'", 15);
  expect("input.a < 1 < 2", "comparisons cannot be chained", 13);
  expect("input.area == 'abc", "unterminated string", 15);
  expect("input.area == \"abc\"", "strings are single-quoted", 15);
  expect("dose > 1", "unknown name 'dose'", 1);
  expect("steps.tox. > 1", "expected a field name after '.'", 11);
  expect("true true", "unexpected 'true' (expected 'and', 'or' or the end)", 6);
  expect("1.5x > 1", "malformed number", 4);
  expect("input.a ! true", "use 'not' or '!='", 9);
  expect("input.a > # 1", "unexpected character '#'", 11);
  expect("   ", "empty condition", 1);
  expect("- true", "expected a number after '-'", 3);
  expect(std::string(100, '(') + "true" + std::string(100, ')'), "nested too deeply", 65);
  EXPECT_TRUE(*Eval(std::string(30, '(') + "true" + std::string(30, ')')));
}

// A parsed condition keeps its text and the names it reads (len() included), sorted and unique.
TEST(ConditionTest, ReferencedNamesAndText) {
  auto c = Condition::Parse(
      "len(steps.flags.x) > 0 and steps.tox.p > input.t or input.a == steps.tox.q");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->ReferencedSteps(), ElementsAre("flags", "tox"));
  EXPECT_THAT(c->ReferencedInputs(), ElementsAre("a", "t"));
  EXPECT_EQ(c->text(),
            "len(steps.flags.x) > 0 and steps.tox.p > input.t or input.a == steps.tox.q");
  // Keywords are words of their own: a path may start with them only as input./steps.
  auto copy = *c;  // copyable
  EXPECT_EQ(copy.text(), c->text());
}

}  // namespace
}  // namespace fedrx::orchestrator

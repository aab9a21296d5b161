#include "services/orchestrator/expression.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <set>
#include <utility>

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Paths

struct Segment {
  bool is_index = false;
  std::string field;
  std::size_t index = 0;
};

struct Path {
  std::string text;
  std::vector<Segment> segments;  // segments[0] is the root field: "input" or "steps"

  const std::string& root() const { return segments[0].field; }
  // The input name or step id right after the root.
  const std::string& name() const { return segments[1].field; }
};

std::string Column(std::size_t offset) { return "column " + std::to_string(offset + 1); }

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::size_t ReadName(std::string_view s, std::size_t pos) {
  std::size_t end = pos;
  if (end < s.size() && IsNameStart(s[end])) {
    ++end;
    while (end < s.size() && IsNameChar(s[end])) ++end;
  }
  return end;
}

// Parses a path starting at s[pos]; on success `pos` is just past it. Errors name the column
// (1-based, counted from `column_base` + the offset in `s`).
core::Result<Path> ParsePathAt(std::string_view s, std::size_t& pos, std::size_t column_base) {
  const std::size_t start = pos;
  auto error = [&](std::size_t at, const std::string& what) {
    return core::InvalidArgument(what + " at " + Column(column_base + at),
                                 Column(column_base + at));
  };
  Path path;
  std::size_t end = ReadName(s, pos);
  if (end == pos) return error(pos, "expected a path (input.<name> or steps.<id>)");
  path.segments.push_back({false, std::string(s.substr(pos, end - pos)), 0});
  if (path.root() != "input" && path.root() != "steps") {
    return error(
        pos, "unknown name '" + path.root() + "' (a path starts with input.<name> or steps.<id>)");
  }
  pos = end;
  while (pos < s.size()) {
    if (s[pos] == '.') {
      end = ReadName(s, pos + 1);
      if (end == pos + 1) return error(pos + 1, "expected a field name after '.'");
      path.segments.push_back({false, std::string(s.substr(pos + 1, end - pos - 1)), 0});
      pos = end;
    } else if (s[pos] == '[') {
      if (path.segments.size() < 2) break;  // reported below: the root needs a name first
      std::size_t digits = pos + 1;
      while (digits < s.size() && IsDigit(s[digits])) ++digits;
      if (digits == pos + 1 || digits >= s.size() || s[digits] != ']') {
        return error(pos, "expected '[' non-negative integer ']'");
      }
      if (digits - pos - 1 > 9) return error(pos + 1, "index too large");
      Segment seg;
      seg.is_index = true;
      seg.index = std::stoul(std::string(s.substr(pos + 1, digits - pos - 1)));
      path.segments.push_back(std::move(seg));
      pos = digits + 1;
    } else {
      break;
    }
  }
  if (path.segments.size() < 2 || path.segments[1].is_index) {
    return error(start, "'" + path.root() + "' must be followed by ." +
                            (path.root() == "input" ? "<input name>" : "<step id>"));
  }
  path.text = std::string(s.substr(start, pos - start));
  return path;
}

// Parses `text` as one whole path (surrounding blanks allowed).
core::Result<Path> ParseWholePath(std::string_view text, std::size_t column_base) {
  std::size_t pos = 0;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  FEDRX_ASSIGN_OR_RETURN(Path path, ParsePathAt(text, pos, column_base));
  while (pos < text.size() && text[pos] == ' ') ++pos;
  if (pos != text.size()) {
    return core::InvalidArgument(
        "unexpected '" + std::string(1, text[pos]) + "' in path at " + Column(column_base + pos),
        Column(column_base + pos));
  }
  return path;
}

// The value at `path` in `scope`, or nullptr with `why` saying which part is missing.
const json* Lookup(const json& scope, const Path& path, std::string* why) {
  const json* node = &scope;
  std::string prefix;
  for (const Segment& seg : path.segments) {
    if (seg.is_index) {
      if (!node->is_array()) {
        *why = prefix + " is " + std::string(node->type_name()) + ", not an array";
        return nullptr;
      }
      if (seg.index >= node->size()) {
        *why = prefix + " has " + std::to_string(node->size()) + " elements, no index " +
               std::to_string(seg.index);
        return nullptr;
      }
      node = &(*node)[seg.index];
      prefix += "[" + std::to_string(seg.index) + "]";
    } else {
      if (!node->is_object()) {
        *why = (prefix.empty() ? std::string("the scope") : prefix) + " is " +
               std::string(node->type_name()) + ", not an object";
        return nullptr;
      }
      auto it = node->find(seg.field);
      if (it == node->end()) {
        if (prefix == "steps") {
          *why = "step '" + seg.field + "' has no output";
        } else if (prefix.empty()) {
          *why = "no '" + seg.field + "' in the scope";
        } else {
          *why = prefix + " has no field '" + seg.field + "'";
        }
        return nullptr;
      }
      node = &*it;
      prefix += (prefix.empty() ? "" : ".") + seg.field;
    }
  }
  return node;
}

// ---------------------------------------------------------------------------------------------
// Templates

struct Reference {
  std::size_t begin = 0;  // offset of "${"
  std::size_t end = 0;    // one past "}"
  Path path;
};

core::Result<std::vector<Reference>> ScanTemplate(std::string_view text) {
  std::vector<Reference> refs;
  std::size_t pos = 0;
  while ((pos = text.find("${", pos)) != std::string_view::npos) {
    const std::size_t close = text.find('}', pos + 2);
    if (close == std::string_view::npos) {
      return core::InvalidArgument("unterminated '${' at " + Column(pos), Column(pos));
    }
    std::string_view inner = text.substr(pos + 2, close - pos - 2);
    if (inner.find_first_not_of(' ') == std::string_view::npos) {
      return core::InvalidArgument("empty reference '${}' at " + Column(pos), Column(pos));
    }
    auto path = ParseWholePath(inner, pos + 2);
    if (!path.ok()) {
      return core::InvalidArgument("malformed reference '" +
                                       std::string(text.substr(pos, close - pos + 1)) +
                                       "': " + path.status().message(),
                                   path.status().where());
    }
    refs.push_back({pos, close + 1, std::move(path).value()});
    pos = close + 1;
  }
  return refs;
}

std::string TextOf(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

core::Result<json> ResolveString(const std::string& text, const json& scope,
                                 const std::string& where) {
  auto refs = ScanTemplate(text);
  if (!refs.ok()) return core::InvalidArgument(refs.status().message(), where);
  if (refs->empty()) return json(text);
  std::string why;
  auto lookup = [&](const Path& path) -> core::Result<const json*> {
    const json* value = Lookup(scope, path, &why);
    if (value == nullptr) {
      return core::FailedPrecondition("missing value at " + path.text + ": " + why, where);
    }
    return value;
  };
  if (refs->size() == 1 && (*refs)[0].begin == 0 && (*refs)[0].end == text.size()) {
    FEDRX_ASSIGN_OR_RETURN(const json* value, lookup((*refs)[0].path));
    return *value;
  }
  std::string out;
  std::size_t pos = 0;
  for (const Reference& ref : *refs) {
    out.append(text, pos, ref.begin - pos);
    FEDRX_ASSIGN_OR_RETURN(const json* value, lookup(ref.path));
    out += TextOf(*value);
    pos = ref.end;
  }
  out.append(text, pos, std::string::npos);
  return json(std::move(out));
}

core::Result<json> Resolve(const json& with, const json& scope, const std::string& where) {
  if (with.is_string()) return ResolveString(with.get_ref<const std::string&>(), scope, where);
  if (with.is_array()) {
    json out = json::array();
    for (std::size_t i = 0; i < with.size(); ++i) {
      FEDRX_ASSIGN_OR_RETURN(json item,
                             Resolve(with[i], scope, where + "[" + std::to_string(i) + "]"));
      out.push_back(std::move(item));
    }
    return out;
  }
  if (with.is_object()) {
    json out = json::object();
    for (auto it = with.begin(); it != with.end(); ++it) {
      FEDRX_ASSIGN_OR_RETURN(
          json item, Resolve(it.value(), scope, where.empty() ? it.key() : where + "." + it.key()));
      out[it.key()] = std::move(item);
    }
    return out;
  }
  return with;
}

// Calls `fn(path)` for every well-formed reference in `with`.
template <typename Fn>
void ForEachPath(const json& with, Fn&& fn) {
  if (with.is_string()) {
    auto refs = ScanTemplate(with.get_ref<const std::string&>());
    if (!refs.ok()) return;
    for (const Reference& ref : *refs) fn(ref.path);
  } else if (with.is_array() || with.is_object()) {
    for (const json& item : with) ForEachPath(item, fn);
  }
}

std::vector<std::string> Names(const json& with, const char* root) {
  std::set<std::string> names;
  ForEachPath(with, [&](const Path& path) {
    if (path.root() == root) names.insert(path.name());
  });
  return {names.begin(), names.end()};
}

core::Status Validate(const json& with, const std::string& where) {
  if (with.is_string()) {
    auto refs = ScanTemplate(with.get_ref<const std::string&>());
    if (!refs.ok()) return core::InvalidArgument(refs.status().message(), where);
  } else if (with.is_array()) {
    for (std::size_t i = 0; i < with.size(); ++i) {
      FEDRX_RETURN_IF_ERROR(Validate(with[i], where + "[" + std::to_string(i) + "]"));
    }
  } else if (with.is_object()) {
    for (auto it = with.begin(); it != with.end(); ++it) {
      FEDRX_RETURN_IF_ERROR(
          Validate(it.value(), where.empty() ? it.key() : where + "." + it.key()));
    }
  }
  return core::Status::Ok();
}

}  // namespace

core::Result<json> ResolveTemplate(const json& with, const json& scope, std::string_view where) {
  return Resolve(with, scope, std::string(where));
}

std::vector<std::string> ReferencedSteps(const json& with) { return Names(with, "steps"); }
std::vector<std::string> ReferencedInputs(const json& with) { return Names(with, "input"); }

core::Status ValidateTemplate(const json& with, std::string_view where) {
  return Validate(with, std::string(where));
}

core::Result<std::vector<std::string>> TemplatePaths(std::string_view text) {
  FEDRX_ASSIGN_OR_RETURN(std::vector<Reference> refs, ScanTemplate(text));
  std::vector<std::string> out;
  for (const Reference& ref : refs) out.push_back(ref.path.text);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conditions

struct Condition::Node {
  enum class Kind { kOr, kAnd, kNot, kCompare, kLiteral, kPath, kLen };
  Kind kind = Kind::kLiteral;
  std::string op;                        // kCompare: "==", "!=", "<", "<=", ">", ">="
  json literal;                          // kLiteral
  Path path;                             // kPath, kLen
  std::shared_ptr<const Node> lhs, rhs;  // kOr/kAnd/kCompare: both; kNot: lhs
  std::size_t offset = 0;                // where the node starts in the text
};

namespace {

using Node = Condition::Node;
using NodePtr = std::shared_ptr<const Node>;

struct Token {
  enum class Kind { kEnd, kLParen, kRParen, kCompare, kMinus, kNumber, kString, kKeyword, kPath };
  Kind kind = Kind::kEnd;
  std::string text;  // operator, keyword, or the source text
  json value;        // kNumber, kString
  Path path;         // kPath
  std::size_t offset = 0;
};

bool IsKeyword(std::string_view word) {
  return word == "and" || word == "or" || word == "not" || word == "true" || word == "false" ||
         word == "null" || word == "len";
}

core::Status SyntaxError(std::size_t offset, const std::string& what) {
  return core::InvalidArgument(what + " at " + Column(offset), Column(offset));
}

core::Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> tokens;
  std::size_t pos = 0;
  while (true) {
    while (pos < s.size() &&
           (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) {
      ++pos;
    }
    Token tok;
    tok.offset = pos;
    if (pos >= s.size()) {
      tokens.push_back(std::move(tok));
      return tokens;
    }
    const char c = s[pos];
    const char next = pos + 1 < s.size() ? s[pos + 1] : '\0';
    if (c == '(' || c == ')') {
      tok.kind = c == '(' ? Token::Kind::kLParen : Token::Kind::kRParen;
      tok.text = std::string(1, c);
      ++pos;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      if (next == '=') {
        tok.text = std::string(s.substr(pos, 2));
        pos += 2;
      } else if (c == '<' || c == '>') {
        tok.text = std::string(1, c);
        ++pos;
      } else if (c == '=') {
        return SyntaxError(pos, "'=' is not an operator (use '==')");
      } else {
        return SyntaxError(pos, "'!' is not an operator (use 'not' or '!=')");
      }
      tok.kind = Token::Kind::kCompare;
    } else if (c == '-') {
      tok.kind = Token::Kind::kMinus;
      tok.text = "-";
      ++pos;
    } else if (IsDigit(c) || (c == '.' && IsDigit(next))) {
      std::size_t end = pos;
      while (end < s.size() && IsDigit(s[end])) ++end;
      if (end < s.size() && s[end] == '.') {
        ++end;
        while (end < s.size() && IsDigit(s[end])) ++end;
      }
      if (end < s.size() && (s[end] == 'e' || s[end] == 'E')) {
        std::size_t exp = end + 1;
        if (exp < s.size() && (s[exp] == '+' || s[exp] == '-')) ++exp;
        if (exp >= s.size() || !IsDigit(s[exp])) return SyntaxError(end, "malformed exponent");
        while (exp < s.size() && IsDigit(s[exp])) ++exp;
        end = exp;
      }
      if (end < s.size() && (IsNameChar(s[end]) || s[end] == '.')) {
        return SyntaxError(end, "malformed number");
      }
      tok.text = std::string(s.substr(pos, end - pos));
      const double number = std::strtod(tok.text.c_str(), nullptr);
      if (!std::isfinite(number)) return SyntaxError(pos, "number out of range");
      tok.kind = Token::Kind::kNumber;
      tok.value = number;
      pos = end;
    } else if (c == '\'') {
      std::string text;
      std::size_t end = pos + 1;
      bool closed = false;
      while (end < s.size()) {
        if (s[end] == '\\' && end + 1 < s.size() && (s[end + 1] == '\'' || s[end + 1] == '\\')) {
          text += s[end + 1];
          end += 2;
        } else if (s[end] == '\'') {
          closed = true;
          ++end;
          break;
        } else {
          text += s[end++];
        }
      }
      if (!closed) return SyntaxError(pos, "unterminated string");
      tok.kind = Token::Kind::kString;
      tok.text = std::string(s.substr(pos, end - pos));
      tok.value = std::move(text);
      pos = end;
    } else if (IsNameStart(c)) {
      const std::size_t end = ReadName(s, pos);
      const std::string_view word = s.substr(pos, end - pos);
      const bool continues = end < s.size() && (s[end] == '.' || s[end] == '[');
      if (IsKeyword(word) && !continues) {
        tok.kind = Token::Kind::kKeyword;
        tok.text = std::string(word);
        pos = end;
      } else {
        FEDRX_ASSIGN_OR_RETURN(tok.path, ParsePathAt(s, pos, 0));
        tok.kind = Token::Kind::kPath;
        tok.text = tok.path.text;
      }
    } else if (c == '"') {
      return SyntaxError(pos, "strings are single-quoted ('text')");
    } else {
      return SyntaxError(pos, "unexpected character '" + std::string(1, c) + "'");
    }
    tokens.push_back(std::move(tok));
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  core::Result<NodePtr> ParseAll() {
    FEDRX_ASSIGN_OR_RETURN(NodePtr root, ParseOr());
    if (Peek().kind != Token::Kind::kEnd) return Unexpected("'and', 'or' or the end");
    return root;
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Take() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool IsKeyword(const char* word) const {
    return Peek().kind == Token::Kind::kKeyword && Peek().text == word;
  }

  core::Status Unexpected(const std::string& expected) const {
    const Token& tok = Peek();
    if (tok.kind == Token::Kind::kEnd) {
      return SyntaxError(tok.offset, "unexpected end of condition (expected " + expected + ")");
    }
    return SyntaxError(tok.offset, "unexpected '" + tok.text + "' (expected " + expected + ")");
  }

  static NodePtr Binary(Node::Kind kind, std::string op, NodePtr lhs, NodePtr rhs) {
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->op = std::move(op);
    node->offset = lhs->offset;
    node->lhs = std::move(lhs);
    node->rhs = std::move(rhs);
    return node;
  }

  core::Result<NodePtr> ParseOr() {
    FEDRX_ASSIGN_OR_RETURN(NodePtr lhs, ParseAnd());
    while (IsKeyword("or")) {
      Take();
      FEDRX_ASSIGN_OR_RETURN(NodePtr rhs, ParseAnd());
      lhs = Binary(Node::Kind::kOr, "or", std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  core::Result<NodePtr> ParseAnd() {
    FEDRX_ASSIGN_OR_RETURN(NodePtr lhs, ParseNot());
    while (IsKeyword("and")) {
      Take();
      FEDRX_ASSIGN_OR_RETURN(NodePtr rhs, ParseNot());
      lhs = Binary(Node::Kind::kAnd, "and", std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  core::Result<NodePtr> ParseNot() {
    // Bounds the recursion of nested parentheses and `not`s.
    if (++depth_ > kMaxDepth) return SyntaxError(Peek().offset, "condition nested too deeply");
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    if (IsKeyword("not")) {
      const std::size_t offset = Take().offset;
      FEDRX_ASSIGN_OR_RETURN(NodePtr operand, ParseNot());
      auto node = std::make_shared<Node>();
      node->kind = Node::Kind::kNot;
      node->offset = offset;
      node->lhs = std::move(operand);
      return NodePtr(std::move(node));
    }
    return ParseComparison();
  }

  core::Result<NodePtr> ParseComparison() {
    FEDRX_ASSIGN_OR_RETURN(NodePtr lhs, ParseOperand());
    if (Peek().kind != Token::Kind::kCompare) return lhs;
    const Token& op = Take();
    const std::size_t op_offset = op.offset;
    std::string op_text = op.text;
    FEDRX_ASSIGN_OR_RETURN(NodePtr rhs, ParseOperand());
    if (Peek().kind == Token::Kind::kCompare) {
      return SyntaxError(Peek().offset,
                         "comparisons cannot be chained ('" + Peek().text + "'); use 'and'");
    }
    auto node = Binary(Node::Kind::kCompare, std::move(op_text), std::move(lhs), std::move(rhs));
    // Type errors found at evaluation point at the operator.
    std::const_pointer_cast<Node>(node)->offset = op_offset;
    return node;
  }

  core::Result<NodePtr> ParseOperand() {
    const Token& tok = Peek();
    auto node = std::make_shared<Node>();
    node->offset = tok.offset;
    switch (tok.kind) {
      case Token::Kind::kLParen: {
        Take();
        FEDRX_ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
        if (Peek().kind != Token::Kind::kRParen) return Unexpected("')'");
        Take();
        return inner;
      }
      case Token::Kind::kNumber:
      case Token::Kind::kString:
        node->kind = Node::Kind::kLiteral;
        node->literal = Take().value;
        return NodePtr(std::move(node));
      case Token::Kind::kMinus: {
        Take();
        if (Peek().kind != Token::Kind::kNumber) return Unexpected("a number after '-'");
        node->kind = Node::Kind::kLiteral;
        node->literal = -Take().value.get<double>();
        return NodePtr(std::move(node));
      }
      case Token::Kind::kPath:
        node->kind = Node::Kind::kPath;
        node->path = Take().path;
        return NodePtr(std::move(node));
      case Token::Kind::kKeyword:
        if (tok.text == "true" || tok.text == "false") {
          node->kind = Node::Kind::kLiteral;
          node->literal = Take().text == "true";
          return NodePtr(std::move(node));
        }
        if (tok.text == "null") {
          Take();
          node->kind = Node::Kind::kLiteral;
          node->literal = nullptr;
          return NodePtr(std::move(node));
        }
        if (tok.text == "len") {
          Take();
          if (Peek().kind != Token::Kind::kLParen) return Unexpected("'(' after len");
          Take();
          if (Peek().kind != Token::Kind::kPath) return Unexpected("a path inside len()");
          node->kind = Node::Kind::kLen;
          node->path = Take().path;
          if (Peek().kind != Token::Kind::kRParen) return Unexpected("')' closing len(");
          Take();
          return NodePtr(std::move(node));
        }
        return Unexpected("an operand");
      default:
        return Unexpected("an operand");
    }
  }

  static constexpr int kMaxDepth = 64;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

void CollectNames(const Node& node, std::set<std::string>& steps, std::set<std::string>& inputs) {
  if (node.kind == Node::Kind::kPath || node.kind == Node::Kind::kLen) {
    (node.path.root() == "steps" ? steps : inputs).insert(node.path.name());
  }
  if (node.lhs) CollectNames(*node.lhs, steps, inputs);
  if (node.rhs) CollectNames(*node.rhs, steps, inputs);
}

core::Status EvalError(const Node& node, const std::string& what) {
  return core::InvalidArgument(what + " at " + Column(node.offset), Column(node.offset));
}

std::size_t Utf8Length(const std::string& text) {
  std::size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

core::Result<json> EvalValue(const Node& node, const json& scope);

core::Result<bool> EvalBool(const Node& node, const json& scope) {
  switch (node.kind) {
    case Node::Kind::kOr: {
      FEDRX_ASSIGN_OR_RETURN(bool lhs, EvalBool(*node.lhs, scope));
      if (lhs) return true;
      return EvalBool(*node.rhs, scope);
    }
    case Node::Kind::kAnd: {
      FEDRX_ASSIGN_OR_RETURN(bool lhs, EvalBool(*node.lhs, scope));
      if (!lhs) return false;
      return EvalBool(*node.rhs, scope);
    }
    case Node::Kind::kNot: {
      FEDRX_ASSIGN_OR_RETURN(bool operand, EvalBool(*node.lhs, scope));
      return !operand;
    }
    default: {
      FEDRX_ASSIGN_OR_RETURN(json value, EvalValue(node, scope));
      if (!value.is_boolean()) {
        return EvalError(node, std::string("expected a boolean, got ") + value.type_name() +
                                   (node.kind == Node::Kind::kPath ? " (" + node.path.text + ")"
                                                                   : std::string()));
      }
      return value.get<bool>();
    }
  }
}

core::Result<bool> Compare(const Node& node, const json& lhs, const json& rhs) {
  const std::string& op = node.op;
  auto mismatch = [&] {
    return EvalError(node, std::string("cannot compare ") + lhs.type_name() + " with " +
                               rhs.type_name() + " using '" + op + "'");
  };
  if (op == "==" || op == "!=") {
    bool equal;
    if (lhs.is_null() || rhs.is_null()) {
      equal = lhs.is_null() && rhs.is_null();
    } else if (lhs.is_number() && rhs.is_number()) {
      equal = lhs.get<double>() == rhs.get<double>();
    } else if (lhs.type() == rhs.type()) {
      equal = lhs == rhs;
    } else {
      return mismatch();
    }
    return op == "==" ? equal : !equal;
  }
  int order;
  if (lhs.is_number() && rhs.is_number()) {
    const double a = lhs.get<double>(), b = rhs.get<double>();
    order = a < b ? -1 : (a > b ? 1 : 0);
  } else if (lhs.is_string() && rhs.is_string()) {
    const int c = lhs.get_ref<const std::string&>().compare(rhs.get_ref<const std::string&>());
    order = c < 0 ? -1 : (c > 0 ? 1 : 0);
  } else {
    return mismatch();
  }
  if (op == "<") return order < 0;
  if (op == "<=") return order <= 0;
  if (op == ">") return order > 0;
  return order >= 0;  // ">="
}

core::Result<json> EvalValue(const Node& node, const json& scope) {
  switch (node.kind) {
    case Node::Kind::kLiteral:
      return node.literal;
    case Node::Kind::kPath: {
      std::string why;
      const json* value = Lookup(scope, node.path, &why);
      if (value == nullptr) {
        return core::FailedPrecondition("missing value at " + node.path.text + ": " + why,
                                        Column(node.offset));
      }
      return *value;
    }
    case Node::Kind::kLen: {
      std::string why;
      const json* value = Lookup(scope, node.path, &why);
      if (value == nullptr || value->is_null()) return json(0);
      if (value->is_array() || value->is_object()) return json(value->size());
      if (value->is_string()) return json(Utf8Length(value->get_ref<const std::string&>()));
      return EvalError(
          node, "len() of a " + std::string(value->type_name()) + " (" + node.path.text + ")");
    }
    case Node::Kind::kCompare: {
      FEDRX_ASSIGN_OR_RETURN(json lhs, EvalValue(*node.lhs, scope));
      FEDRX_ASSIGN_OR_RETURN(json rhs, EvalValue(*node.rhs, scope));
      FEDRX_ASSIGN_OR_RETURN(bool result, Compare(node, lhs, rhs));
      return json(result);
    }
    default: {
      FEDRX_ASSIGN_OR_RETURN(bool result, EvalBool(node, scope));
      return json(result);
    }
  }
}

}  // namespace

core::Result<Condition> Condition::Parse(std::string_view text) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return SyntaxError(0, "empty condition");
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(text));
  Parser parser(std::move(tokens));
  FEDRX_ASSIGN_OR_RETURN(NodePtr root, parser.ParseAll());
  Condition condition;
  condition.text_ = std::string(text);
  std::set<std::string> steps, inputs;
  CollectNames(*root, steps, inputs);
  condition.steps_.assign(steps.begin(), steps.end());
  condition.inputs_.assign(inputs.begin(), inputs.end());
  condition.root_ = std::move(root);
  return condition;
}

core::Result<bool> Condition::Evaluate(const json& scope) const { return EvalBool(*root_, scope); }

std::vector<std::string> Condition::ReferencedSteps() const { return steps_; }
std::vector<std::string> Condition::ReferencedInputs() const { return inputs_; }

}  // namespace fedrx::orchestrator

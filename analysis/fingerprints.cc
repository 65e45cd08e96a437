// Fingerprints: loading and matching. Formats and semantics: docs/FINGERPRINTS.md.
//
// Patterns come in Python's `re` syntax (OONI "regexp" rows, Censored Planet
// signatures, rasad's own "regexp" type). Each pattern is compiled to the
// cheapest of three forms:
//   literal  - no metacharacters (after unescaping): found by the literal scan;
//   sequence - literals joined by `.*`/`.+` and single-byte `.` wildcards (most
//              "regexes" in the real files): matched with plain searches, no
//              recursion, linear in the input;
//   regex    - anything else, translated to ECMAScript for std::regex and run
//              only when its longest required literal is present, on a window
//              of at most Fingerprints::kRegexWindowBytes.
// All literals that must be looked for in a body are found in one pass over
// the response (each keyed by one of its 4-byte windows), so the cost per
// response does not grow with the number of fingerprints.

#include "analysis/fingerprints.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string_view>
#include <unordered_map>

#include "probe/config/toml_util.h"

namespace rasad {

namespace {

using cfgutil::Fail;
using cfgutil::Quote;

constexpr uint32_t kNone = 0xffffffffu;

// Source priority: rasad's own file first, then OONI, then Censored Planet.
int SourceRank(const std::string& source) {
  if (source == "rasad") return 0;
  if (source == "ooni") return 1;
  return 2;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsCountryCode(std::string_view s) {
  return s.size() == 2 && std::isupper(static_cast<unsigned char>(s[0])) &&
         std::isupper(static_cast<unsigned char>(s[1]));
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Length of the UTF-8 sequence starting with byte c (1 for ASCII and for stray bytes).
size_t Utf8Len(unsigned char c) {
  if (c >= 0xf0 && c < 0xf8) return 4;
  if (c >= 0xe0) return c < 0xf0 ? 3 : 1;
  if (c >= 0xc0) return 2;
  return 1;
}

// ---------------------------------------------------------------------------
// Patterns (Python `re` subset).

// A literal with single-byte wildcards ('.'): wild[i] != 0 where text[i] is one.
struct Piece {
  std::string text;
  std::string wild;
  size_t anchor = 0;      // longest wildcard-free run: offset ...
  size_t anchor_len = 0;  // ... and length (searched with find)
  bool has_wild = false;
};

// pieces[0] gap pieces[1] gap ... ; gap = `.*` (min 0) or `.+` (min 1).
struct Seq {
  std::vector<Piece> pieces;
  std::vector<size_t> gap_min;  // gap_min[i] is between pieces[i] and pieces[i + 1]
  size_t lead_min = 0;          // a leading `.+`
  size_t trail_min = 0;         // a trailing `.+`
  bool dotall = false;          // `.` matches '\n' too (re.DOTALL)
};

enum class Op { kFull, kPrefix, kContains, kSeq, kRegex };

struct Pattern {
  Op op = Op::kContains;
  std::string literal;                   // kFull, kPrefix, kContains
  Seq seq;                               // kSeq
  std::shared_ptr<const std::regex> re;  // kRegex
  // kRegex: every match contains one of these literals (one per top-level
  // alternative); empty: no such literal, the regex always runs.
  std::vector<std::string> required;
  std::string ecma;  // kRegex: the translated pattern (messages)
};

bool IsQuantifierAt(std::string_view p, size_t i, size_t* len = nullptr) {
  if (i >= p.size()) return false;
  const char c = p[i];
  if (c == '*' || c == '+' || c == '?') {
    if (len) *len = 1;
    return true;
  }
  if (c != '{') return false;
  // {m} {m,} {m,n} {,n}
  size_t j = i + 1;
  size_t digits1 = 0, digits2 = 0;
  while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j]))) ++j, ++digits1;
  bool comma = false;
  if (j < p.size() && p[j] == ',') {
    comma = true;
    ++j;
    while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j]))) ++j, ++digits2;
  }
  if (j >= p.size() || p[j] != '}') return false;
  if (digits1 == 0 && (!comma || digits2 == 0)) return false;
  if (len) *len = j - i + 1;
  return true;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses \xHH, \uHHHH, \UHHHHHHHH at p[i] (p[i] is the backslash).
bool ParseHexEscape(std::string_view p, size_t i, uint32_t* cp, size_t* len) {
  const char k = p[i + 1];
  const size_t digits = k == 'x' ? 2 : k == 'u' ? 4 : 8;
  if (i + 2 + digits > p.size()) return false;
  uint32_t v = 0;
  for (size_t d = 0; d < digits; ++d) {
    const int h = HexVal(p[i + 2 + d]);
    if (h < 0) return false;
    v = v * 16 + static_cast<uint32_t>(h);
  }
  if (v > 0x10ffff) return false;
  *cp = v;
  *len = 2 + digits;
  return true;
}

// A single-character escape that stands for a literal byte.
bool SimpleEscape(char k, char* out) {
  switch (k) {
    case 'n':
      *out = '\n';
      return true;
    case 't':
      *out = '\t';
      return true;
    case 'r':
      *out = '\r';
      return true;
    case 'f':
      *out = '\f';
      return true;
    case 'v':
      *out = '\v';
      return true;
    case 'a':
      *out = '\a';
      return true;
    default:
      return false;
  }
}

// Leading global inline flags "(?is)": returns the offset after them.
// Sets *why for flags rasad cannot honour.
size_t ParseLeadingFlags(std::string_view p, bool* icase, bool* dotall, bool* multiline,
                         std::string* why) {
  size_t i = 0;
  while (i + 2 < p.size() && p[i] == '(' && p[i + 1] == '?' &&
         std::isalpha(static_cast<unsigned char>(p[i + 2]))) {
    size_t j = i + 2;
    while (j < p.size() && std::isalpha(static_cast<unsigned char>(p[j]))) ++j;
    if (j >= p.size() || p[j] != ')') return i;  // "(?i:" etc.: left to the translator
    for (size_t k = i + 2; k < j; ++k) {
      switch (p[k]) {
        case 'i':
          *icase = true;
          break;
        case 's':
          *dotall = true;
          break;
        case 'm':
          *multiline = true;
          break;
        case 'a':
        case 'u':
          break;  // ASCII/Unicode classes: irrelevant on bytes
        default:
          *why = std::string("inline flag (?") + p[k] + ")";
          return i;
      }
    }
    i = j + 1;
  }
  return i;
}

void FinishPiece(Piece* pc) {
  size_t best = 0, best_len = 0, run = 0;
  for (size_t k = 0; k <= pc->text.size(); ++k) {
    if (k == pc->text.size() || pc->wild[k]) {
      if (run > best_len) best = k - run, best_len = run;
      run = 0;
    } else {
      ++run;
    }
  }
  pc->anchor = best;
  pc->anchor_len = best_len;
  pc->has_wild = pc->wild.find('\1') != std::string::npos;
}

// Tries to express the pattern as a Seq. Returns false when it uses anything
// else (classes, groups, alternation, anchors, quantifiers on literals, ...).
bool TrySeq(std::string_view p, bool dotall_default, Seq* out) {
  bool icase = false, dotall = dotall_default, multiline = false;
  std::string why;
  size_t i = ParseLeadingFlags(p, &icase, &dotall, &multiline, &why);
  if (icase || !why.empty()) return false;
  Seq seq;
  seq.dotall = dotall;
  Piece cur;
  bool pending_gap = false;
  size_t gap = 0;
  auto push_atom = [&](const std::string& bytes, bool wildcard) {
    if (pending_gap) {
      if (seq.pieces.empty() && cur.text.empty()) {
        seq.lead_min = gap;
      } else {
        seq.gap_min.push_back(gap);
      }
      pending_gap = false;
      gap = 0;
    }
    cur.text += bytes;
    cur.wild += std::string(bytes.size(), wildcard ? '\1' : '\0');
  };
  auto end_piece = [&]() -> bool {
    if (cur.text.empty()) return true;
    FinishPiece(&cur);
    if (cur.anchor_len == 0) return false;  // only wildcards: not worth it
    seq.pieces.push_back(cur);
    cur = Piece();
    return true;
  };
  while (i < p.size()) {
    const char c = p[i];
    std::string atom;
    bool wildcard = false;
    size_t next;
    if (c == '\\') {
      if (i + 1 >= p.size()) return false;
      const char k = p[i + 1];
      char lit;
      if (std::isalnum(static_cast<unsigned char>(k))) {
        uint32_t cp;
        size_t len;
        if (SimpleEscape(k, &lit)) {
          atom.assign(1, lit);
          next = i + 2;
        } else if ((k == 'x' || k == 'u' || k == 'U') && ParseHexEscape(p, i, &cp, &len)) {
          AppendUtf8(&atom, cp);
          next = i + len;
        } else {
          return false;  // \d \w \b \A \1 ...
        }
      } else {
        const size_t len = Utf8Len(static_cast<unsigned char>(k));
        atom.assign(p.substr(i + 1, len));
        next = i + 1 + len;
      }
    } else if (c == '.') {
      if (i + 1 < p.size() && (p[i + 1] == '*' || p[i + 1] == '+')) {
        size_t j = i + 2;
        if (j < p.size() && p[j] == '?') ++j;  // lazy: same answer to "is there a match"
        if (IsQuantifierAt(p, j)) return false;
        if (!pending_gap && !end_piece()) return false;
        pending_gap = true;
        gap += p[i + 1] == '+' ? 1 : 0;
        i = j;
        continue;
      }
      atom = ".";
      wildcard = true;
      next = i + 1;
    } else if (c == '{') {
      if (IsQuantifierAt(p, i)) return false;
      atom = "{";
      next = i + 1;
    } else if (c == '[' || c == '(' || c == ')' || c == '|' || c == '^' || c == '$' || c == '?' ||
               c == '*' || c == '+') {
      return false;
    } else {
      const size_t len = Utf8Len(static_cast<unsigned char>(c));
      atom.assign(p.substr(i, len));
      next = i + len;
    }
    if (IsQuantifierAt(p, next)) return false;
    push_atom(atom, wildcard);
    i = next;
  }
  if (!end_piece()) return false;
  if (pending_gap) {
    if (seq.pieces.empty()) return false;  // pattern was only gaps
    seq.trail_min = gap;
  }
  if (seq.pieces.empty()) return false;
  *out = std::move(seq);
  return true;
}

bool IsEcmaSyntaxChar(char c) { return std::strchr("^$\\.*+?()[]{}|/", c) != nullptr && c != 0; }

enum class CompileResult { kOk, kUnsupported, kError };

// Translates a Python pattern to ECMAScript. On kUnsupported/kError, *why says why.
CompileResult TranslateRegex(std::string_view p, bool dotall_default, std::string* ecma,
                             bool* icase_out, bool* multiline_out,
                             std::vector<std::string>* required, std::string* why) {
  bool icase = false, dotall = dotall_default, multiline = false;
  size_t i = ParseLeadingFlags(p, &icase, &dotall, &multiline, why);
  if (!why->empty()) return CompileResult::kUnsupported;
  std::string out;
  // Longest literal run at depth 0 of each top-level alternative.
  std::vector<std::string> best(1);
  std::string run;
  int depth = 0;
  auto end_run = [&]() {
    if (run.size() > best.back().size()) best.back() = run;
    run.clear();
  };
  // Emits a literal (one character, possibly multi-byte) and tracks required literals.
  auto emit_literal = [&](const std::string& bytes, size_t next) {
    size_t qlen = 0;
    const bool quantified = IsQuantifierAt(p, next, &qlen);
    std::string esc;
    for (char b : bytes) {
      if (IsEcmaSyntaxChar(b)) esc += '\\';
      esc += b;
    }
    out += (quantified && bytes.size() > 1) ? "(?:" + esc + ")" : esc;
    if (depth > 0) return;
    if (quantified) {
      if (p[next] == '+' || (p[next] == '{' && p[next + 1] != '0' && p[next + 1] != ',')) {
        run += bytes;
      }
      end_run();
    } else {
      run += bytes;
    }
  };
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) {
        *why = "trailing backslash";
        return CompileResult::kError;
      }
      const char k = p[i + 1];
      char lit;
      uint32_t cp;
      size_t len;
      if (!std::isalnum(static_cast<unsigned char>(k))) {
        const size_t n = Utf8Len(static_cast<unsigned char>(k));
        emit_literal(std::string(p.substr(i + 1, n)), i + 1 + n);
        i += 1 + n;
      } else if (SimpleEscape(k, &lit)) {
        emit_literal(std::string(1, lit), i + 2);
        i += 2;
      } else if ((k == 'x' || k == 'u' || k == 'U') && ParseHexEscape(p, i, &cp, &len)) {
        std::string bytes;
        AppendUtf8(&bytes, cp);
        emit_literal(bytes, i + len);
        i += len;
      } else if (k == 'A' || k == 'Z') {
        out += k == 'A' ? "^" : "$";
        end_run();
        i += 2;
      } else if (std::strchr("dDwWsSbB123456789", k) != nullptr) {
        out += '\\';
        out += k;
        end_run();
        i += 2;
      } else {
        *why = std::string("escape \\") + k;
        return CompileResult::kUnsupported;
      }
    } else if (c == '(') {
      end_run();
      std::string_view rest = p.substr(i);
      if (rest.substr(0, 3) == "(?:" || rest.substr(0, 3) == "(?=" || rest.substr(0, 3) == "(?!") {
        out += rest.substr(0, 3);
        i += 3;
      } else if (rest.substr(0, 4) == "(?P<") {
        const size_t close = rest.find('>');
        if (close == std::string_view::npos) {
          *why = "unterminated group name";
          return CompileResult::kError;
        }
        out += '(';
        i += close + 1;
      } else if (rest.substr(0, 3) == "(?#") {
        const size_t close = rest.find(')');
        if (close == std::string_view::npos) {
          *why = "unterminated comment";
          return CompileResult::kError;
        }
        i += close + 1;
        continue;  // depth unchanged
      } else if (rest.substr(0, 4) == "(?<=" || rest.substr(0, 4) == "(?<!") {
        *why = "lookbehind " + std::string(rest.substr(0, 4));
        return CompileResult::kUnsupported;
      } else if (rest.substr(0, 4) == "(?P=") {
        *why = "named backreference (?P=";
        return CompileResult::kUnsupported;
      } else if (rest.substr(0, 3) == "(?>") {
        *why = "atomic group (?>";
        return CompileResult::kUnsupported;
      } else if (rest.substr(0, 3) == "(?(") {
        *why = "conditional group (?(";
        return CompileResult::kUnsupported;
      } else if (rest.substr(0, 2) == "(?") {
        *why = "inline flags not at the start, or scoped flags: " +
               std::string(rest.substr(0, std::min<size_t>(rest.size(), 6)));
        return CompileResult::kUnsupported;
      } else {
        out += '(';
        ++i;
      }
      ++depth;
    } else if (c == ')') {
      end_run();
      out += ')';
      --depth;
      ++i;
    } else if (c == '|') {
      end_run();
      if (depth == 0) best.emplace_back();
      out += '|';
      ++i;
    } else if (c == '[') {
      end_run();
      std::string cls = "[";
      size_t j = i + 1;
      if (j < p.size() && p[j] == '^') cls += '^', ++j;
      if (j < p.size() && p[j] == ']') cls += "\\]", ++j;
      bool closed = false;
      while (j < p.size()) {
        const char d = p[j];
        if (d == ']') {
          closed = true;
          ++j;
          break;
        }
        if (static_cast<unsigned char>(d) >= 0x80) {
          *why = "non-ASCII character in a character class";
          return CompileResult::kUnsupported;
        }
        if (d == '\\') {
          if (j + 1 >= p.size()) break;
          const char k = p[j + 1];
          uint32_t cp;
          size_t len;
          if (std::strchr("dDwWsSntrfv", k) != nullptr) {
            cls += '\\';
            cls += k;
            j += 2;
          } else if ((k == 'x' || k == 'u' || k == 'U') && ParseHexEscape(p, j, &cp, &len)) {
            if (cp >= 0x80) {
              *why = "non-ASCII character in a character class";
              return CompileResult::kUnsupported;
            }
            static const char* hex = "0123456789abcdef";
            cls += "\\x";
            cls += hex[cp >> 4];
            cls += hex[cp & 15];
            j += len;
          } else if (std::isalnum(static_cast<unsigned char>(k))) {
            *why = std::string("escape \\") + k + " in a character class";
            return CompileResult::kUnsupported;
          } else if (static_cast<unsigned char>(k) >= 0x80) {
            *why = "non-ASCII character in a character class";
            return CompileResult::kUnsupported;
          } else {
            if (std::strchr("\\]-^[", k) != nullptr) cls += '\\';
            cls += k;
            j += 2;
          }
        } else if (d == '[') {
          cls += "\\[";
          ++j;
        } else {
          cls += d;
          ++j;
        }
      }
      if (!closed) {
        *why = "unterminated character set";
        return CompileResult::kError;
      }
      out += cls + "]";
      i = j;
    } else if (c == '.') {
      end_run();
      out += dotall ? "[\\s\\S]" : "[^\\n]";
      ++i;
    } else if (c == '*' || c == '+' || c == '?') {
      out += c;
      ++i;
      if (i < p.size() && p[i] == '?') out += '?', ++i;  // lazy
      if (i < p.size() && p[i] == '+') {
        *why = "possessive quantifier";
        return CompileResult::kUnsupported;
      }
    } else if (c == '{') {
      size_t len;
      if (IsQuantifierAt(p, i, &len)) {
        std::string q(p.substr(i, len));
        if (q[1] == ',') q.insert(1, "0");  // Python {,n} = {0,n}
        out += q;
        i += len;
        if (i < p.size() && p[i] == '?') out += '?', ++i;
      } else {
        emit_literal("{", i + 1);
        ++i;
      }
    } else if (c == '^' || c == '$') {
      end_run();
      out += c;
      ++i;
    } else {
      const size_t n = Utf8Len(static_cast<unsigned char>(c));
      emit_literal(std::string(p.substr(i, n)), i + n);
      i += n;
    }
  }
  end_run();
  required->clear();
  const bool every_branch =
      std::all_of(best.begin(), best.end(), [](const std::string& b) { return !b.empty(); });
  if (every_branch && !icase) *required = best;
  *ecma = out;
  *icase_out = icase;
  *multiline_out = multiline;
  return CompileResult::kOk;
}

// Compiles a Python pattern into a Pattern (literal, sequence or regex).
CompileResult CompilePython(const std::string& pat, bool dotall, Pattern* out, std::string* why) {
  Seq seq;
  if (TrySeq(pat, dotall, &seq)) {
    if (seq.pieces.size() == 1 && !seq.pieces[0].has_wild && seq.lead_min == 0 &&
        seq.trail_min == 0) {
      out->op = Op::kContains;
      out->literal = seq.pieces[0].text;
    } else {
      out->op = Op::kSeq;
      out->seq = std::move(seq);
    }
    return CompileResult::kOk;
  }
  std::string ecma;
  std::vector<std::string> required;
  bool icase = false, multiline = false;
  CompileResult r = TranslateRegex(pat, dotall, &ecma, &icase, &multiline, &required, why);
  if (r != CompileResult::kOk) return r;
  auto flags = std::regex::ECMAScript | std::regex::optimize;
  if (icase) flags |= std::regex::icase;
  if (multiline) flags |= std::regex::multiline;
  try {
    out->re = std::make_shared<const std::regex>(ecma, flags);
  } catch (const std::regex_error& e) {
    *why = "std::regex cannot compile " + Quote(ecma) + " (translated from " + Quote(pat) +
           "): " + e.what();
    return CompileResult::kError;
  }
  out->op = Op::kRegex;
  out->ecma = std::move(ecma);
  out->required = std::move(required);
  return CompileResult::kOk;
}

// Finds `pc` starting in [from, start_max] and ending by `end`; npos if none.
size_t FindPiece(std::string_view t, size_t from, size_t start_max, size_t end, const Piece& pc,
                 bool dotall) {
  const size_t len = pc.text.size();
  if (end > t.size()) end = t.size();
  if (end < len) return std::string_view::npos;
  start_max = std::min(start_max, end - len);
  const std::string_view anchor(pc.text.data() + pc.anchor, pc.anchor_len);
  size_t pos = from;
  while (pos <= start_max) {
    const size_t a = t.find(anchor, pos + pc.anchor);
    if (a == std::string_view::npos) return a;
    const size_t start = a - pc.anchor;
    if (start > start_max) return std::string_view::npos;
    bool ok = true;
    if (pc.has_wild || pc.anchor_len != len) {
      for (size_t k = 0; k < len; ++k) {
        const char b = t[start + k];
        if (pc.wild[k]) {
          if (!dotall && b == '\n') ok = false;
        } else if (b != pc.text[k]) {
          ok = false;
        }
        if (!ok) break;
      }
    }
    if (ok) return start;
    pos = start + 1;
  }
  return std::string_view::npos;
}

// Start of the first match of `seq` in t[begin, end), or npos.
size_t FindSeq(std::string_view t, size_t begin, size_t end, const Seq& seq) {
  constexpr size_t npos = std::string_view::npos;
  if (end > t.size()) end = t.size();
  auto no_newline = [&](size_t a, size_t b) {  // [a, b) has no '\n'
    return a >= b || std::memchr(t.data() + a, '\n', b - a) == nullptr;
  };
  size_t from = begin + seq.lead_min;
  while (from <= end) {
    const size_t s0 = FindPiece(t, from, end, end, seq.pieces[0], seq.dotall);
    if (s0 == npos) return npos;
    if (!seq.dotall && !no_newline(s0 - seq.lead_min, s0)) {
      from = s0 + 1;
      continue;
    }
    size_t e = s0 + seq.pieces[0].text.size();
    bool retry = false;
    for (size_t k = 1; k < seq.pieces.size(); ++k) {
      const size_t lo = e + seq.gap_min[k - 1];
      size_t hi = end;
      if (!seq.dotall) {
        const void* nl = std::memchr(t.data() + e, '\n', end - e);
        hi = nl ? static_cast<size_t>(static_cast<const char*>(nl) - t.data()) : end;
        if (lo > hi) {
          retry = true;
          break;
        }
      }
      const size_t s = FindPiece(t, lo, hi, end, seq.pieces[k], seq.dotall);
      if (s == npos) {
        if (seq.dotall) return npos;  // nothing later can do better
        // Not on this line: a later anchor may still match.
        retry = true;
        break;
      }
      e = s + seq.pieces[k].text.size();
    }
    if (!retry) {
      if (e + seq.trail_min <= end && (seq.dotall || no_newline(e, e + seq.trail_min))) {
        return s0 - seq.lead_min;
      }
      if (seq.dotall) return npos;
    }
    from = s0 + 1;
  }
  return npos;
}

// Runs a regex on a window of t[begin, end) around `center` (npos: from begin).
size_t RegexSearch(const std::regex& re, std::string_view t, size_t begin, size_t end,
                   size_t center) {
  const size_t w = Fingerprints::kRegexWindowBytes;
  size_t lo = begin;
  if (center != std::string_view::npos && center > begin + w / 2) lo = center - w / 2;
  size_t hi = std::min(end, lo + w);
  if (hi - lo < w && hi == end) lo = hi > begin + w ? hi - w : begin;
  std::cmatch m;
  if (!std::regex_search(t.data() + lo, t.data() + hi, m, re)) return std::string_view::npos;
  return lo + static_cast<size_t>(m.position(0));
}

// Matches a short value (header, title, status, DNS answer) as a whole.
bool MatchValue(const Pattern& p, std::string_view v) {
  switch (p.op) {
    case Op::kFull:
      return v == p.literal;
    case Op::kPrefix:
      return v.substr(0, p.literal.size()) == p.literal;
    case Op::kContains:
      return v.find(p.literal) != std::string_view::npos;
    case Op::kSeq:
      return FindSeq(v, 0, v.size(), p.seq) != std::string_view::npos;
    case Op::kRegex:
      return RegexSearch(*p.re, v, 0, v.size(), std::string_view::npos) != std::string_view::npos;
  }
  return false;
}

// ---------------------------------------------------------------------------
// One-pass search for many literals.
//
// Each literal of 4+ bytes is keyed by one of its 4-byte windows, chosen so
// that few literals share a key and the key is unlikely in ordinary HTML (a
// literal starting "<div class=" is not keyed by "<div"). The scan hashes every
// 4-byte window of the text; a 64 Kibit filter rejects almost all of them, and
// the rest are checked against the literals behind that key.

class LiteralIndex {
 public:
  int Add(const std::string& lit) {
    auto it = ids_.find(lit);
    if (it != ids_.end()) return it->second;
    const int id = static_cast<int>(lits_.size());
    lits_.push_back(lit);
    ids_.emplace(lit, id);
    return id;
  }

  void Build() {
    short_.clear();
    std::vector<int> order;
    for (size_t id = 0; id < lits_.size(); ++id) {
      if (lits_[id].size() < 4) {
        short_.push_back(static_cast<int>(id));
      } else {
        order.push_back(static_cast<int>(id));
      }
    }
    // Literals with fewer windows choose first.
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return lits_[a].size() < lits_[b].size(); });
    std::unordered_map<uint32_t, std::vector<Entry>> by_key;
    for (int id : order) {
      const std::string& lit = lits_[id];
      size_t best_off = 0;
      int best_score = INT32_MAX;
      for (size_t off = 0; off + 4 <= lit.size(); ++off) {
        const uint32_t key = Key(lit.data() + off);
        auto it = by_key.find(key);
        const int shared = it == by_key.end() ? 0 : static_cast<int>(it->second.size());
        const int score = shared * 16 + Commonness(lit.data() + off);
        if (score < best_score) best_score = score, best_off = off;
      }
      by_key[Key(lit.data() + best_off)].push_back(Entry{id, static_cast<uint32_t>(best_off)});
    }
    size_t cap = 16;
    while (cap < by_key.size() * 2) cap *= 2;
    mask_ = static_cast<uint32_t>(cap - 1);
    slots_.assign(cap, Slot());
    entries_.clear();
    filter_.assign(kFilterBits / 64, 0);
    for (auto& [key, entries] : by_key) {
      uint32_t h = Slot1(key);
      while (slots_[h].used) h = (h + 1) & mask_;
      slots_[h].used = true;
      slots_[h].key = key;
      slots_[h].begin = static_cast<uint32_t>(entries_.size());
      entries_.insert(entries_.end(), entries.begin(), entries.end());
      slots_[h].end = static_cast<uint32_t>(entries_.size());
      const uint32_t f = Filter(key);
      filter_[f >> 6] |= uint64_t{1} << (f & 63);
    }
  }

  size_t size() const { return lits_.size(); }

  // first_any[id]: first occurrence in t; first_body[id]: first at or after body_off.
  void Scan(std::string_view t, size_t body_off, std::vector<uint32_t>* first_any,
            std::vector<uint32_t>* first_body) const {
    first_any->assign(lits_.size(), kNone);
    first_body->assign(lits_.size(), kNone);
    for (int id : short_) {
      const size_t a = t.find(lits_[id]);
      if (a == std::string_view::npos) continue;
      (*first_any)[id] = static_cast<uint32_t>(a);
      const size_t b = a >= body_off ? a : t.find(lits_[id], body_off);
      if (b != std::string_view::npos) (*first_body)[id] = static_cast<uint32_t>(b);
    }
    if (slots_.empty() || t.size() < 4) return;
    const char* d = t.data();
    const size_t n = t.size();
    for (size_t i = 0; i + 4 <= n; ++i) {
      const uint32_t key = Key(d + i);
      const uint32_t f = Filter(key);
      if ((filter_[f >> 6] & (uint64_t{1} << (f & 63))) == 0) continue;
      uint32_t h = Slot1(key);
      while (slots_[h].used && slots_[h].key != key) h = (h + 1) & mask_;
      if (!slots_[h].used) continue;
      for (uint32_t k = slots_[h].begin; k < slots_[h].end; ++k) {
        const Entry& e = entries_[k];
        if ((*first_body)[e.id] != kNone || i < e.off) continue;  // known, or starts before t
        const size_t start = i - e.off;
        const std::string& lit = lits_[e.id];
        if (start + lit.size() > n || std::memcmp(d + start, lit.data(), lit.size()) != 0) {
          continue;
        }
        if ((*first_any)[e.id] == kNone) (*first_any)[e.id] = static_cast<uint32_t>(start);
        if (start >= body_off) (*first_body)[e.id] = static_cast<uint32_t>(start);
      }
    }
  }

 private:
  static constexpr uint32_t kFilterBits = 1u << 16;
  struct Slot {
    uint32_t key = 0, begin = 0, end = 0;
    bool used = false;
  };
  struct Entry {
    int id;
    uint32_t off;  // offset of the key window in the literal
  };
  static uint32_t Key(const char* p) {
    uint32_t k;
    std::memcpy(&k, p, 4);
    return k;
  }
  // How common a 4-byte window is in ordinary HTML/English (rough byte weights).
  static int Commonness(const char* p) {
    int score = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = p[k];
      if (std::strchr(" <>\"=/", c) != nullptr && c != 0) {
        score += 3;
      } else if (std::strchr("etaoinsrhl", c) != nullptr && c != 0) {
        score += 2;
      } else if ((c >= 'a' && c <= 'z') || c == '.' || c == ':' || c == '-' || c == '\n') {
        score += 1;
      }
    }
    return score;
  }
  static uint32_t Filter(uint32_t k) { return (k * 0x9e3779b1u) >> 16; }
  uint32_t Slot1(uint32_t k) const { return ((k * 0x85ebca6bu) >> 7) & mask_; }

  std::vector<std::string> lits_;
  std::unordered_map<std::string, int> ids_;
  std::vector<int> short_;
  std::vector<Slot> slots_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> filter_;
  uint32_t mask_ = 0;
};

// ---------------------------------------------------------------------------
// Fingerprint records.

enum class Where { kBody, kHeader, kTitle, kStatus, kResponse };

struct HttpFp {
  FingerprintMatch info;
  Where where = Where::kBody;
  std::string header;  // lowercase, for kHeader
  Pattern pat;
  std::vector<int> status_in;  // empty: any status
  size_t seq = 0;              // load order
  // Literal ids in the LiteralIndex (for kBody and kResponse).
  int lit_id = -1;
  std::vector<int> piece_ids;
  std::vector<int> req_ids;
};

enum class DnsOp { kIp, kName, kCidr, kPattern };

struct DnsFp {
  FingerprintMatch info;
  DnsOp op = DnsOp::kIp;
  int family = 0;  // AF_INET / AF_INET6 (kIp, kCidr)
  unsigned char addr[16] = {};
  int bits = 0;      // kCidr
  std::string name;  // kName: lowercase, no trailing dot
  Pattern pat;       // kPattern
  size_t seq = 0;
};

// Parses an address; IPv4-mapped IPv6 becomes IPv4. Accepts "[v6]".
bool ParseIp(std::string_view s, int* family, unsigned char addr[16]) {
  std::string str(Trim(s));
  if (str.size() > 2 && str.front() == '[' && str.back() == ']')
    str = str.substr(1, str.size() - 2);
  std::memset(addr, 0, 16);
  if (inet_pton(AF_INET, str.c_str(), addr) == 1) {
    *family = AF_INET;
    return true;
  }
  unsigned char v6[16];
  if (inet_pton(AF_INET6, str.c_str(), v6) != 1) return false;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6, kMapped, 12) == 0) {
    std::memcpy(addr, v6 + 12, 4);
    *family = AF_INET;
    return true;
  }
  std::memcpy(addr, v6, 16);
  *family = AF_INET6;
  return true;
}

std::string IpKey(int family, const unsigned char addr[16]) {
  std::string k(1, family == AF_INET ? '4' : '6');
  k.append(reinterpret_cast<const char*>(addr), family == AF_INET ? 4 : 16);
  return k;
}

bool InCidr(const DnsFp& fp, int family, const unsigned char addr[16]) {
  if (family != fp.family) return false;
  const int full = fp.bits / 8, rest = fp.bits % 8;
  if (std::memcmp(addr, fp.addr, full) != 0) return false;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (addr[full] & mask) == (fp.addr[full] & mask);
}

std::string NormalizeName(std::string_view s) {
  std::string n = Lower(Trim(s));
  while (!n.empty() && n.back() == '.') n.pop_back();
  return n;
}

// Censored Planet names start with a letter that OONI's import maps to a scope.
std::string ScopeFromCpName(const std::string& name) {
  if (name.size() < 2 || name[1] != '_') return "";
  switch (name[0]) {
    case 'a':
      return "prod";
    case 'b':
      return "nat";
    case 'c':
      return "isp";
    case 'd':
      return "inst";
    case 'e':
      return "nat";
    case 'f':
      return "vbw";
    case 'x':
      return "fp";
    default:
      return "";
  }
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "";
  }
}

// Go's CanonicalMIMEHeaderKey, as in Censored Planet's data: "content-type" -> "Content-Type".
std::string CanonicalHeader(std::string_view name) {
  std::string out(name);
  bool upper = true;
  for (char& c : out) {
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
    upper = c == '-';
  }
  return out;
}

// OONI's title: case-insensitive <title>([^<]{1,512})</title>.
std::string ExtractTitle(std::string_view body) {
  auto ieq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t k = 0; k < a.size(); ++k) {
      if (std::tolower(static_cast<unsigned char>(a[k])) != b[k]) return false;
    }
    return true;
  };
  for (size_t i = 0; i + 7 <= body.size(); ++i) {
    if (body[i] != '<' || !ieq(body.substr(i, 7), "<title>")) continue;
    size_t j = i + 7;
    while (j < body.size() && body[j] != '<' && j - (i + 7) < 513) ++j;
    const size_t len = j - (i + 7);
    if (len >= 1 && len <= 512 && ieq(body.substr(j, 8), "</title>")) {
      return std::string(body.substr(i + 7, len));
    }
  }
  return "";
}

// ---------------------------------------------------------------------------
// CSV (RFC 4180: quoted fields may hold commas, doubled quotes and newlines).

struct CsvRecord {
  int line = 0;  // line where the record starts
  std::vector<std::string> fields;
};

Status ParseCsv(const std::string& file, std::string_view text, std::vector<CsvRecord>* out) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  size_t i = 0;
  int line = 1;
  while (i < text.size()) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool blank = true;
    while (true) {
      if (i < text.size() && text[i] == '"') {
        blank = false;
        ++i;
        bool closed = false;
        while (i < text.size()) {
          const char c = text[i++];
          if (c == '"') {
            if (i < text.size() && text[i] == '"') {
              field += '"';
              ++i;
            } else {
              closed = true;
              break;
            }
          } else {
            if (c == '\n') ++line;
            field += c;
          }
        }
        if (!closed) return Fail(file, rec.line, "unterminated quoted field");
        if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          return Fail(file, line, "unexpected character after a closing quote");
        }
      } else {
        while (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          field += text[i++];
        }
        if (!field.empty()) blank = false;
      }
      rec.fields.push_back(std::move(field));
      field.clear();
      if (i < text.size() && text[i] == ',') {
        blank = false;
        ++i;
        continue;
      }
      if (i < text.size() && text[i] == '\r') ++i;
      if (i < text.size() && text[i] == '\n') ++i;
      ++line;
      break;
    }
    if (!blank) out->push_back(std::move(rec));
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------

struct Fingerprints::Impl {
  std::vector<HttpFp> http;  // all loaded
  std::vector<DnsFp> dns;
  std::set<std::string> disabled;  // "source:name"
  std::vector<FingerprintFileStats> files;
  std::vector<std::string> unsupported;
  size_t next_seq = 0;

  // Built by Rebuild() after every load.
  std::vector<const HttpFp*> active_http;  // false positives first, then rank
  // Per active_http entry, what rules it out without touching the record.
  struct Quick {
    int32_t lit_id = -1;     // >= 0: a "contains" on body/response: this literal must be present
    bool body_only = false;  // ... in the body (else anywhere in the response)
    int8_t header_bit = -1;  // >= 0: a header fingerprint: that header must be present
  };
  std::vector<Quick> quick;
  std::vector<std::string> header_names;  // header_bit -> lowercase name
  size_t active_fp = 0;                   // how many of active_http are false positives
  LiteralIndex index;
  bool need_title = false;
  std::vector<const DnsFp*> active_dns;  // by rank
  std::unordered_map<std::string, const DnsFp*> dns_ip;
  std::unordered_map<std::string, const DnsFp*> dns_name;
  std::vector<const DnsFp*> dns_other;

  static std::string Key(const FingerprintMatch& m) { return m.source + ":" + m.name; }

  void Rebuild();
};

namespace {

template <typename T>
bool RankLess(const T* a, const T* b) {
  const int ra = SourceRank(a->info.source), rb = SourceRank(b->info.source);
  if (ra != rb) return ra < rb;
  return a->seq < b->seq;
}

}  // namespace

void Fingerprints::Impl::Rebuild() {
  active_http.clear();
  for (const HttpFp& f : http) {
    if (disabled.count(Key(f.info)) == 0) active_http.push_back(&f);
  }
  std::stable_sort(active_http.begin(), active_http.end(), [](const HttpFp* a, const HttpFp* b) {
    if (a->info.false_positive != b->info.false_positive) return a->info.false_positive;
    return RankLess(a, b);
  });
  active_fp = 0;
  for (const HttpFp* f : active_http) active_fp += f->info.false_positive ? 1 : 0;

  index = LiteralIndex();
  need_title = false;
  for (HttpFp& f : http) {
    f.lit_id = -1;
    f.piece_ids.clear();
    f.req_ids.clear();
    if (f.where == Where::kTitle) need_title = true;
    if (f.where != Where::kBody && f.where != Where::kResponse) continue;
    if (f.pat.op == Op::kContains) {
      f.lit_id = index.Add(f.pat.literal);
    } else if (f.pat.op == Op::kSeq) {
      for (const Piece& pc : f.pat.seq.pieces) {
        f.piece_ids.push_back(index.Add(pc.text.substr(pc.anchor, pc.anchor_len)));
      }
    } else if (f.pat.op == Op::kRegex) {
      for (const std::string& r : f.pat.required) f.req_ids.push_back(index.Add(r));
    }
  }
  index.Build();

  quick.assign(active_http.size(), Quick());
  header_names.clear();
  for (size_t k = 0; k < active_http.size(); ++k) {
    const HttpFp& f = *active_http[k];
    Quick& q = quick[k];
    if (f.pat.op == Op::kContains && f.status_in.empty() &&
        (f.where == Where::kBody || f.where == Where::kResponse)) {
      q.lit_id = f.lit_id;
      q.body_only = f.where == Where::kBody;
    } else if (f.where == Where::kHeader) {
      auto it = std::find(header_names.begin(), header_names.end(), f.header);
      if (it == header_names.end() && header_names.size() < 64) {
        header_names.push_back(f.header);
        it = header_names.end() - 1;
      }
      if (it != header_names.end()) q.header_bit = static_cast<int8_t>(it - header_names.begin());
    }
  }

  active_dns.clear();
  dns_ip.clear();
  dns_name.clear();
  dns_other.clear();
  for (const DnsFp& f : dns) {
    if (disabled.count(Key(f.info)) == 0) active_dns.push_back(&f);
  }
  std::stable_sort(active_dns.begin(), active_dns.end(), RankLess<DnsFp>);
  for (const DnsFp* f : active_dns) {
    if (f->op == DnsOp::kIp) {
      dns_ip.emplace(IpKey(f->family, f->addr), f);  // keeps the best-ranked
    } else if (f->op == DnsOp::kName) {
      dns_name.emplace(f->name, f);
    } else {
      dns_other.push_back(f);
    }
  }
}

Fingerprints::Fingerprints() : impl_(std::make_unique<Impl>()) {}
Fingerprints::~Fingerprints() = default;
Fingerprints::Fingerprints(Fingerprints&&) noexcept = default;
Fingerprints& Fingerprints::operator=(Fingerprints&&) noexcept = default;

size_t Fingerprints::dns_size() const { return impl_->active_dns.size(); }
size_t Fingerprints::http_size() const { return impl_->active_http.size(); }
size_t Fingerprints::size() const { return dns_size() + http_size(); }
const std::vector<FingerprintFileStats>& Fingerprints::files() const { return impl_->files; }
const std::vector<std::string>& Fingerprints::unsupported() const { return impl_->unsupported; }

namespace {

// Fills a DNS record's matcher from a pattern and its type.
// type: full | prefix | contains | regexp | cidr. Returns "" or an error message.
std::string SetDnsPattern(DnsFp* f, const std::string& type, const std::string& pattern,
                          bool* unsupported, std::string* why) {
  *unsupported = false;
  if (type == "full") {
    if (ParseIp(pattern, &f->family, f->addr)) {
      f->op = DnsOp::kIp;
      return "";
    }
    const std::string n = NormalizeName(pattern);
    if (!cfgutil::IsHostname(n)) return "pattern " + Quote(pattern) + " is not an IP or a name";
    f->op = DnsOp::kName;
    f->name = n;
    return "";
  }
  if (type == "cidr") {
    const size_t slash = pattern.find('/');
    if (slash == std::string::npos) return "cidr pattern " + Quote(pattern) + " has no /";
    if (!ParseIp(pattern.substr(0, slash), &f->family, f->addr)) {
      return "cidr pattern " + Quote(pattern) + ": not an IP address";
    }
    const std::string bits = pattern.substr(slash + 1);
    const int max = f->family == AF_INET ? 32 : 128;
    if (bits.empty() || bits.size() > 3 ||
        !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(bits) > max) {
      return "cidr pattern " + Quote(pattern) + ": bad prefix length";
    }
    f->bits = std::stoi(bits);
    f->op = DnsOp::kCidr;
    return "";
  }
  f->op = DnsOp::kPattern;
  if (type == "prefix") {
    f->pat.op = Op::kPrefix;
    f->pat.literal = pattern;
  } else if (type == "contains") {
    f->pat.op = Op::kContains;
    f->pat.literal = pattern;
  } else if (type == "regexp") {
    CompileResult r = CompilePython(pattern, false, &f->pat, why);
    if (r == CompileResult::kUnsupported) {
      *unsupported = true;
      return "";
    }
    if (r == CompileResult::kError) return *why;
  } else {
    return "unknown pattern type " + Quote(type);
  }
  return "";
}

// Fills an HTTP record's pattern. type: full | prefix | contains | regexp.
CompileResult SetHttpPattern(HttpFp* f, const std::string& type, const std::string& pattern,
                             bool dotall, std::string* why) {
  if (type == "full" || type == "prefix" || type == "contains") {
    f->pat.op = type == "full" ? Op::kFull : type == "prefix" ? Op::kPrefix : Op::kContains;
    f->pat.literal = pattern;
    return CompileResult::kOk;
  }
  if (type == "regexp") return CompilePython(pattern, dotall, &f->pat, why);
  *why = "unknown pattern type " + Quote(type) + " (full, prefix, contains or regexp)";
  return CompileResult::kError;
}

// Parses "body", "title", "status", "response" or "header.<name>".
bool ParseLocation(const std::string& loc, bool allow_rasad, HttpFp* f) {
  if (loc == "body") {
    f->where = Where::kBody;
  } else if (loc.rfind("header.", 0) == 0 && loc.size() > 7) {
    const std::string h = loc.substr(7);
    for (char c : h) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    f->where = Where::kHeader;
    f->header = Lower(h);
  } else if (allow_rasad && loc == "title") {
    f->where = Where::kTitle;
  } else if (allow_rasad && loc == "status") {
    f->where = Where::kStatus;
  } else if (allow_rasad && loc == "response") {
    f->where = Where::kResponse;
  } else {
    return false;
  }
  f->info.location = f->where == Where::kHeader ? "header." + f->header : loc;
  return true;
}

}  // namespace

// --- OONI CSV --------------------------------------------------------------

namespace {

Status LoadOoniCsv(const std::string& path, bool is_dns, Fingerprints::Impl* impl) {
  std::string text;
  Status s = cfgutil::ReadWholeFile(path, &text);
  if (!s.ok()) return s;
  std::vector<CsvRecord> recs;
  s = ParseCsv(path, text, &recs);
  if (!s.ok()) return s;
  if (recs.empty()) return Fail(path, 1, "empty file: expected a header row");
  std::map<std::string, size_t> col;
  for (size_t k = 0; k < recs[0].fields.size(); ++k) {
    col[std::string(Trim(recs[0].fields[k]))] = k;
  }
  for (const char* need : {"name", "location_found", "pattern_type", "pattern"}) {
    if (col.count(need) == 0) {
      return Fail(path, recs[0].line, std::string("missing column ") + Quote(need));
    }
  }
  auto get = [&](const CsvRecord& r, const char* name) -> std::string {
    auto it = col.find(name);
    return it == col.end() ? std::string() : r.fields[it->second];
  };
  std::vector<HttpFp> http;
  std::vector<DnsFp> dns;
  std::vector<std::string> unsupported;
  const size_t ncols = recs[0].fields.size();
  for (size_t k = 1; k < recs.size(); ++k) {
    const CsvRecord& r = recs[k];
    if (r.fields.size() != ncols) {
      return Fail(path, r.line,
                  "expected " + std::to_string(ncols) + " fields (as in the header), found " +
                      std::to_string(r.fields.size()));
    }
    FingerprintMatch info;
    info.name = std::string(Trim(get(r, "name")));
    info.source = "ooni";
    info.scope = std::string(Trim(get(r, "scope")));
    info.false_positive = info.scope == "fp";
    if (info.name.empty()) return Fail(path, r.line, "empty name");
    const std::string prefix = info.name + ": ";
    const std::string conf(Trim(get(r, "confidence_no_fp")));
    if (!conf.empty() && (conf.size() > 2 || !std::all_of(conf.begin(), conf.end(), [](char c) {
                            return c >= '0' && c <= '9';
                          }))) {
      return Fail(path, r.line, prefix + "confidence_no_fp " + Quote(conf) + " is not 0..10");
    }
    info.confidence = conf;
    const std::string countries = get(r, "expected_countries");
    size_t start = 0;
    while (start <= countries.size()) {
      size_t comma = countries.find(',', start);
      if (comma == std::string::npos) comma = countries.size();
      const std::string cc(Trim(std::string_view(countries).substr(start, comma - start)));
      if (!cc.empty()) {
        if (!IsCountryCode(cc)) {
          return Fail(
              path, r.line,
              prefix + "expected_countries: " + Quote(cc) + " is not a two-letter country code");
        }
        info.countries.push_back(cc);
      }
      start = comma + 1;
    }
    const std::string loc(Trim(get(r, "location_found")));
    const std::string type(Trim(get(r, "pattern_type")));
    const std::string pattern = get(r, "pattern");
    if (pattern.empty()) return Fail(path, r.line, prefix + "empty pattern");
    if (type != "full" && type != "prefix" && type != "contains" && type != "regexp") {
      return Fail(
          path, r.line,
          prefix + "pattern_type " + Quote(type) + " is not full, prefix, contains or regexp");
    }
    std::string why;
    if (is_dns) {
      if (loc != "dns") {
        return Fail(path, r.line, prefix + "location_found " + Quote(loc) + " is not dns");
      }
      DnsFp f;
      f.info = info;
      f.info.location = "dns";
      bool unsup = false;
      const std::string err = SetDnsPattern(&f, type, pattern, &unsup, &why);
      if (!err.empty()) return Fail(path, r.line, prefix + err);
      if (unsup) {
        unsupported.push_back(path + ":" + std::to_string(r.line) + ": " + info.name + ": " + why);
        continue;
      }
      dns.push_back(std::move(f));
    } else {
      HttpFp f;
      f.info = info;
      if (!ParseLocation(loc, false, &f)) {
        return Fail(path, r.line,
                    prefix + "location_found " + Quote(loc) + " is not body or header.<name>");
      }
      // OONI's pipeline uses re.search without flags: '.' does not match '\n'.
      CompileResult cr = SetHttpPattern(&f, type, pattern, false, &why);
      if (cr == CompileResult::kError) return Fail(path, r.line, prefix + why);
      if (cr == CompileResult::kUnsupported) {
        unsupported.push_back(path + ":" + std::to_string(r.line) + ": " + info.name + ": " + why);
        continue;
      }
      http.push_back(std::move(f));
    }
  }
  FingerprintFileStats st;
  st.path = path;
  st.kind = is_dns ? "ooni-dns" : "ooni-http";
  st.loaded = is_dns ? dns.size() : http.size();
  st.unsupported = unsupported.size();
  for (const HttpFp& f : http) st.regex += f.pat.op == Op::kRegex ? 1 : 0;
  for (const DnsFp& f : dns) st.regex += f.op == DnsOp::kPattern && f.pat.op == Op::kRegex ? 1 : 0;
  for (HttpFp& f : http) f.seq = impl->next_seq++, impl->http.push_back(std::move(f));
  for (DnsFp& f : dns) f.seq = impl->next_seq++, impl->dns.push_back(std::move(f));
  impl->unsupported.insert(impl->unsupported.end(), unsupported.begin(), unsupported.end());
  impl->files.push_back(st);
  impl->Rebuild();
  return Status::Ok();
}

// --- Censored Planet JSONL -------------------------------------------------

Status LoadCpJsonl(const std::string& path, bool false_positives, Fingerprints::Impl* impl) {
  std::string text;
  Status s = cfgutil::ReadWholeFile(path, &text);
  if (!s.ok()) return s;
  std::vector<HttpFp> http;
  std::vector<std::string> unsupported;
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view row(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (line == 1 && row.substr(0, 3) == "\xEF\xBB\xBF") row.remove_prefix(3);
    if (Trim(row).empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(row);
    } catch (const nlohmann::json::parse_error& e) {
      return Fail(path, line, "invalid JSON at column " + std::to_string(e.byte));
    }
    if (!j.is_object()) return Fail(path, line, "expected a JSON object");
    auto fp = j.find("fingerprint");
    auto pt = j.find("pattern");
    if (fp == j.end() || !fp->is_string() || fp->get<std::string>().empty()) {
      return Fail(path, line, "missing or empty \"fingerprint\" (a string)");
    }
    const std::string name = fp->get<std::string>();
    if (pt == j.end() || !pt->is_string() || pt->get<std::string>().empty()) {
      return Fail(path, line, name + ": missing or empty \"pattern\" (a string)");
    }
    HttpFp f;
    f.info.name = name;
    f.info.source = "censoredplanet";
    f.info.false_positive = false_positives;
    f.info.scope = false_positives ? "fp" : ScopeFromCpName(name);
    f.where = Where::kResponse;
    std::string why;
    // Censored Planet compiles every signature with re.DOTALL.
    CompileResult cr = CompilePython(pt->get<std::string>(), true, &f.pat, &why);
    if (cr == CompileResult::kError) return Fail(path, line, name + ": " + why);
    if (cr == CompileResult::kUnsupported) {
      unsupported.push_back(path + ":" + std::to_string(line) + ": " + name + ": " + why);
      continue;
    }
    http.push_back(std::move(f));
  }
  FingerprintFileStats st;
  st.path = path;
  st.kind = false_positives ? "cp-false-positives" : "cp-blockpages";
  st.loaded = http.size();
  st.unsupported = unsupported.size();
  for (const HttpFp& f : http) st.regex += f.pat.op == Op::kRegex ? 1 : 0;
  for (HttpFp& f : http) f.seq = impl->next_seq++, impl->http.push_back(std::move(f));
  impl->unsupported.insert(impl->unsupported.end(), unsupported.begin(), unsupported.end());
  impl->files.push_back(st);
  impl->Rebuild();
  return Status::Ok();
}

// --- rasad TOML ------------------------------------------------------------

bool IsFingerprintName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// Fields shared by [[dns]] and [[http]].
Status ParseCommon(const std::string& file, const toml::table& t, const std::string& prefix,
                   FingerprintMatch* info) {
  using namespace cfgutil;
  bool found;
  int line = 0;
  std::string scope;
  Status s = GetString(file, t, prefix, "scope", &scope, &found, &line);
  if (!s.ok()) return s;
  if (found && !IsFingerprintName(scope)) {
    return Fail(file, line, prefix + "\"scope\" must be a word such as nat, isp, prod, inst");
  }
  info->scope = scope;
  int64_t conf = 0;
  s = GetInt(file, t, prefix, "confidence", 0, 10, &conf, &found, &line);
  if (!s.ok()) return s;
  if (found) info->confidence = std::to_string(conf);
  std::vector<std::string> cc;
  std::vector<int> lines;
  s = GetStringArray(file, t, prefix, "countries", &cc, &lines, &found, &line);
  if (!s.ok()) return s;
  for (size_t k = 0; k < cc.size(); ++k) {
    if (!IsCountryCode(cc[k])) {
      return Fail(file, lines[k], prefix + Quote(cc[k]) + " is not a two-letter country code");
    }
  }
  info->countries = cc;
  std::string unused;
  s = GetString(file, t, prefix, "notes", &unused, &found, &line);
  if (!s.ok()) return s;
  return GetString(file, t, prefix, "reference", &unused, &found, &line);
}

Status ParseRasadEntry(const std::string& file, const toml::table& t, bool is_dns, int index,
                       std::set<std::string>* names, HttpFp* hf, DnsFp* df) {
  using namespace cfgutil;
  const int tline = LineOf(t);
  std::string prefix =
      std::string(is_dns ? "dns" : "http") + " #" + std::to_string(index + 1) + ": ";
  bool found;
  int line = 0;
  std::string name;
  Status s = GetString(file, t, prefix, "name", &name, &found, &line);
  if (!s.ok()) return s;
  if (!found) return Fail(file, tline, prefix + "missing \"name\"");
  if (!IsFingerprintName(name)) {
    return Fail(file, line, prefix + "\"name\" must be letters, digits, '_', '-' or '.'");
  }
  if (!names->insert(name).second) return Fail(file, line, "duplicate name " + Quote(name));
  prefix = (is_dns ? "dns " : "http ") + Quote(name) + ": ";
  const std::vector<std::string> dns_keys = {"name",      "pattern",    "type",  "scope",
                                             "countries", "confidence", "notes", "reference"};
  std::vector<std::string> http_keys = dns_keys;
  for (const char* k : {"location", "status", "false_positive"}) http_keys.push_back(k);
  s = CheckKeys(file, t, prefix, is_dns ? dns_keys : http_keys);
  if (!s.ok()) return s;
  std::string pattern;
  int pline = tline;
  s = GetString(file, t, prefix, "pattern", &pattern, &found, &pline);
  if (!s.ok()) return s;
  if (!found || pattern.empty()) return Fail(file, tline, prefix + "missing or empty \"pattern\"");
  std::string type = is_dns ? "full" : "contains";
  int tyline = tline;
  s = GetString(file, t, prefix, "type", &type, &found, &tyline);
  if (!s.ok()) return s;
  FingerprintMatch info;
  info.name = name;
  info.source = "rasad";
  s = ParseCommon(file, t, prefix, &info);
  if (!s.ok()) return s;
  std::string why;
  if (is_dns) {
    if (type != "full" && type != "prefix" && type != "contains" && type != "regexp" &&
        type != "cidr") {
      return Fail(file, tyline, prefix + "\"type\" must be full, cidr, prefix, contains or regexp");
    }
    df->info = info;
    df->info.location = "dns";
    bool unsup = false;
    const std::string err = SetDnsPattern(df, type, pattern, &unsup, &why);
    if (!err.empty()) return Fail(file, pline, prefix + err);
    if (unsup) return Fail(file, pline, prefix + "unsupported regex: " + why);
    return Status::Ok();
  }
  hf->info = info;
  std::string loc = "body";
  int lline = tline;
  s = GetString(file, t, prefix, "location", &loc, &found, &lline);
  if (!s.ok()) return s;
  if (!ParseLocation(loc, true, hf)) {
    return Fail(file, lline,
                prefix + "\"location\" must be body, title, status, response or header.<name>");
  }
  if (type != "full" && type != "prefix" && type != "contains" && type != "regexp") {
    return Fail(file, tyline, prefix + "\"type\" must be full, prefix, contains or regexp");
  }
  CompileResult cr = SetHttpPattern(hf, type, pattern, false, &why);
  if (cr == CompileResult::kError) return Fail(file, pline, prefix + why);
  if (cr == CompileResult::kUnsupported) {
    return Fail(file, pline, prefix + "unsupported regex: " + why);
  }
  std::vector<int64_t> status;
  std::vector<int> slines;
  s = GetIntArray(file, t, prefix, "status", &status, &slines, &found, &line);
  if (!s.ok()) return s;
  for (size_t k = 0; k < status.size(); ++k) {
    if (status[k] < 100 || status[k] > 599) {
      return Fail(
          file, slines[k],
          prefix + "status " + std::to_string(status[k]) + " is not an HTTP status (100..599)");
    }
    hf->status_in.push_back(static_cast<int>(status[k]));
  }
  bool fp = false;
  s = GetBool(file, t, prefix, "false_positive", &fp, &found, &line);
  if (!s.ok()) return s;
  hf->info.false_positive = fp;
  if (fp && hf->info.scope.empty()) hf->info.scope = "fp";
  return Status::Ok();
}

}  // namespace

Status Fingerprints::LoadOoniDns(const std::string& csv) {
  return LoadOoniCsv(csv, true, impl_.get());
}
Status Fingerprints::LoadOoniHttp(const std::string& csv) {
  return LoadOoniCsv(csv, false, impl_.get());
}
Status Fingerprints::LoadCensoredPlanetBlockpages(const std::string& jsonl) {
  return LoadCpJsonl(jsonl, false, impl_.get());
}
Status Fingerprints::LoadCensoredPlanetFalsePositives(const std::string& jsonl) {
  return LoadCpJsonl(jsonl, true, impl_.get());
}

Status Fingerprints::LoadRasad(const std::string& path) {
  using namespace cfgutil;
  toml::table root;
  Status s = ParseTomlFile(path, &root);
  if (!s.ok()) return s;
  s = CheckKeys(path, root, "", {"disable", "dns", "http"});
  if (!s.ok()) return s;
  std::vector<std::string> disable;
  std::vector<int> dlines;
  bool found;
  int line = 0;
  s = GetStringArray(path, root, "", "disable", &disable, &dlines, &found, &line);
  if (!s.ok()) return s;
  for (size_t k = 0; k < disable.size(); ++k) {
    const size_t colon = disable[k].find(':');
    const std::string src = colon == std::string::npos ? "" : disable[k].substr(0, colon);
    if ((src != "ooni" && src != "censoredplanet" && src != "rasad") ||
        colon + 1 >= disable[k].size()) {
      return Fail(path, dlines[k],
                  "disable: " + Quote(disable[k]) +
                      " must be \"ooni:NAME\", \"censoredplanet:NAME\" or \"rasad:NAME\"");
    }
  }
  std::set<std::string> names;
  std::vector<HttpFp> http;
  std::vector<DnsFp> dns;
  for (const bool is_dns : {true, false}) {
    const char* key = is_dns ? "dns" : "http";
    const toml::node* n = root.get(key);
    if (n == nullptr) continue;
    const toml::array* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      return Fail(path, LineOf(*n), Quote(key) + " must be an array of tables ([[" + key + "]])");
    }
    int index = 0;
    for (const toml::node& e : *arr) {
      HttpFp hf;
      DnsFp df;
      s = ParseRasadEntry(path, *e.as_table(), is_dns, index++, &names, &hf, &df);
      if (!s.ok()) return s;
      if (is_dns) {
        dns.push_back(std::move(df));
      } else {
        http.push_back(std::move(hf));
      }
    }
  }
  FingerprintFileStats st;
  st.path = path;
  st.kind = "rasad";
  st.loaded = http.size() + dns.size();
  for (const HttpFp& f : http) st.regex += f.pat.op == Op::kRegex ? 1 : 0;
  for (const DnsFp& f : dns) st.regex += f.op == DnsOp::kPattern && f.pat.op == Op::kRegex ? 1 : 0;
  Impl* impl = impl_.get();
  for (HttpFp& f : http) f.seq = impl->next_seq++, impl->http.push_back(std::move(f));
  for (DnsFp& f : dns) f.seq = impl->next_seq++, impl->dns.push_back(std::move(f));
  impl->disabled.insert(disable.begin(), disable.end());
  impl->files.push_back(st);
  impl->Rebuild();
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Matching.

std::optional<FingerprintMatch> Fingerprints::MatchDnsAnswer(const std::string& answer) const {
  const Impl& m = *impl_;
  const DnsFp* best = nullptr;
  auto consider = [&](const DnsFp* f) {
    if (f != nullptr && (best == nullptr || RankLess(f, best))) best = f;
  };
  int family = 0;
  unsigned char addr[16];
  const bool is_ip = ParseIp(answer, &family, addr);
  if (is_ip) {
    auto it = m.dns_ip.find(IpKey(family, addr));
    if (it != m.dns_ip.end()) consider(it->second);
  } else {
    auto it = m.dns_name.find(NormalizeName(answer));
    if (it != m.dns_name.end()) consider(it->second);
  }
  const std::string_view text = Trim(answer);
  for (const DnsFp* f : m.dns_other) {
    if (best != nullptr && !RankLess(f, best)) break;  // sorted by rank
    const bool hit =
        f->op == DnsOp::kCidr ? (is_ip && InCidr(*f, family, addr)) : MatchValue(f->pat, text);
    if (hit) consider(f);
  }
  if (best == nullptr) return std::nullopt;
  return best->info;
}

namespace {

struct HttpContext {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase name, trimmed value
  std::string resp;                // status line, headers, blank line, capped body
  size_t status_end = 0;           // end of the status line
  size_t body_off = 0;             // where the body starts in resp
  std::vector<size_t> header_off;  // start of each header line in resp
  std::vector<uint32_t> first_any, first_body;
  std::optional<std::string> title;
};

std::string LocationAt(const HttpContext& c, size_t pos) {
  if (pos >= c.body_off) return "body";
  if (pos < c.status_end) return "status";
  auto it = std::upper_bound(c.header_off.begin(), c.header_off.end(), pos);
  if (it == c.header_off.begin()) return "status";
  return "header." + c.headers[static_cast<size_t>(it - c.header_off.begin()) - 1].first;
}

// Does `f` match? Sets *location.
bool MatchOne(const HttpFp& f, HttpContext& c, std::string* location) {
  if (!f.status_in.empty() &&
      std::find(f.status_in.begin(), f.status_in.end(), c.status) == f.status_in.end()) {
    return false;
  }
  constexpr size_t npos = std::string_view::npos;
  switch (f.where) {
    case Where::kStatus:
      *location = "status";
      return MatchValue(f.pat, std::to_string(c.status));
    case Where::kHeader:
      for (const auto& [name, value] : c.headers) {
        if (name == f.header && MatchValue(f.pat, value)) {
          *location = "header." + name;
          return true;
        }
      }
      return false;
    case Where::kTitle:
      if (!c.title) c.title = ExtractTitle(std::string_view(c.resp).substr(c.body_off));
      *location = "title";
      return !c.title->empty() && MatchValue(f.pat, *c.title);
    case Where::kBody:
    case Where::kResponse:
      break;
  }
  const bool body_only = f.where == Where::kBody;
  const std::vector<uint32_t>& first = body_only ? c.first_body : c.first_any;
  const std::string_view t(c.resp);
  const size_t begin = body_only ? c.body_off : 0;
  size_t pos = npos;
  switch (f.pat.op) {
    case Op::kFull:
      if (t.substr(begin) == f.pat.literal) pos = begin;
      break;
    case Op::kPrefix:
      if (t.substr(begin, f.pat.literal.size()) == f.pat.literal) pos = begin;
      break;
    case Op::kContains:
      if (first[f.lit_id] != kNone) pos = first[f.lit_id];
      break;
    case Op::kSeq:
      for (int id : f.piece_ids) {
        if (first[id] == kNone) return false;
      }
      pos = FindSeq(t, begin, t.size(), f.pat.seq);
      break;
    case Op::kRegex: {
      size_t center = npos;
      for (int id : f.req_ids)
        center = std::min<size_t>(center, first[id] == kNone ? npos : first[id]);
      if (!f.req_ids.empty() && center == npos) return false;
      pos = RegexSearch(*f.pat.re, t, begin, t.size(), center);
      break;
    }
  }
  if (pos == npos) return false;
  *location = body_only ? "body" : LocationAt(c, pos);
  return true;
}

}  // namespace

static std::vector<FingerprintMatch> MatchHttpImpl(
    const Fingerprints::Impl& m, int status,
    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
    bool all) {
  HttpContext c;
  c.status = status;
  c.resp = std::to_string(status);
  const char* reason = ReasonPhrase(status);
  if (*reason) c.resp += std::string(" ") + reason;
  c.status_end = c.resp.size();
  c.resp += "\r\n";
  for (const auto& [name, value] : headers) {
    c.headers.emplace_back(Lower(Trim(name)), std::string(Trim(value)));
    c.header_off.push_back(c.resp.size());
    c.resp += CanonicalHeader(Trim(name)) + ": " + std::string(Trim(value)) + "\r\n";
  }
  c.resp += "\r\n";
  c.body_off = c.resp.size();
  c.resp.append(body, 0, std::min(body.size(), Fingerprints::kMaxScanBytes));
  m.index.Scan(c.resp, c.body_off, &c.first_any, &c.first_body);
  uint64_t present = 0;  // bit per m.header_names entry present in the response
  for (const auto& h : c.headers) {
    for (size_t b = 0; b < m.header_names.size(); ++b) {
      if (m.header_names[b] == h.first) present |= uint64_t{1} << b;
    }
  }

  std::vector<FingerprintMatch> out;
  for (size_t k = 0; k < m.active_http.size(); ++k) {
    const Fingerprints::Impl::Quick& q = m.quick[k];
    if (q.lit_id >= 0) {
      if ((q.body_only ? c.first_body : c.first_any)[q.lit_id] == kNone) continue;
    } else if (q.header_bit >= 0 && (present & (uint64_t{1} << q.header_bit)) == 0) {
      continue;
    }
    const HttpFp& f = *m.active_http[k];
    std::string location;
    if (!MatchOne(f, c, &location)) continue;
    out.push_back(f.info);
    out.back().location = location;
    if (!all) break;
  }
  return out;
}

std::optional<FingerprintMatch> Fingerprints::MatchHttp(
    int status, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body) const {
  std::vector<FingerprintMatch> v = MatchHttpImpl(*impl_, status, headers, body, false);
  if (v.empty()) return std::nullopt;
  return v.front();
}

std::vector<FingerprintMatch> Fingerprints::MatchHttpAll(
    int status, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body) const {
  return MatchHttpImpl(*impl_, status, headers, body, true);
}

}  // namespace rasad

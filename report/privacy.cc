#include "report/privacy.h"

#include <cctype>

#include "probe/store/store.h"
#include "report/db.h"

namespace rasad {

using reportdb::Stmt;

namespace {

bool AddrChar(char c, bool v6) {
  unsigned char u = static_cast<unsigned char>(c);
  if (v6) return isxdigit(u) || c == ':' || c == '.';
  return isdigit(u) || c == '.';
}

// Position of the next whole-address occurrence of `a` in `s` from `from`.
size_t FindWhole(const std::string& s, const std::string& a, size_t from) {
  bool v6 = a.find(':') != std::string::npos;
  for (size_t p = s.find(a, from); p != std::string::npos; p = s.find(a, p + 1)) {
    bool left_ok = p == 0 || !AddrChar(s[p - 1], v6);
    size_t e = p + a.size();
    // "1.2.3.4." at the end of a sentence is still the address.
    bool right_ok = e >= s.size() || !AddrChar(s[e], v6) ||
                    (s[e] == '.' && (e + 1 >= s.size() || !isdigit((unsigned char)s[e + 1])));
    if (left_ok && right_ok) return p;
  }
  return std::string::npos;
}

}  // namespace

Status Scrubber::Load(const Store& store, Scrubber* out) {
  sqlite3* db = store.handle();
  Scrubber s;
  // private_addresses is complete once every cycle is applied.
  bool complete = false;
  if (reportdb::HaveReportTables(db)) {
    Stmt q;
    Status st = q.Prepare(db,
                          "SELECT NOT EXISTS (SELECT 1 FROM cycles c WHERE NOT EXISTS (SELECT 1 "
                          "FROM timeline_applied a WHERE a.cycle_uid = c.uid))");
    if (!st.ok()) return st;
    complete = q.Step() == SQLITE_ROW && q.Int(0) == 1;
    Stmt a;
    st = a.Prepare(db, "SELECT addr FROM private_addresses");
    if (!st.ok()) return st;
    while (a.Step() == SQLITE_ROW) s.Add(a.Text(0));
  }
  if (!complete) {
    Stmt q;
    Status st = q.Prepare(db,
                          "SELECT DISTINCT local_addr FROM observations WHERE local_addr IS NOT "
                          "NULL AND local_addr <> ''");
    if (!st.ok()) return st;
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) s.Add(q.Text(0));
    if (rc != SQLITE_DONE) return reportdb::SqlError(db, "collect local addresses");
  }
  *out = std::move(s);
  return Status::Ok();
}

void Scrubber::Add(const std::string& addr) {
  // Unspecified addresses identify nobody and would match too much.
  if (addr.empty() || addr == "0.0.0.0" || addr == "::" || addr == "127.0.0.1" || addr == "::1")
    return;
  addrs_.insert(addr);
}

bool Scrubber::Contains(const std::string& text) const {
  for (const std::string& a : addrs_)
    if (FindWhole(text, a, 0) != std::string::npos) return true;
  return false;
}

std::string Scrubber::Scrub(const std::string& text) const {
  if (addrs_.empty()) return text;
  std::string out = text;
  for (const std::string& a : addrs_) {
    size_t p = FindWhole(out, a, 0);
    while (p != std::string::npos) {
      out.replace(p, a.size(), kScrubbed);
      p = FindWhole(out, a, p + std::string(kScrubbed).size());
    }
  }
  return out;
}

}  // namespace rasad

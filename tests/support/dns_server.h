// A scripted authoritative DNS server: UDP and TCP on the same ephemeral port of 127.0.0.1,
// served by one thread (poll loop; delayed answers do not block other queries).
//
// Answers: id and question echoed (original case, so 0x20 checks pass), QR+AA+RA set, opcode
// and RD copied, no EDNS OPT in answers (an OPT in the query is read only for its UDP payload
// size). A/AAAA records use the compression pointer 0xC00C to the question name. qtype A gets
// rule.a, AAAA gets rule.aaaa, ANY gets both, any other qtype (or an empty list) is NODATA.
// Over UDP, an answer larger than the client's limit (512, or the EDNS size) is sent truncated
// (TC, no records) so the client retries over TCP. Malformed queries (short, QR set, qdcount
// != 1, bad name) are counted nowhere and get no answer; opcodes other than QUERY get NOTIMP.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rasad::testing {

struct DnsRule {  // matched on the lowercased qname, exactly (no wildcards, trailing dot ignored)
  enum Kind { kAnswer, kNxdomain, kServfail, kRefused, kDrop, kNoData } kind = kAnswer;
  std::vector<std::string> a, aaaa;  // address literals; invalid ones are ignored
  uint32_t ttl = 300;
  int delay_ms = 0;  // before answering (applies to every kind except kDrop)
};

class DnsServer {
 public:
  DnsServer();
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  void Set(const std::string& name, DnsRule rule);  // thread-safe; unknown names: NXDOMAIN
  uint16_t port() const;
  int queries() const;                      // well-formed queries received (UDP + TCP)
  std::vector<std::string> qnames() const;  // their lowercased qnames, in order, no final dot

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rasad::testing

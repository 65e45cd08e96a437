// Runs the real dnsmasq for tests that need a real DNS server, as a child process:
//
//   /usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=P
//     --listen-address=127.0.0.1 --bind-interfaces --conf-file=FILE --pid-file=
//     --log-facility=- [--user=root when running as root]
//
// on a free port (UDP and TCP), stdout/stderr to a log file in a private temp dir. The
// constructor waits (up to 5 s) until dnsmasq answers a UDP query; if the port was taken in the
// meantime it retries on another. The child gets PR_SET_PDEATHSIG(SIGKILL) so it never outlives
// a crashed test (note: it fires when the *thread* that constructed the Dnsmasq exits, so
// construct it on a thread that outlives it, e.g. the test body). The destructor sends SIGTERM
// (SIGKILL after 1 s) and reaps it.
//
// Config lines, as found by running dnsmasq 2.90 (Debian 12) by hand with the flags above:
//   address=/ok.test/127.0.0.1   A query: NOERROR + A 127.0.0.1 (ttl 0), also for every
//                                subdomain (sub.ok.test). AAAA query for the same name is NOT
//                                NODATA: it is forwarded, and with no server it is REFUSED.
//   address=/v6.test/::1         AAAA answer; A for that name is REFUSED (same reason).
//   address=/both.test/127.0.0.2 + address=/both.test/::2   A and AAAA both answered.
//   address=/ok.test/127.0.0.1 + local=/ok.test/   A answered, AAAA (and other types) NODATA.
//   address=/nx.test/            NXDOMAIN for every type (same: local=/nx.test/ or
//                                server=/nx.test/). Applies to subdomains too.
//   address=/blk.test/#          0.0.0.0 for A and :: for AAAA (the "blocked" sinkhole answer).
//   unknown names                REFUSED (rcode 5, with EDE "not ready") because of
//                                --no-resolv and no server= line. Also any qtype other than
//                                A/AAAA for an address=/ name.
//   host-record=hr.test,127.0.0.1  A answered, but AAAA is REFUSED, not NODATA (no better than
//                                address=).
//   server=/sf.test/127.0.0.1#<port of a DnsServer whose rule is kServfail>   SERVFAIL (rcode 2;
//                                dnsmasq passes the upstream SERVFAIL through). dnsmasq itself
//                                has no config line that answers SERVFAIL.
//   server=/dead.test/127.0.0.1#<closed port>   no answer at all (still silent after 15 s):
//                                a "drop"/timeout case.
//   local=/#/                    every name not configured otherwise gets NXDOMAIN instead of
//                                REFUSED (more specific address=/server= lines still win).
//                                With it, host-record=hr.test,127.0.0.1 answers A and gives
//                                NODATA for AAAA, but address=/ok.test/127.0.0.1 gives NXDOMAIN
//                                for AAAA (the AAAA falls through to local=/#/).
//   Flags: address= answers are QR|AA|RD|RA (0x8580); NXDOMAIN/REFUSED/NODATA have no AA
//   (0x8183, 0x8185, 0x8180). The TTL of address= answers is 0 (see --local-ttl).
//   Running as root works with and without --user=root here (dnsmasq drops to "nobody" by
//   default); --user=root is passed when euid is 0 so that containers without a usable nobody
//   user/setgroups still work. Running as an unprivileged user also works (high port).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rasad::testing {

class Dnsmasq {
 public:
  static bool Available();      // the binary exists and `dnsmasq --version` runs
  static std::string Binary();  // /usr/sbin/dnsmasq (or /usr/bin/dnsmasq), "" if absent

  // e.g. {"address=/ok.test/127.0.0.1", "address=/nx.test/"}
  explicit Dnsmasq(const std::vector<std::string>& config_lines);
  ~Dnsmasq();
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }
  std::string error() const { return error_; }
  std::string log() const;  // dnsmasq's output so far

 private:
  bool StartOnce(uint16_t port, std::string* err, bool* port_in_use);
  void Stop();

  bool ok_ = false;
  uint16_t port_ = 0;
  std::string error_;
  pid_t pid_ = -1;
  std::string dir_, conf_, log_;
};

}  // namespace rasad::testing

// `rasad evidence export`: shareable copies of evidence pcaps in which the
// volunteer's own addresses (IPv4, IPv6, MAC) are rewritten consistently to
// documentation addresses and every checksum that covers them is fixed;
// everything else stays byte for byte (docs/EVIDENCE.md "Export").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "probe/capture/packet.h"
#include "probe/core/status.h"
#include "probe/measure/observation.h"

namespace rasad {
namespace capture {

using MacAddr = std::array<uint8_t, 6>;

struct ExportStats {
  uint64_t files = 0;
  uint64_t frames = 0;
  uint64_t ip_rewrites = 0;           // address fields rewritten (outer and quoted)
  uint64_t mac_rewrites = 0;          // link-layer address fields rewritten
  uint64_t checksums_recomputed = 0;  // complete packets: computed from scratch
  uint64_t checksums_adjusted = 0;    // cut or fragmented packets: RFC 1624 update
  uint64_t frames_not_parsed = 0;     // link or IP layer not understood: copied as is
  // Frames in which an own address still occurs somewhere (payload, an
  // unknown header): copied anyway, counted, and named in `warnings`.
  uint64_t residual_frames = 0;
  std::vector<std::string> warnings;
};

// The own addresses and their replacements: the n-th IPv4 address added
// becomes 192.0.2.n (then 198.51.100.x, 203.0.113.x), the n-th IPv6
// 2001:db8::n, the n-th MAC 02:00:00:00:00:n (locally administered). Adding
// an address twice keeps its first replacement, so one rewriter gives the
// same mapping across every file of an export.
class AddressRewriter {
 public:
  void AddAddress(const IpAddr& addr);
  bool AddAddressText(const std::string& text);  // false: not an IP literal
  void AddMac(const MacAddr& mac);               // the all-zero MAC is ignored
  // Every address and MAC of this host's interfaces (getifaddrs: AF_INET,
  // AF_INET6, AF_PACKET). Returns how many were added.
  int AddInterfaceAddresses();
  // The local_addr of each observation.
  void AddObservationAddresses(const std::vector<Observation>& observations);

  bool IsOwn(const IpAddr& addr) const { return ip_.count(addr) != 0; }
  IpAddr Replacement(const IpAddr& addr) const;  // addr itself when not own
  MacAddr Replacement(const MacAddr& mac) const;
  size_t size() const { return ip_.size() + mac_.size(); }

  // Rewrites one frame in place (cap_len bytes captured of wire_len).
  // Returns false when the frame's layers are not understood (it is left
  // untouched then).
  bool RewriteFrame(int link_type, uint8_t* data, size_t cap_len, size_t wire_len,
                    ExportStats* stats) const;
  // True when an own address's bytes occur anywhere in data.
  bool ContainsOwn(const uint8_t* data, size_t len) const;

 private:
  bool RewriteMac(uint8_t* p, ExportStats* stats) const;
  bool RewriteIp(uint8_t* ip, size_t cap, bool cut, ExportStats* stats) const;
  bool RewriteIcmpQuote(uint8_t* inner, size_t len, ExportStats* stats) const;

  std::map<IpAddr, IpAddr> ip_;
  std::map<MacAddr, MacAddr> mac_;
  int v4_ = 0, v6_ = 0, macs_ = 0;
};

// Internet checksum (RFC 1071) of data, folded, not complemented, added to
// an initial 32-bit sum.
uint32_t ChecksumAdd(uint32_t sum, const uint8_t* data, size_t len);
uint16_t ChecksumFold(uint32_t sum);  // ~fold(sum)

// Copies in (pcap or pcapng) to out (pcap, nanosecond timestamps, same link
// type) with every frame rewritten.
Status ExportPcap(const std::string& in, const std::string& out, const AddressRewriter& rw,
                  ExportStats* stats);

// Every *.pcap under evidence_dir to the same relative path under out_dir.
// written gets the output paths.
Status ExportEvidenceDir(const std::string& evidence_dir, const std::string& out_dir,
                         const AddressRewriter& rw, ExportStats* stats,
                         std::vector<std::string>* written);

}  // namespace capture
}  // namespace rasad

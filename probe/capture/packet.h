// Decoding of one captured frame (link layer, IPv4/IPv6, TCP/UDP/ICMP).
//
// The bytes come from the network and may be forged by the censor we are
// measuring, so every length is checked against what was captured: a
// malformed frame yields a decode error, never an out-of-bounds read. The
// decoder does not allocate; Packet::payload points into the caller's buffer
// and is valid only as long as that buffer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rasad {
namespace capture {

// libpcap link types (DLT_* values as returned by pcap_datalink(); the file
// values LINKTYPE_RAW = 101 and OpenBSD's DLT_RAW = 14 are accepted too).
enum LinkType : int {
  kLinkNull = 0,         // DLT_NULL: 4-byte address family, writer's byte order
  kLinkEthernet = 1,     // DLT_EN10MB
  kLinkRaw = 12,         // DLT_RAW (Linux, most systems)
  kLinkRawBsd = 14,      // DLT_RAW on OpenBSD/BSD/OS
  kLinkRawFile = 101,    // LINKTYPE_RAW as stored in files
  kLinkLoop = 108,       // DLT_LOOP: 4-byte address family, network order
  kLinkLinuxSll = 113,   // DLT_LINUX_SLL ("any" device)
  kLinkIpv4 = 228,       // DLT_IPV4
  kLinkIpv6 = 229,       // DLT_IPV6
  kLinkLinuxSll2 = 276,  // DLT_LINUX_SLL2
};

// True for the link types Decode() understands.
bool IsSupportedLinkType(int link_type);

// An IPv4 or IPv6 address in network byte order.
struct IpAddr {
  uint8_t family = 0;  // 4 or 6; 0 = unset
  std::array<uint8_t, 16> bytes{};

  static IpAddr V4(const uint8_t* p);
  static IpAddr V6(const uint8_t* p);
  std::string ToString() const;
  bool operator==(const IpAddr& o) const { return family == o.family && bytes == o.bytes; }
  bool operator!=(const IpAddr& o) const { return !(*this == o); }
  bool operator<(const IpAddr& o) const {
    return family != o.family ? family < o.family : bytes < o.bytes;
  }
};

// "1.2.3.4:80" or "[2001:db8::1]:80".
std::string AddrPort(const IpAddr& addr, uint16_t port);

enum TcpFlag : uint8_t {
  kFin = 0x01,
  kSyn = 0x02,
  kRst = 0x04,
  kPsh = 0x08,
  kAck = 0x10,
  kUrg = 0x20,
  kEce = 0x40,
  kCwr = 0x80,
};

struct TcpOptions {
  bool has_mss = false;
  uint16_t mss = 0;
  bool has_wscale = false;
  uint8_t wscale = 0;
  bool sack_permitted = false;
  bool has_sack = false;  // SACK blocks present
  bool has_timestamps = false;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
  bool malformed = false;  // an option ran past the header; parsing stopped there
  uint8_t count = 0;       // options seen, NOP/EOL excluded
};

struct TcpHeader {
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  uint8_t header_len = 0;  // bytes, options included
  TcpOptions options;

  bool Has(uint8_t flag) const { return (flags & flag) != 0; }
};

struct UdpHeader {
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint16_t length = 0;  // UDP length field
};

// ICMP / ICMPv6, with the quoted original header of error messages.
struct IcmpHeader {
  uint8_t type = 0;
  uint8_t code = 0;
  // Error messages (unreachable, time exceeded, ...) quote the start of the
  // packet that caused them; these fields describe it when it was decodable.
  bool has_inner = false;
  IpAddr inner_src;
  IpAddr inner_dst;
  uint8_t inner_proto = 0;
  bool inner_has_ports = false;
  uint16_t inner_sport = 0;
  uint16_t inner_dport = 0;
  uint8_t inner_ttl = 0;
  uint16_t inner_ip_id = 0;
};

enum class Transport : uint8_t { kNone, kTcp, kUdp, kIcmp, kIcmp6, kOther };

struct Packet {
  int64_t ts_ns = 0;
  uint32_t wire_len = 0;  // original frame length (pcap_pkthdr.len)
  uint32_t cap_len = 0;   // captured bytes (pcap_pkthdr.caplen)

  bool has_vlan = false;
  uint16_t vlan_id = 0;

  uint8_t ip_version = 0;  // 4 or 6
  IpAddr src;
  IpAddr dst;
  uint8_t ttl = 0;             // IPv4 TTL or IPv6 hop limit
  uint16_t ip_id = 0;          // IPv4 identification (0 for IPv6)
  uint32_t frag_id = 0;        // IPv6 fragment header identification
  bool df = false;             // IPv4 don't-fragment bit
  bool fragment = false;       // MF set or offset != 0 (not reassembled)
  uint16_t frag_offset = 0;    // bytes
  uint8_t ip_options_len = 0;  // IPv4 options bytes
  uint8_t ext_headers = 0;     // IPv6 extension headers skipped
  uint8_t protocol = 0;        // transport protocol number (after extension headers)

  Transport transport = Transport::kNone;
  TcpHeader tcp;
  UdpHeader udp;
  IcmpHeader icmp;

  // Transport payload as captured (may be shorter than payload_wire_len when
  // the capture's snaplen cut the frame).
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;
  uint32_t payload_wire_len = 0;  // length the IP/transport headers declare
  bool truncated = false;         // snaplen cut the frame (payload incomplete)

  uint16_t SrcPort() const;
  uint16_t DstPort() const;
};

// Decodes one frame. cap_len bytes are readable at data; wire_len is the
// original length (>= cap_len; pass cap_len when unknown). Returns false with
// a short reason in *error on malformed or unsupported input; *out is then
// unspecified. Headers must be complete; only payload may be cut by snaplen,
// and only when wire_len > cap_len says so.
bool DecodePacket(int link_type, const uint8_t* data, size_t cap_len, size_t wire_len,
                  int64_t ts_ns, Packet* out, std::string* error);

// Decodes an IP packet (version from the first nibble). Same contract.
bool DecodeIp(const uint8_t* data, size_t cap_len, bool snaplen_cut, Packet* out,
              std::string* error);

}  // namespace capture
}  // namespace rasad

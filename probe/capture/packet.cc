#include "probe/capture/packet.h"

#include <arpa/inet.h>

#include <cstring>

namespace rasad {
namespace capture {
namespace {

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}
uint32_t Le32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[3]) << 24) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[1]) << 8) | static_cast<uint32_t>(p[0]);
}

bool Fail(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86DD;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88A8;

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmp6 = 58;

void ParseTcpOptions(const uint8_t* p, size_t len, TcpOptions* o) {
  size_t i = 0;
  while (i < len) {
    uint8_t kind = p[i];
    if (kind == 0) break;  // end of option list
    if (kind == 1) {       // NOP
      ++i;
      continue;
    }
    if (i + 1 >= len) {
      o->malformed = true;
      return;
    }
    uint8_t olen = p[i + 1];
    if (olen < 2 || olen > len - i) {
      o->malformed = true;
      return;
    }
    const uint8_t* v = p + i + 2;
    switch (kind) {
      case 2:
        if (olen == 4) {
          o->has_mss = true;
          o->mss = Be16(v);
        } else {
          o->malformed = true;
        }
        break;
      case 3:
        if (olen == 3) {
          o->has_wscale = true;
          o->wscale = v[0];
        } else {
          o->malformed = true;
        }
        break;
      case 4:
        o->sack_permitted = true;
        break;
      case 5:
        o->has_sack = true;
        break;
      case 8:
        if (olen == 10) {
          o->has_timestamps = true;
          o->ts_val = Be32(v);
          o->ts_ecr = Be32(v + 4);
        } else {
          o->malformed = true;
        }
        break;
      default:
        break;
    }
    if (o->count < 255) ++o->count;
    i += olen;
  }
}

// Reads the ports of a quoted transport header (the first 4 bytes of TCP/UDP).
void QuotedPorts(uint8_t proto, const uint8_t* p, size_t len, IcmpHeader* icmp) {
  if ((proto == kProtoTcp || proto == kProtoUdp) && len >= 4) {
    icmp->inner_has_ports = true;
    icmp->inner_sport = Be16(p);
    icmp->inner_dport = Be16(p + 2);
  }
}

bool IsIpv6ExtHeader(uint8_t nh) {
  return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60 || nh == 135 || nh == 139 ||
         nh == 140 || nh == 253 || nh == 254;
}

// Skips IPv6 extension headers starting at p (len bytes) with first next
// header *nh. On return *off is the offset of the upper-layer header and *nh
// its protocol. Fills fragment fields when a fragment header is seen. Returns
// false if a header runs past len or the chain is absurdly long.
bool SkipIpv6Ext(const uint8_t* p, size_t len, uint8_t* nh, size_t* off, Packet* pkt) {
  size_t o = 0;
  int n = 0;
  while (IsIpv6ExtHeader(*nh)) {
    if (++n > 16) return false;
    if (len - o < 8) return false;
    uint8_t next = p[o];
    size_t hlen;
    if (*nh == 44) {  // fragment header: fixed 8 bytes
      hlen = 8;
      uint16_t off_flags = Be16(p + o + 2);
      if (pkt) {
        pkt->frag_offset = static_cast<uint16_t>(off_flags & 0xFFF8);
        pkt->fragment = true;
        pkt->frag_id = Be32(p + o + 4);
      }
      if ((off_flags & 0xFFF8) != 0) {
        // Not the first fragment: no upper-layer header here.
        *nh = next;
        *off = o + hlen;
        if (pkt && pkt->ext_headers < 255) ++pkt->ext_headers;
        return true;
      }
    } else if (*nh == 51) {  // AH: length in 4-byte units minus 2
      hlen = (static_cast<size_t>(p[o + 1]) + 2) * 4;
    } else {
      hlen = (static_cast<size_t>(p[o + 1]) + 1) * 8;
    }
    if (hlen > len - o) return false;
    o += hlen;
    *nh = next;
    if (pkt && pkt->ext_headers < 255) ++pkt->ext_headers;
  }
  *off = o;
  return true;
}

// Decodes the IP header quoted inside an ICMP error. Best effort: failure
// leaves has_inner false without failing the outer packet.
void DecodeQuoted(const uint8_t* p, size_t len, IcmpHeader* icmp) {
  if (len < 1) return;
  uint8_t version = p[0] >> 4;
  if (version == 4) {
    if (len < 20) return;
    size_t ihl = static_cast<size_t>(p[0] & 0x0F) * 4;
    if (ihl < 20 || ihl > len) return;
    icmp->has_inner = true;
    icmp->inner_src = IpAddr::V4(p + 12);
    icmp->inner_dst = IpAddr::V4(p + 16);
    icmp->inner_proto = p[9];
    icmp->inner_ttl = p[8];
    icmp->inner_ip_id = Be16(p + 4);
    uint16_t frag = Be16(p + 6) & 0x1FFF;
    if (frag == 0) QuotedPorts(p[9], p + ihl, len - ihl, icmp);
  } else if (version == 6) {
    if (len < 40) return;
    icmp->has_inner = true;
    icmp->inner_src = IpAddr::V6(p + 8);
    icmp->inner_dst = IpAddr::V6(p + 24);
    icmp->inner_ttl = p[7];
    uint8_t nh = p[6];
    size_t off = 0;
    Packet scratch;
    if (!SkipIpv6Ext(p + 40, len - 40, &nh, &off, &scratch)) {
      icmp->inner_proto = 0;
      return;
    }
    icmp->inner_proto = nh;
    if (scratch.frag_offset == 0) QuotedPorts(nh, p + 40 + off, len - 40 - off, icmp);
  }
}

bool DecodeTransport(const uint8_t* p, size_t avail, size_t declared, bool snaplen_cut, Packet* pkt,
                     std::string* error) {
  // avail: captured bytes of the transport segment; declared: what IP says.
  switch (pkt->protocol) {
    case kProtoTcp: {
      if (avail < 20) return Fail(error, "truncated TCP header");
      TcpHeader& t = pkt->tcp;
      t.sport = Be16(p);
      t.dport = Be16(p + 2);
      t.seq = Be32(p + 4);
      t.ack = Be32(p + 8);
      t.header_len = static_cast<uint8_t>((p[12] >> 4) * 4);
      t.flags = p[13];
      t.window = Be16(p + 14);
      if (t.header_len < 20) return Fail(error, "bad TCP data offset");
      if (t.header_len > avail) return Fail(error, "truncated TCP options");
      if (t.header_len > declared && !pkt->fragment)
        return Fail(error, "TCP header longer than IP payload");
      ParseTcpOptions(p + 20, t.header_len - 20u, &t.options);
      pkt->transport = Transport::kTcp;
      pkt->payload = p + t.header_len;
      pkt->payload_len = avail - t.header_len;
      pkt->payload_wire_len =
          static_cast<uint32_t>(declared > t.header_len ? declared - t.header_len : 0);
      return true;
    }
    case kProtoUdp: {
      if (avail < 8) return Fail(error, "truncated UDP header");
      UdpHeader& u = pkt->udp;
      u.sport = Be16(p);
      u.dport = Be16(p + 2);
      u.length = Be16(p + 4);
      size_t ulen = u.length;
      if (ulen == 0 && declared > 65535) ulen = declared;  // IPv6 jumbogram
      if (ulen < 8) return Fail(error, "bad UDP length");
      if (ulen > declared && !pkt->fragment) return Fail(error, "UDP length exceeds IP payload");
      if (ulen > avail && !snaplen_cut) return Fail(error, "UDP length exceeds frame");
      pkt->transport = Transport::kUdp;
      pkt->payload = p + 8;
      pkt->payload_len = (ulen < avail ? ulen : avail) - 8;
      pkt->payload_wire_len = static_cast<uint32_t>(ulen - 8);
      return true;
    }
    case kProtoIcmp:
    case kProtoIcmp6: {
      if (avail < 8) return Fail(error, "truncated ICMP header");
      IcmpHeader& ic = pkt->icmp;
      ic.type = p[0];
      ic.code = p[1];
      pkt->transport = pkt->protocol == kProtoIcmp ? Transport::kIcmp : Transport::kIcmp6;
      bool quotes;
      if (pkt->protocol == kProtoIcmp) {
        // 3 unreachable, 4 source quench, 5 redirect, 11 time exceeded, 12 parameter problem
        quotes = ic.type == 3 || ic.type == 4 || ic.type == 5 || ic.type == 11 || ic.type == 12;
      } else {
        // 1 unreachable, 2 packet too big, 3 time exceeded, 4 parameter problem
        quotes = ic.type >= 1 && ic.type <= 4;
      }
      if (quotes) DecodeQuoted(p + 8, avail - 8, &ic);
      pkt->payload = p + 8;
      pkt->payload_len = avail - 8;
      pkt->payload_wire_len = static_cast<uint32_t>(declared > 8 ? declared - 8 : 0);
      return true;
    }
    default:
      pkt->transport = Transport::kOther;
      pkt->payload = p;
      pkt->payload_len = avail;
      pkt->payload_wire_len = static_cast<uint32_t>(declared);
      return true;
  }
}

bool DecodeIpv4(const uint8_t* p, size_t len, bool snaplen_cut, Packet* pkt, std::string* error) {
  if (len < 20) return Fail(error, "truncated IPv4 header");
  size_t ihl = static_cast<size_t>(p[0] & 0x0F) * 4;
  if (ihl < 20) return Fail(error, "bad IPv4 header length");
  if (ihl > len) return Fail(error, "truncated IPv4 options");
  size_t total = Be16(p + 2);
  if (total == 0) total = len;  // TSO/GSO on a capturing host writes 0
  if (total < ihl) return Fail(error, "IPv4 total length shorter than header");
  if (total > len) {
    if (!snaplen_cut) return Fail(error, "IPv4 total length exceeds frame");
    pkt->truncated = true;
  }
  pkt->ip_version = 4;
  pkt->ip_id = Be16(p + 4);
  uint16_t frag = Be16(p + 6);
  pkt->df = (frag & 0x4000) != 0;
  bool mf = (frag & 0x2000) != 0;
  pkt->frag_offset = static_cast<uint16_t>((frag & 0x1FFF) * 8);
  pkt->fragment = mf || pkt->frag_offset != 0;
  pkt->ttl = p[8];
  pkt->protocol = p[9];
  pkt->src = IpAddr::V4(p + 12);
  pkt->dst = IpAddr::V4(p + 16);
  pkt->ip_options_len = static_cast<uint8_t>(ihl - 20);
  size_t avail = (total < len ? total : len) - ihl;  // drops Ethernet padding
  size_t declared = total - ihl;
  if (pkt->frag_offset != 0) {
    // A later fragment: its bytes are the middle of a transport payload.
    pkt->transport = Transport::kNone;
    pkt->payload = p + ihl;
    pkt->payload_len = avail;
    pkt->payload_wire_len = static_cast<uint32_t>(declared);
    return true;
  }
  if (mf) snaplen_cut = true;  // first fragment: the rest of the datagram is elsewhere
  return DecodeTransport(p + ihl, avail, declared, snaplen_cut, pkt, error);
}

bool DecodeIpv6(const uint8_t* p, size_t len, bool snaplen_cut, Packet* pkt, std::string* error) {
  if (len < 40) return Fail(error, "truncated IPv6 header");
  size_t plen = Be16(p + 4);
  uint8_t nh = p[6];
  pkt->ip_version = 6;
  pkt->ttl = p[7];
  pkt->src = IpAddr::V6(p + 8);
  pkt->dst = IpAddr::V6(p + 24);
  size_t avail = len - 40;
  if (plen == 0 && nh == 0) plen = avail;  // jumbogram (RFC 2675): trust the frame
  if (plen > avail) {
    if (!snaplen_cut) return Fail(error, "IPv6 payload length exceeds frame");
    pkt->truncated = true;
  } else {
    avail = plen;  // drops link-layer padding
  }
  size_t off = 0;
  if (!SkipIpv6Ext(p + 40, avail, &nh, &off, pkt)) {
    return Fail(error, "truncated or malformed IPv6 extension header");
  }
  pkt->protocol = nh;
  if (off > plen) return Fail(error, "IPv6 extension headers exceed payload length");
  if (pkt->frag_offset != 0) {
    pkt->transport = Transport::kNone;
    pkt->payload = p + 40 + off;
    pkt->payload_len = avail - off;
    pkt->payload_wire_len = static_cast<uint32_t>(plen - off);
    return true;
  }
  if (nh == 59) {  // no next header
    pkt->transport = Transport::kNone;
    pkt->payload = p + 40 + off;
    pkt->payload_len = 0;
    return true;
  }
  size_t declared = plen - off;
  if (pkt->fragment) snaplen_cut = true;  // first fragment: the rest is elsewhere
  return DecodeTransport(p + 40 + off, avail - off, declared, snaplen_cut, pkt, error);
}

// Link-layer "protocol" of an address family in DLT_NULL/DLT_LOOP headers.
int FamilyToVersion(uint32_t af) {
  if (af == 2) return 4;
  // AF_INET6 differs per OS: 10 Linux, 24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS.
  if (af == 10 || af == 24 || af == 28 || af == 30) return 6;
  return 0;
}

}  // namespace

IpAddr IpAddr::V4(const uint8_t* p) {
  IpAddr a;
  a.family = 4;
  std::memcpy(a.bytes.data(), p, 4);
  return a;
}

IpAddr IpAddr::V6(const uint8_t* p) {
  IpAddr a;
  a.family = 6;
  std::memcpy(a.bytes.data(), p, 16);
  return a;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == 4) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf));
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  } else {
    return "?";
  }
  return buf;
}

std::string AddrPort(const IpAddr& addr, uint16_t port) {
  if (addr.family == 6) return "[" + addr.ToString() + "]:" + std::to_string(port);
  return addr.ToString() + ":" + std::to_string(port);
}

uint16_t Packet::SrcPort() const {
  if (transport == Transport::kTcp) return tcp.sport;
  if (transport == Transport::kUdp) return udp.sport;
  return 0;
}

uint16_t Packet::DstPort() const {
  if (transport == Transport::kTcp) return tcp.dport;
  if (transport == Transport::kUdp) return udp.dport;
  return 0;
}

bool IsSupportedLinkType(int t) {
  switch (t) {
    case kLinkNull:
    case kLinkEthernet:
    case kLinkRaw:
    case kLinkRawBsd:
    case kLinkRawFile:
    case kLinkLoop:
    case kLinkLinuxSll:
    case kLinkIpv4:
    case kLinkIpv6:
    case kLinkLinuxSll2:
      return true;
    default:
      return false;
  }
}

bool DecodeIp(const uint8_t* data, size_t len, bool snaplen_cut, Packet* out, std::string* error) {
  if (len < 1) return Fail(error, "empty IP packet");
  switch (data[0] >> 4) {
    case 4:
      return DecodeIpv4(data, len, snaplen_cut, out, error);
    case 6:
      return DecodeIpv6(data, len, snaplen_cut, out, error);
    default:
      return Fail(error, "not an IPv4 or IPv6 packet");
  }
}

bool DecodePacket(int link_type, const uint8_t* data, size_t cap_len, size_t wire_len,
                  int64_t ts_ns, Packet* out, std::string* error) {
  *out = Packet();
  out->ts_ns = ts_ns;
  out->cap_len = static_cast<uint32_t>(cap_len);
  out->wire_len = static_cast<uint32_t>(wire_len < cap_len ? cap_len : wire_len);
  if (data == nullptr && cap_len != 0) return Fail(error, "no data");
  bool cut = wire_len > cap_len;
  uint16_t ethertype = 0;
  size_t off = 0;
  switch (link_type) {
    case kLinkEthernet: {
      if (cap_len < 14) return Fail(error, "truncated Ethernet header");
      ethertype = Be16(data + 12);
      off = 14;
      // Up to two VLAN tags (802.1Q, or 802.1ad outer + 802.1Q inner).
      for (int tags = 0; tags < 2 && (ethertype == kEtherVlan || ethertype == kEtherQinQ); ++tags) {
        if (cap_len - off < 4) return Fail(error, "truncated VLAN tag");
        if (!out->has_vlan) {
          out->has_vlan = true;
          out->vlan_id = Be16(data + off) & 0x0FFF;
        }
        ethertype = Be16(data + off + 2);
        off += 4;
      }
      break;
    }
    case kLinkLinuxSll:
      if (cap_len < 16) return Fail(error, "truncated Linux cooked header");
      ethertype = Be16(data + 14);
      off = 16;
      break;
    case kLinkLinuxSll2:
      if (cap_len < 20) return Fail(error, "truncated Linux cooked v2 header");
      ethertype = Be16(data);
      off = 20;
      break;
    case kLinkNull:
    case kLinkLoop: {
      if (cap_len < 4) return Fail(error, "truncated loopback header");
      int v = 0;
      if (link_type == kLinkLoop) {
        v = FamilyToVersion(Be32(data));
      } else {
        // Host byte order of the writer: try both.
        v = FamilyToVersion(Le32(data));
        if (v == 0) v = FamilyToVersion(Be32(data));
      }
      if (v == 0) return Fail(error, "unsupported loopback address family");
      ethertype = v == 4 ? kEtherIpv4 : kEtherIpv6;
      off = 4;
      break;
    }
    case kLinkRaw:
    case kLinkRawBsd:
    case kLinkRawFile:
      return DecodeIp(data, cap_len, cut, out, error);
    case kLinkIpv4:
      if (cap_len < 1 || (data[0] >> 4) != 4) return Fail(error, "not an IPv4 packet");
      return DecodeIp(data, cap_len, cut, out, error);
    case kLinkIpv6:
      if (cap_len < 1 || (data[0] >> 4) != 6) return Fail(error, "not an IPv6 packet");
      return DecodeIp(data, cap_len, cut, out, error);
    default:
      return Fail(error, "unsupported link type");
  }
  if (ethertype != kEtherIpv4 && ethertype != kEtherIpv6) {
    return Fail(error, "not an IP frame");
  }
  if (!DecodeIp(data + off, cap_len - off, cut, out, error)) return false;
  if ((ethertype == kEtherIpv4) != (out->ip_version == 4)) {
    return Fail(error, "link-layer protocol does not match IP version");
  }
  return true;
}

}  // namespace capture
}  // namespace rasad

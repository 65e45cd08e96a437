#include "probe/capture/dns_message.h"

#include <arpa/inet.h>

namespace rasad {
namespace capture {
namespace {

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

bool Fail(std::string* error, const std::string& why) {
  if (error) *error = why;
  return false;
}

// Compression pointers followed per name. A legal name has at most 127
// labels, so more jumps than that can only be a loop or an attack.
constexpr int kMaxPointerHops = 64;
constexpr size_t kMaxNameLength = 255;  // wire length, RFC 1035 §3.1

char Lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

}  // namespace

bool ReadDnsName(const uint8_t* msg, size_t len, size_t* offset, std::string* name,
                 std::string* error) {
  name->clear();
  size_t pos = *offset;
  size_t end_of_name = 0;  // where the caller continues (after the first pointer)
  bool jumped = false;
  int hops = 0;
  size_t wire_len = 1;  // the final zero byte
  while (true) {
    if (pos >= len) return Fail(error, "name runs past message");
    uint8_t b = msg[pos];
    if ((b & 0xC0) == 0xC0) {
      if (pos + 1 >= len) return Fail(error, "truncated compression pointer");
      size_t target = (static_cast<size_t>(b & 0x3F) << 8) | msg[pos + 1];
      // Pointers must point strictly backwards (to an earlier name), which
      // rules out loops; the hop limit bounds the work regardless.
      if (target >= pos) return Fail(error, "forward or self compression pointer");
      if (++hops > kMaxPointerHops) return Fail(error, "too many compression pointers");
      if (!jumped) {
        end_of_name = pos + 2;
        jumped = true;
      }
      pos = target;
      continue;
    }
    if ((b & 0xC0) != 0) return Fail(error, "unsupported label type");
    if (b == 0) {
      ++pos;
      break;
    }
    size_t label = b;
    if (pos + 1 + label > len) return Fail(error, "label runs past message");
    wire_len += label + 1;
    if (wire_len > kMaxNameLength) return Fail(error, "name longer than 255 bytes");
    if (!name->empty()) name->push_back('.');
    for (size_t i = 0; i < label; ++i) {
      uint8_t c = msg[pos + 1 + i];
      if (c == '.' || c < 0x21 || c > 0x7E) {
        // Keep the text unambiguous: escape dots, spaces and binary bytes.
        static const char kHex[] = "0123456789abcdef";
        name->push_back('\\');
        name->push_back('x');
        name->push_back(kHex[c >> 4]);
        name->push_back(kHex[c & 0x0F]);
      } else {
        name->push_back(Lower(c));
      }
    }
    pos += 1 + label;
  }
  *offset = jumped ? end_of_name : pos;
  return true;
}

bool ParseDnsMessage(const uint8_t* data, size_t len, DnsMessage* out, std::string* error) {
  *out = DnsMessage();
  if (data == nullptr || len < 12) return Fail(error, "shorter than a DNS header");
  out->id = Be16(data);
  out->flags = Be16(data + 2);
  out->qr = (out->flags & 0x8000) != 0;
  out->opcode = static_cast<uint8_t>((out->flags >> 11) & 0x0F);
  out->aa = (out->flags & 0x0400) != 0;
  out->tc = (out->flags & 0x0200) != 0;
  out->rd = (out->flags & 0x0100) != 0;
  out->ra = (out->flags & 0x0080) != 0;
  out->rcode = static_cast<uint8_t>(out->flags & 0x000F);
  out->qdcount = Be16(data + 4);
  out->ancount = Be16(data + 6);
  out->nscount = Be16(data + 8);
  out->arcount = Be16(data + 10);
  // Each question takes at least 5 bytes and each record 11: reject counts
  // the message cannot hold before reserving anything.
  if (out->qdcount * size_t{5} + out->ancount * size_t{11} > len - 12) {
    return Fail(error, "section counts exceed message length");
  }
  size_t off = 12;
  std::string err;
  for (uint16_t i = 0; i < out->qdcount; ++i) {
    DnsQuestion q;
    if (!ReadDnsName(data, len, &off, &q.name, &err)) return Fail(error, "question: " + err);
    if (len - off < 4) return Fail(error, "truncated question");
    q.type = Be16(data + off);
    q.klass = Be16(data + off + 2);
    off += 4;
    out->questions.push_back(std::move(q));
  }
  for (uint16_t i = 0; i < out->ancount; ++i) {
    DnsRecord r;
    if (!ReadDnsName(data, len, &off, &r.name, &err)) return Fail(error, "answer: " + err);
    if (len - off < 10) return Fail(error, "truncated answer");
    r.type = Be16(data + off);
    r.klass = Be16(data + off + 2);
    r.ttl = Be32(data + off + 4);
    r.rdlength = Be16(data + off + 8);
    off += 10;
    if (r.rdlength > len - off) return Fail(error, "answer data runs past message");
    const uint8_t* rd = data + off;
    if (r.type == kDnsA) {
      if (r.rdlength != 4) return Fail(error, "A record with length != 4");
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, rd, buf, sizeof(buf));
      r.data = buf;
    } else if (r.type == kDnsAaaa) {
      if (r.rdlength != 16) return Fail(error, "AAAA record with length != 16");
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, rd, buf, sizeof(buf));
      r.data = buf;
    } else if (r.type == kDnsCname) {
      size_t name_off = off;
      // The target may use pointers into the rest of the message, but its
      // own bytes must stay inside the record.
      if (!ReadDnsName(data, off + r.rdlength, &name_off, &r.data, &err)) {
        return Fail(error, "CNAME: " + err);
      }
      if (name_off != off + r.rdlength) return Fail(error, "CNAME length mismatch");
    }
    off += r.rdlength;
    out->answers.push_back(std::move(r));
  }
  // Authority and additional sections are not needed by the detectors.
  return true;
}

size_t SplitDnsTcp(const uint8_t* data, size_t len, std::vector<DnsTcpChunk>* messages) {
  size_t off = 0;
  while (len - off >= 2) {
    size_t mlen = Be16(data + off);
    if (mlen > len - off - 2) break;
    messages->push_back({data + off + 2, mlen});
    off += 2 + mlen;
  }
  return off;
}

std::string DnsTypeName(uint16_t type) {
  switch (type) {
    case kDnsA:
      return "A";
    case kDnsNs:
      return "NS";
    case kDnsCname:
      return "CNAME";
    case kDnsSoa:
      return "SOA";
    case kDnsPtr:
      return "PTR";
    case kDnsMx:
      return "MX";
    case kDnsTxt:
      return "TXT";
    case kDnsAaaa:
      return "AAAA";
    case kDnsOpt:
      return "OPT";
    default:
      return "TYPE" + std::to_string(type);
  }
}

}  // namespace capture
}  // namespace rasad

// DNS message parsing for captured packets (RFC 1035 wire format).
//
// Parses the header, the question section and the answer section (A, AAAA
// and CNAME decoded; other types kept with their type and TTL). Names are
// decompressed with a hop limit and backward-only pointers, so forged
// messages cannot loop or read outside the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rasad {
namespace capture {

enum DnsType : uint16_t {
  kDnsA = 1,
  kDnsNs = 2,
  kDnsCname = 5,
  kDnsSoa = 6,
  kDnsPtr = 12,
  kDnsMx = 15,
  kDnsTxt = 16,
  kDnsAaaa = 28,
  kDnsOpt = 41,
};

struct DnsQuestion {
  std::string name;  // lower case, no trailing dot ("" = root)
  uint16_t type = 0;
  uint16_t klass = 0;
};

struct DnsRecord {
  std::string name;  // lower case
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  // A/AAAA: the address as text; CNAME: the target name; other types: "".
  std::string data;
  uint16_t rdlength = 0;
};

struct DnsMessage {
  uint16_t id = 0;
  uint16_t flags = 0;  // raw flags word
  bool qr = false;     // response
  uint8_t opcode = 0;
  bool aa = false;
  bool tc = false;
  bool rd = false;
  bool ra = false;
  uint8_t rcode = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;
  std::vector<DnsQuestion> questions;
  std::vector<DnsRecord> answers;
};

// Parses one DNS message of len bytes. False with a reason in *error when it
// is malformed (counts larger than the message, bad names, short records).
bool ParseDnsMessage(const uint8_t* data, size_t len, DnsMessage* out, std::string* error);

// Reads a (possibly compressed) name at *offset; advances *offset past it.
// Exposed for tests.
bool ReadDnsName(const uint8_t* msg, size_t len, size_t* offset, std::string* name,
                 std::string* error);

// DNS over TCP: each message is prefixed by a 2-byte length. Splits data into
// complete messages (pointer/length pairs into data). Returns the number of
// bytes consumed; a trailing partial message is left unconsumed.
struct DnsTcpChunk {
  const uint8_t* data;
  size_t len;
};
size_t SplitDnsTcp(const uint8_t* data, size_t len, std::vector<DnsTcpChunk>* messages);

// "A", "AAAA", "CNAME" or "TYPE<n>".
std::string DnsTypeName(uint16_t type);

}  // namespace capture
}  // namespace rasad

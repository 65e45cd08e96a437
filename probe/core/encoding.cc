#include "probe/core/encoding.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace rasad {

std::string Base64Encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool Base64Decode(const std::string& in, std::string* out) {
  std::string s;
  s.reserve(in.size());
  for (char c : in)
    if (!isspace(static_cast<unsigned char>(c))) s += c;
  out->clear();
  if (s.empty()) return true;
  while (s.size() % 4) s += '=';
  std::string buf(s.size() / 4 * 3, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (s[s.size() - 1] == '=') ++pad;
  if (s[s.size() - 2] == '=') ++pad;
  buf.resize(static_cast<size_t>(n) - pad);
  *out = std::move(buf);
  return true;
}

std::string HtmlTitle(const std::string& body) {
  std::string lower(body);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(tolower(c)); });
  size_t open = lower.find("<title");
  if (open == std::string::npos) return "";
  open = lower.find('>', open);
  if (open == std::string::npos) return "";
  size_t close = lower.find("</title", open);
  if (close == std::string::npos) return "";
  std::string raw = body.substr(open + 1, close - open - 1), out;
  bool space = false;
  for (char c : raw) {
    if (isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out.substr(0, 256);
}

}  // namespace rasad

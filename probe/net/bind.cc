#include "probe/net/bind.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace rasad {

int BindToInterface(int fd, const std::string& interface) {
  if (interface.empty()) return 0;
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, interface.c_str(),
                 static_cast<socklen_t>(interface.size())) != 0)
    return errno;
  return 0;
}

namespace {
bool Format(const sockaddr_storage& ss, std::string* addr, int* port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    *port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    *port = ntohs(sin6->sin6_port);
  } else {
    return false;
  }
  *addr = buf;
  return true;
}
}  // namespace

bool SocketLocal(int fd, std::string* addr, int* port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  return Format(ss, addr, port);
}

bool SocketPeer(int fd, std::string* addr, int* port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  return Format(ss, addr, port);
}

bool IsIpLiteral(const std::string& text, bool* v6) {
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    if (v6) *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    if (v6) *v6 = true;
    return true;
  }
  return false;
}

bool SplitHostPort(const std::string& in, int default_port, std::string* addr, int* port) {
  *port = default_port;
  std::string host, port_text;
  if (!in.empty() && in[0] == '[') {
    size_t close = in.find(']');
    if (close == std::string::npos) return false;
    host = in.substr(1, close - 1);
    if (close + 1 < in.size()) {
      if (in[close + 1] != ':') return false;
      port_text = in.substr(close + 2);
    }
  } else if (std::count(in.begin(), in.end(), ':') == 1) {
    size_t colon = in.find(':');
    host = in.substr(0, colon);
    port_text = in.substr(colon + 1);
  } else {
    host = in;  // IPv4 without port, or bare IPv6
  }
  if (!IsIpLiteral(host)) return false;
  if (!port_text.empty()) {
    char* end = nullptr;
    long p = strtol(port_text.c_str(), &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) return false;
    *port = static_cast<int>(p);
  }
  *addr = host;
  return true;
}

std::string JoinHostPort(const std::string& addr, int port) {
  bool v6 = addr.find(':') != std::string::npos;
  return (v6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port);
}

}  // namespace rasad

// Pinning sockets to one operator's uplink. Fail closed: when the bind fails,
// the caller must abort the socket and report a probe error, never a network
// failure (a censored network and a missing modem must not look alike).
#pragma once

#include <string>

namespace rasad {

// SO_BINDTODEVICE fd to interface (no-op for ""). Returns 0 or an errno.
int BindToInterface(int fd, const std::string& interface);

// "ip:port" parts of a socket (getsockname/getpeername); false on error.
bool SocketLocal(int fd, std::string* addr, int* port);
bool SocketPeer(int fd, std::string* addr, int* port);

// Splits "1.2.3.4:53", "[2001:db8::1]:53", "1.2.3.4" or "2001:db8::1" into
// address and port (default_port when absent). False if malformed.
bool SplitHostPort(const std::string& in, int default_port, std::string* addr, int* port);
// Formats an address and port as "1.2.3.4:53" or "[2001:db8::1]:53".
std::string JoinHostPort(const std::string& addr, int port);
// True when text is an IPv4 or IPv6 literal; *v6 tells which.
bool IsIpLiteral(const std::string& text, bool* v6 = nullptr);

}  // namespace rasad

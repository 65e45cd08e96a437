// Bogon addresses: answers no public name should resolve to (private,
// loopback, documentation, multicast...). OONI's list (netxlite/bogon.go),
// including Iran's sinkhole range 10.10.34.0/24 (inside 10/8).
#pragma once

#include <string>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

struct Cidr {
  bool v6 = false;
  unsigned char addr[16] = {0};
  int bits = 0;
};

bool ParseCidr(const std::string& text, Cidr* out);
bool CidrContains(const Cidr& net, const std::string& ip);

class BogonList {
 public:
  BogonList();  // OONI's list
  // Ranges to treat as public although they are bogons (the lab's TEST-NET
  // hosts). Outside the lab this stays empty.
  Status SetPublicRanges(const std::vector<std::string>& cidrs);
  bool IsBogon(const std::string& ip) const;

 private:
  std::vector<Cidr> bogons_, public_;
};

}  // namespace rasad

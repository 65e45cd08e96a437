// Local servers for scripts/bench-engine: a DNS server answering every
// bench-N.test name with 127.0.0.1 and an HTTP server, both answering after a
// delay that stands in for a mobile network's round trip. Prints
// "dns=PORT http=PORT" and serves until stdin closes.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "tests/support/dns_server.h"
#include "tests/support/servers.h"

int main(int argc, char** argv) {
  using namespace rasad::testing;
  int endpoints = argc > 1 ? atoi(argv[1]) : 1000;
  int delay_ms = argc > 2 ? atoi(argv[2]) : 20;
  DnsServer dns;
  for (int i = 0; i < endpoints; ++i) {
    DnsRule r;
    r.a = {"127.0.0.1"};
    r.delay_ms = delay_ms / 2;
    dns.Set("bench-" + std::to_string(i) + ".test", r);
  }
  HttpResponse resp;
  resp.body = std::string(2048, 'x');
  resp.delay_ms = delay_ms;
  HttpServer http(resp);
  std::cout << "dns=" << dns.port() << " http=" << http.port() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  std::cerr << "bench_servers: served " << dns.queries() << " DNS queries, " << http.requests()
            << " HTTP requests\n";
  return 0;
}

// Targets: what to measure. A target is an app or site (e.g. "clubhouse")
// made of endpoints (e.g. its API host); each endpoint says which hosts and
// ports to try and how far to go: dns -> tcp -> tls -> http.
// File format: docs/TARGETS.md. Errors are reported as "file:line: message".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

// The steps of a measurement, in order. Running step N implies all before it.
enum class Step { kDns = 0, kTcp = 1, kTls = 2, kHttp = 3 };
const char* StepName(Step s);  // "dns", "tcp", "tls", "http"
bool ParseStep(std::string_view name, Step* out);

struct Endpoint {
  std::string name;                // unique within the target, e.g. "api"
  std::vector<std::string> hosts;  // hostnames or IP literals (v4 or v6)
  std::vector<uint16_t> ports;     // default: 443 when tls, else 80
  Step last_step = Step::kHttp;    // run dns..last_step
  bool tls = true;                 // TLS on the connection (tls/http steps)
  std::string sni;                 // SNI/Host override (useful for IP literals)
  std::string method = "GET";      // GET, HEAD or POST
  std::string path = "/";          // HTTP request path
  std::vector<int> expect_status;  // accepted HTTP statuses; empty = any response
  std::vector<std::string> expect_cert_names;  // names the leaf must cover; empty = the host
  int line = 0;                                // line of the [[endpoint]] table
};

struct Target {
  std::string name;     // file-unique id, e.g. "clubhouse"
  std::string title;    // human name, e.g. "Clubhouse"
  std::string version;  // stored with every observation
  std::string category;  // Citizen Lab category code, e.g. "COMM"
  bool control = false;  // a canary, not a measured app
  std::string control_kind;  // for controls: "ip_literal", "cdn" or "domestic"
  std::vector<Endpoint> endpoints;
  std::string file;  // where it was loaded from
};

// Parses one target file. On error returns Status::Invalid("file:line: msg").
Status LoadTargetFile(const std::string& path, Target* out);

// Loads every *.toml in the given files/directories (directories are read in
// name order). Target names must be unique across files.
Status LoadTargets(const std::vector<std::string>& paths, std::vector<Target>* out);

// Serialises a target back to the documented TOML format (used by importers).
std::string TargetToToml(const Target& t);

}  // namespace rasad

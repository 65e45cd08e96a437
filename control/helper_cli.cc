#include "control/helper_cli.h"

namespace rasad {

CLI::App* AddHelperCommand(CLI::App* app, HelperOptions* o) {
  auto* h = app->add_subcommand(
      "helper",
      "Run the control helper: an HTTP service for an uncensored server that measures a URL\n"
      "(DNS, TCP, TLS, HTTP) on request, speaking OONI's Web Connectivity test-helper protocol");
  h->add_option("-l,--listen", o->listen, "Address and port to listen on, e.g. 0.0.0.0:8080")
      ->capture_default_str();
  h->add_option("--resolver", o->th.resolvers,
                "DNS resolver ip[:port] (repeatable; default: /etc/resolv.conf nameservers)");
  h->add_option("--allow", o->th.allow_ranges,
                "CIDR the helper may connect to although it is private/bogon (repeatable;\n"
                "e.g. a lab's 203.0.113.0/24). Default: none");
  h->add_option("--ca-file", o->th.ca_file, "Extra trust anchors (PEM) for TLS validation");
  h->add_option("--max-in-flight", o->max_in_flight, "Concurrent measurements; beyond: HTTP 503")
      ->capture_default_str();
  h->add_option("--max-connections", o->max_connections, "Open client connections")
      ->capture_default_str();
  h->add_option("--max-body", o->limits.max_body_bytes, "Request body limit in bytes (413 beyond)")
      ->capture_default_str();
  h->add_option("--timeout-ms", o->th.total_timeout_ms, "Time budget of one measurement")
      ->capture_default_str();
  h->add_option("--body-cap", o->th.body_cap, "HTTP response bytes read per measurement")
      ->capture_default_str();
  h->add_flag("!--no-log", o->log_requests, "Do not log one line per request");
  h->footer(
      "Needs no privileges. Logs never contain client addresses or measured URLs.\n"
      "SIGTERM/SIGINT stop it (measurements in flight answer 'interrupted'). docs/HELPER.md");
  return h;
}

}  // namespace rasad

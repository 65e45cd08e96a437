// The probe's side of the control helper protocol: building the request and
// turning a helper's answer (rasad's or OONI's) into rasad Observations, so
// a control's results are stored in the same tables as the probe's own.
// Pure functions: no I/O (the probe's cycle does the POST).
#pragma once

#include <string>
#include <vector>

#include "control/th_protocol.h"
#include "probe/measure/observation.h"

namespace rasad {

// The request OONI's probe sends: the URL, the three request headers OONI
// forwards (Accept, Accept-Language, User-Agent) and the probe's endpoints.
// endpoints: "ip:port" ("[v6]:port"); non-literals are dropped, literals
// are written canonically, duplicates removed, order kept.
THRequest BuildThRequest(const std::string& url, const std::vector<std::string>& endpoints,
                         const std::string& user_agent = "");

// Observations for a helper's answer, each with details.source = "control":
//  - dns (unless the URL host is an IP literal): hostname = URL host,
//    query_type "ANY" (the helper merges A and AAAA), details.answers like
//    the probe's own dns rows ({"type","value"}), details.ip_info;
//  - tcp per tcp_connect entry and tls per tls_handshake entry (one
//    flow_uid per endpoint), remote_addr/remote_port from the key,
//    details.ip_flags from ip_info;
//  - http for the URL: details.status, headers_list, title, body_length,
//    url (failure: status and body_length omitted).
// Failures are current OONI strings: the helper's legacy DNS strings are
// mapped back (ThCurrentDnsFailure); the legacy http "dns_lookup_error"
// becomes the DNS row's failure when there is one. The helper's original
// string is kept as details.th_failure when it differs. Times are "now"
// (the helper reports none).
std::vector<Observation> ThResponseToObservations(const THResponse& resp, const std::string& url);

}  // namespace rasad

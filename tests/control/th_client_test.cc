// The probe's side: building requests and storing a helper's answer as
// observations with current OONI failure strings.
#include "control/th_client.h"

#include <gtest/gtest.h>

namespace rasad {
namespace {

std::vector<const Observation*> Steps(const std::vector<Observation>& obs, Step s) {
  std::vector<const Observation*> out;
  for (const Observation& o : obs)
    if (o.step == s) out.push_back(&o);
  return out;
}

TEST(ThClient, BuildRequest) {
  THRequest r =
      BuildThRequest("https://example.com/", {"93.184.216.34:443", "[2606:2800:0220::1]:443",
                                              "93.184.216.34:443", "example.com:443", "1.2.3.4"});
  EXPECT_EQ(r.http_request, "https://example.com/");
  EXPECT_EQ(r.tcp_connect,
            std::vector<std::string>({"93.184.216.34:443", "[2606:2800:220::1]:443"}));
  EXPECT_EQ(r.http_request_headers["Accept-Language"], std::vector<std::string>{"en-US,en;q=0.9"});
  EXPECT_EQ(r.http_request_headers.size(), 3u);
  EXPECT_FALSE(r.x_quic_enabled);
  // It is a valid request for our own parser.
  THRequest back;
  EXPECT_TRUE(ParseThRequest(DumpJson(ThRequestToJson(r)), ThLimits{}, &back).ok());
}

TEST(ThClient, SuccessfulControlBecomesObservations) {
  THResponse resp;
  ASSERT_TRUE(ParseThResponse(R"({
    "tcp_connect": {"52.35.36.75:443": {"status": true, "failure": null},
                    "[2600::1]:443": {"status": false, "failure": "network_unreachable"}},
    "tls_handshake": {"52.35.36.75:443": {"server_name": "largefile.com", "status": true, "failure": null}},
    "quic_handshake": {},
    "http_request": {"body_length": 1200, "discovered_h3_endpoint": "", "failure": null,
                     "title": "Large", "headers": {"Server": "nginx"}, "status_code": 200},
    "http3_request": null,
    "dns": {"failure": null, "addrs": ["52.35.36.75", "2600::1"]},
    "ip_info": {"52.35.36.75": {"asn": 16509, "flags": 11}, "2600::1": {"asn": 0, "flags": 2}}})",
                              &resp)
                  .ok());
  std::vector<Observation> obs = ThResponseToObservations(resp, "https://largefile.com/");
  for (const Observation& o : obs) {
    EXPECT_EQ(o.details["source"], "control");
    EXPECT_FALSE(o.uid.empty());
    EXPECT_GT(o.t_start, 0);
  }
  auto dns = Steps(obs, Step::kDns);
  ASSERT_EQ(dns.size(), 1u);
  EXPECT_FALSE(dns[0]->failure);
  EXPECT_EQ(dns[0]->hostname, "largefile.com");
  EXPECT_EQ(dns[0]->details["answers"][1]["type"], "AAAA");
  EXPECT_EQ(dns[0]->details["answers"][0]["value"], "52.35.36.75");
  EXPECT_EQ(dns[0]->details["ip_info"]["52.35.36.75"]["flags"], 11);

  auto tcp = Steps(obs, Step::kTcp);
  ASSERT_EQ(tcp.size(), 2u);
  const Observation* v4 = tcp[0]->remote_addr == "52.35.36.75" ? tcp[0] : tcp[1];
  const Observation* v6 = v4 == tcp[0] ? tcp[1] : tcp[0];
  EXPECT_FALSE(v4->failure);
  EXPECT_EQ(v4->remote_port, 443);
  EXPECT_EQ(v6->remote_addr, "2600::1");
  EXPECT_EQ(v6->failure, std::optional<std::string>("network_unreachable"));

  auto tls = Steps(obs, Step::kTls);
  ASSERT_EQ(tls.size(), 1u);
  EXPECT_FALSE(tls[0]->failure);
  EXPECT_EQ(tls[0]->hostname, "largefile.com");
  EXPECT_EQ(tls[0]->flow_uid, v4->flow_uid);  // same endpoint, same flow

  auto http = Steps(obs, Step::kHttp);
  ASSERT_EQ(http.size(), 1u);
  EXPECT_FALSE(http[0]->failure);
  EXPECT_EQ(http[0]->details["status"], 200);
  EXPECT_EQ(http[0]->details["title"], "Large");
  EXPECT_EQ(http[0]->details["body_length"], 1200);
  EXPECT_EQ(http[0]->details["headers_list"][0][0], "Server");
}

TEST(ThClient, LegacyFailuresMappedBack) {
  THResponse resp;
  ASSERT_TRUE(ParseThResponse(R"({"tcp_connect":{},"quic_handshake":{},"http_request":{
      "body_length":-1,"discovered_h3_endpoint":"","failure":"dns_lookup_error","title":"",
      "headers":{},"status_code":-1},"http3_request":null,
      "dns":{"failure":"dns_name_error","addrs":[]}})",
                              &resp)
                  .ok());
  std::vector<Observation> obs = ThResponseToObservations(resp, "https://nx.example/");
  auto dns = Steps(obs, Step::kDns);
  ASSERT_EQ(dns.size(), 1u);
  EXPECT_EQ(dns[0]->failure, std::optional<std::string>("dns_nxdomain_error"));
  EXPECT_EQ(dns[0]->details["th_failure"], "dns_name_error");
  auto http = Steps(obs, Step::kHttp);
  ASSERT_EQ(http.size(), 1u);
  EXPECT_EQ(http[0]->failure, std::optional<std::string>("dns_nxdomain_error"));
  EXPECT_EQ(http[0]->details["th_failure"], "dns_lookup_error");
  EXPECT_FALSE(http[0]->details.contains("status"));
  EXPECT_TRUE(Steps(obs, Step::kTcp).empty());

  // No answer: null failure with no addresses.
  resp = THResponse();
  resp.http_request.failure = "dns_lookup_error";
  obs = ThResponseToObservations(resp, "http://empty.example/");
  EXPECT_EQ(Steps(obs, Step::kDns)[0]->failure, std::optional<std::string>("dns_no_answer"));
  resp.dns.failure = "dns_server_failure";
  obs = ThResponseToObservations(resp, "http://empty.example/");
  EXPECT_EQ(Steps(obs, Step::kDns)[0]->failure,
            std::optional<std::string>("dns_server_misbehaving"));
}

TEST(ThClient, IpLiteralUrlHasNoDnsObservation) {
  THResponse resp;
  resp.dns.addrs = {"93.184.216.34"};
  resp.tcp_connect["93.184.216.34:80"] = {true, std::nullopt};
  resp.http_request.status_code = 200;
  resp.http_request.body_length = 10;
  resp.http_request.failure = std::nullopt;
  std::vector<Observation> obs = ThResponseToObservations(resp, "http://93.184.216.34/");
  EXPECT_TRUE(Steps(obs, Step::kDns).empty());
  EXPECT_EQ(Steps(obs, Step::kTcp).size(), 1u);
  EXPECT_FALSE(Steps(obs, Step::kHttp)[0]->failure);
}

}  // namespace
}  // namespace rasad

#include "interop/ooni_export.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <time.h>

#include <map>

#include "analysis/analyzer.h"
#include "analysis/classifier.h"

namespace rasad {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

namespace {

std::string B64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n > 0 ? n : 0));
  return out;
}

std::string UnB64(const std::string& s) {
  std::string out(3 * (s.size() / 4) + 3, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return "";
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding bytes as zeros.
  if (!s.empty() && s.back() == '=') --len;
  if (s.size() > 1 && s[s.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 4;
    if (n == 4 || i + n >= s.size() + (n == 0 ? 1 : 0)) return false;
    for (size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

std::string OoniTime(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &t);
  return buf;
}

std::string HostPort(const std::string& ip, int port) {
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

json Failure(const Observation& o) {
  if (o.failure) return *o.failure;
  if (!o.probe_error.empty()) return "unknown_failure: " + o.probe_error;
  return nullptr;
}

template <typename T>
T Get(const json& d, const char* k, T def) {
  if (!d.is_object()) return def;
  auto it = d.find(k);
  if (it == d.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (...) {
    return def;
  }
}

std::string Uuid4From(const std::string& uid) {
  // A stable UUID-shaped id from the measurement uid (32 hex digits).
  std::string h = uid;
  h.resize(32, '0');
  h[12] = '4';
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

}  // namespace

ojson MeasurementToOoni(const Measurement& m, const CycleNetwork* net, const Verdict* verdict,
                        int64_t cycle_started_at, const std::string& probe_cc) {
  int64_t start = m.t_start - ((m.t_start % 1000000) + 1000000) % 1000000;  // whole seconds
  auto rel = [&](int64_t t) { return static_cast<double>(t - start) / 1e6; };
  std::map<std::string, int> txids;
  auto txid = [&](const Observation& o) {
    std::string k = o.flow_uid.empty() ? o.uid : o.flow_uid;
    auto it = txids.find(k);
    if (it == txids.end()) it = txids.emplace(k, static_cast<int>(txids.size()) + 1).first;
    return it->second;
  };

  ojson queries = ojson::array(), tcp = ojson::array(), tls = ojson::array(),
        requests = ojson::array();
  std::string url, first_host, tls_host;
  int tls_port = 0;
  for (const Observation& o : m.observations) {
    const json& d = o.details;
    if (first_host.empty() && !o.hostname.empty()) first_host = o.hostname;
    switch (o.step) {
      case Step::kDns: {
        ojson answers = ojson::array();
        if (d.is_object() && d.contains("answers") && d["answers"].is_array())
          for (const json& a : d["answers"]) {
            std::string type = Get<std::string>(a, "type", "A");
            ojson ans;
            ans["answer_type"] = type;
            ans[type == "AAAA" ? "ipv6" : "ipv4"] = Get<std::string>(a, "value", "");
            ans["ttl"] = Get<int64_t>(a, "ttl", 0);
            ans["asn"] = 0;
            ans["as_org_name"] = "";
            answers.push_back(ans);
          }
        ojson q;
        q["answers"] = answers.empty() ? ojson(nullptr) : answers;
        q["engine"] = o.transport.empty() ? "udp" : o.transport;
        q["failure"] = Failure(o);
        q["hostname"] = o.hostname;
        q["query_type"] = o.query_type.empty() ? "A" : o.query_type;
        if (!o.raw.empty()) q["raw_response"] = B64(o.raw);
        int rcode = Get<int>(d, "rcode", -1);
        if (rcode >= 0) q["rcode"] = rcode;
        q["resolver_address"] = o.resolver;
        q["t0"] = rel(o.t_start);
        q["t"] = rel(o.t_end);
        q["tags"] = ojson::array();
        q["transaction_id"] = txid(o);
        queries.push_back(q);
        break;
      }
      case Step::kTcp: {
        ojson e;
        e["ip"] = o.remote_addr;
        e["port"] = o.remote_port;
        e["status"] = {{"blocked", nullptr}, {"failure", Failure(o)}, {"success", !o.failure}};
        e["t0"] = rel(o.t_start);
        e["t"] = rel(o.t_end);
        e["tags"] = ojson::array();
        e["transaction_id"] = txid(o);
        tcp.push_back(e);
        break;
      }
      case Step::kTls: {
        ojson e;
        e["network"] = "tcp";
        e["address"] = HostPort(o.remote_addr, o.remote_port);
        e["cipher_suite"] = Get<std::string>(d, "cipher", "");
        e["failure"] = Failure(o);
        e["negotiated_protocol"] = Get<std::string>(d, "alpn", "");
        e["no_tls_verify"] = false;
        ojson certs = ojson::array();
        if (d.is_object() && d.contains("chain") && d["chain"].is_array())
          for (const json& c : d["chain"]) {
            std::string der = Get<std::string>(c, "der_b64", "");
            if (!der.empty()) certs.push_back({{"format", "base64"}, {"data", der}});
          }
        e["peer_certificates"] = certs.empty() ? ojson(nullptr) : certs;
        std::string sni = Get<std::string>(d, "sni", o.hostname);
        e["server_name"] = sni;
        e["t0"] = rel(o.t_start);
        e["t"] = rel(o.t_end);
        e["tags"] = ojson::array();
        e["tls_version"] = Get<std::string>(d, "version", "");
        e["transaction_id"] = txid(o);
        tls.push_back(e);
        if (tls_host.empty()) {
          tls_host = sni;
          tls_port = o.remote_port;
        }
        break;
      }
      case Step::kHttp: {
        std::string u = Get<std::string>(d, "url", "");
        if (url.empty()) url = u;
        ojson headers = ojson::object(), headers_list = ojson::array();
        if (d.is_object() && d.contains("headers_list") && d["headers_list"].is_array())
          for (const json& h : d["headers_list"]) {
            if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) continue;
            headers_list.push_back({h[0], h[1]});
            if (!headers.contains(h[0].get<std::string>())) headers[h[0].get<std::string>()] = h[1];
          }
        std::string body = UnB64(Get<std::string>(d, "body_prefix_b64", ""));
        int64_t body_len = Get<int64_t>(d, "body_length", 0);
        ojson req;
        req["network"] = "tcp";
        req["address"] = HostPort(o.remote_addr, o.remote_port);
        req["alpn"] = Get<std::string>(d, "http_version", "") == "2" ? "h2" : "http/1.1";
        req["failure"] = Failure(o);
        req["request"] = {
            {"body", ""},
            {"body_is_truncated", false},
            {"headers", ojson::object()},
            {"headers_list", ojson::array()},
            {"method", Get<std::string>(d, "method", "GET")},
            {"tor", {{"exit_ip", nullptr}, {"exit_name", nullptr}, {"is_tor", false}}},
            {"x_transport", "tcp"},
            {"url", u}};
        ojson resp;
        int status = Get<int>(d, "status", 0);
        resp["body"] =
            ValidUtf8(body) ? ojson(body) : ojson{{"format", "base64"}, {"data", B64(body)}};
        resp["body_is_truncated"] =
            Get<bool>(d, "body_truncated", false) || body_len > static_cast<int64_t>(body.size());
        resp["code"] = status;
        resp["headers"] = headers;
        resp["headers_list"] = headers_list;
        req["response"] = status ? resp : ojson(nullptr);
        req["t0"] = rel(o.t_start);
        req["t"] = rel(o.t_end);
        req["tags"] = ojson::array();
        req["transaction_id"] = txid(o);
        requests.insert(requests.begin(), req);  // newest first
        break;
      }
    }
  }

  bool web = !url.empty();
  std::string input;
  if (web) {
    input = url;
  } else if (!tls_host.empty()) {
    input = "tlshandshake://" + tls_host + ":" + std::to_string(tls_port);
  } else if (!tcp.empty()) {
    input = "tcpconnect://" + (first_host.empty() ? tcp[0]["ip"].get<std::string>() : first_host) +
            ":" + std::to_string(tcp[0]["port"].get<int>());
  } else if (!first_host.empty()) {
    input = "dnslookup://" + first_host;
  }

  ojson tk;
  tk["queries"] = queries;
  tk["tcp_connect"] = tcp;
  tk["tls_handshakes"] = tls;
  tk["requests"] = requests;
  tk["failure"] = m.failure ? ojson(*m.failure)
                            : (m.probe_error.empty() ? ojson(nullptr)
                                                     : ojson("unknown_failure: " + m.probe_error));
  if (verdict) {
    tk["blocking"] = verdict->ooni_blocking.is_null() ? ojson(nullptr)
                                                      : ojson::parse(verdict->ooni_blocking.dump());
    tk["accessible"] = verdict->ooni_accessible.is_null()
                           ? ojson(nullptr)
                           : ojson(verdict->ooni_accessible.get<bool>());
    tk["x_rasad_verdict"] = verdict->verdict;
    tk["x_rasad_confidence"] =
        verdict->confidence.empty() ? ojson(nullptr) : ojson(verdict->confidence);
    tk["x_rasad_rule"] = verdict->rule;
  } else {
    tk["blocking"] = nullptr;
    tk["accessible"] = nullptr;
  }

  int asn = net ? net->config.asn : 0;
  ojson j;
  j["annotations"] = {
      {"architecture", "amd64"},         {"engine_name", "rasad"},
      {"engine_version", RASAD_VERSION}, {"platform", "linux"},
      {"rasad_network", m.network},      {"rasad_target", m.target},
      {"rasad_endpoint", m.endpoint},    {"rasad_attempt", std::to_string(m.attempt)},
      {"rasad_measurement_uid", m.uid}};
  j["data_format_version"] = "0.2.0";
  j["extensions"] = {{"dnst", 0}, {"httpt", 0}, {"tcpconnect", 0}, {"tlshandshake", 0}};
  j["id"] = Uuid4From(m.uid);
  j["input"] = input.empty() ? ojson(nullptr) : ojson(input);
  j["measurement_start_time"] = OoniTime(start);
  j["options"] = ojson::array();
  j["probe_asn"] = "AS" + std::to_string(asn);
  j["probe_cc"] = probe_cc.empty() ? "ZZ" : probe_cc;
  j["probe_ip"] = "127.0.0.1";
  j["probe_network_name"] = net ? net->config.operator_label : "";
  // OONI report ids: <time>_<test>_<cc>_<asn>_n1_<random>; ours end in the cycle uid.
  std::string rt = OoniTime(cycle_started_at ? cycle_started_at : start);
  std::string compact;
  for (char c : rt)
    if (isdigit(static_cast<unsigned char>(c))) compact += c;
  compact = compact.substr(0, 8) + "T" + compact.substr(8) + "Z";
  j["report_id"] = compact + "_" + std::string(web ? "webconnectivity" : "urlgetter") + "_" +
                   j["probe_cc"].get<std::string>() + "_" + std::to_string(asn) + "_n1_" +
                   m.cycle_uid;
  j["resolver_asn"] = "AS0";
  j["resolver_ip"] = "127.0.0.1";
  j["resolver_network_name"] = "";
  j["software_name"] = "rasad";
  j["software_version"] = RASAD_VERSION;
  j["test_helpers"] = ojson::object();
  j["test_keys"] = tk;
  j["test_name"] = web ? "web_connectivity" : "urlgetter";
  j["test_runtime"] = static_cast<double>(m.t_end - m.t_start) / 1e6;
  j["test_start_time"] = OoniTime(cycle_started_at ? cycle_started_at : start);
  j["test_version"] = web ? "0.4.3" : "0.2.0";
  return j;
}

Status ExportOoni(const Store& store, const OoniExportOptions& o,
                  const std::function<void(const std::string&)>& line, int64_t* count) {
  *count = 0;
  sqlite3* db = store.handle();
  sqlite3_stmt* q = nullptr;
  // Cycles that may hold measurements of the period (a cycle lasts minutes).
  const char* sql =
      "SELECT uid, started_at FROM cycles WHERE started_at < ?2 AND coalesce(finished_at, "
      "started_at + 86400000000) >= ?1 ORDER BY started_at, uid";
  if (sqlite3_prepare_v2(db, sql, -1, &q, nullptr) != SQLITE_OK)
    return Status::IoError(std::string("export ooni: ") + sqlite3_errmsg(db));
  sqlite3_bind_int64(q, 1, o.since ? o.since : INT64_MIN);
  sqlite3_bind_int64(q, 2, o.until ? o.until : INT64_MAX);
  std::vector<std::pair<std::string, int64_t>> cycles;
  while (sqlite3_step(q) == SQLITE_ROW)
    cycles.push_back(
        {reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), sqlite3_column_int64(q, 1)});
  sqlite3_finalize(q);

  bool have_verdicts = store.SchemaVersion() >= 3;
  for (const auto& [uid, started] : cycles) {
    std::vector<Measurement> ms;
    Status st = store.LoadMeasurements(uid, &ms);
    if (!st.ok()) return st;
    std::vector<CycleNetwork> nets;
    st = store.LoadNetworks(uid, &nets);
    if (!st.ok()) return st;
    std::vector<Verdict> vs;
    if (have_verdicts) {
      st = LoadVerdicts(store, uid, &vs);
      if (!st.ok()) return st;
    }
    std::map<std::string, const CycleNetwork*> net_by;
    for (const CycleNetwork& n : nets) net_by[n.config.name] = &n;
    std::map<std::tuple<std::string, std::string, std::string>, const Verdict*> v_by;
    for (const Verdict& v : vs) v_by[{v.network, v.target, v.endpoint}] = &v;
    std::stable_sort(ms.begin(), ms.end(), [](const Measurement& a, const Measurement& b) {
      return a.t_start < b.t_start;
    });
    for (const Measurement& m : ms) {
      if (IsControlNetwork(m.network)) continue;
      if (o.since && m.t_start < o.since) continue;
      if (o.until && m.t_start >= o.until) continue;
      if (!o.target.empty() && m.target != o.target) continue;
      if (!o.network.empty() && m.network != o.network) continue;
      auto n = net_by.find(m.network);
      auto v = v_by.find({m.network, m.target, m.endpoint});
      ojson j = MeasurementToOoni(m, n == net_by.end() ? nullptr : n->second,
                                  v == v_by.end() ? nullptr : v->second, started, o.probe_cc);
      line(j.dump(-1, ' ', false, ojson::error_handler_t::replace));
      ++*count;
    }
  }
  return Status::Ok();
}

}  // namespace rasad

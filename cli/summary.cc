#include "cli/summary.h"

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>

#include "probe/core/clock.h"

namespace rasad {

namespace {

std::string StepOrDash(const std::optional<Step>& s) { return s ? StepName(*s) : "-"; }

// What a reader wants next to the failure: the DNS answer or HTTP status.
std::string Detail(const Measurement& m) {
  std::string answer, status;
  for (const Observation& o : m.observations) {
    if (o.step == Step::kDns && answer.empty() && o.details.contains("answers") &&
        !o.details["answers"].empty())
      answer = o.details["answers"][0].value("value", "");
    if (o.step == Step::kHttp && status.empty() && o.details.contains("status"))
      status = "HTTP " + std::to_string(o.details["status"].get<long>());
  }
  if (!m.probe_error.empty()) return "probe error: " + m.probe_error;
  std::string out = answer;
  if (!status.empty()) out += (out.empty() ? "" : ", ") + status;
  return out;
}

const Verdict* FindVerdict(const std::vector<Verdict>& vs, const Measurement& m) {
  for (const Verdict& v : vs)
    if (v.network == m.network && v.target == m.target && v.endpoint == m.endpoint) return &v;
  return nullptr;
}

std::string VerdictText(const Verdict* v) {
  if (!v) return "-";
  return v->confidence.empty() ? v->verdict : v->verdict + " (" + v->confidence + ")";
}

// The last attempt of each endpoint (retries replace earlier attempts in the table).
std::vector<const Measurement*> Sorted(const CycleReport& r, const std::string& network) {
  std::map<std::pair<std::string, std::string>, const Measurement*> last;
  for (const Measurement& m : r.measurements) {
    if (m.network != network) continue;
    const Measurement*& slot = last[{m.target, m.endpoint}];
    if (!slot || m.attempt >= slot->attempt) slot = &m;
  }
  std::vector<const Measurement*> v;
  for (auto& [k, m] : last) v.push_back(m);
  std::sort(v.begin(), v.end(), [](const Measurement* a, const Measurement* b) {
    return std::tie(a->control, a->target, a->endpoint) <
           std::tie(b->control, b->target, b->endpoint);
  });
  return v;
}

}  // namespace

void PrintCycleTable(const CycleReport& report, const std::vector<Verdict>& verdicts,
                     std::ostream& out) {
  out << "cycle " << report.uid << " " << report.status << " ("
      << (report.finished_at - report.started_at) / 1000 << " ms, ~" << report.bytes_sent
      << " bytes sent, ~" << report.bytes_received << " received)\n";
  for (const NetworkRuntime& net : report.networks) {
    out << "\nnetwork " << net.config.name;
    if (!net.config.operator_label.empty()) out << " (" << net.config.operator_label << ")";
    if (net.config.asn) out << " AS" << net.config.asn;
    out << " interface " << (net.config.interface.empty() ? "default route" : net.config.interface);
    out << "\n";
    if (!net.probe_error.empty()) {
      out << "  not measured: " << net.probe_error << "\n";
      continue;
    }
    out << "  " << std::left << std::setw(24) << "TARGET" << std::setw(14) << "ENDPOINT"
        << std::setw(8) << "REACHED" << std::setw(7) << "FAILED" << std::setw(26) << "FAILURE";
    if (!verdicts.empty()) out << std::setw(30) << "VERDICT";
    out << "DETAIL\n";
    for (const Measurement* m : Sorted(report, net.config.name)) {
      std::string target = m->target + (m->control ? " (ctl)" : "");
      out << "  " << std::left << std::setw(24) << target << std::setw(14) << m->endpoint
          << std::setw(8) << StepOrDash(m->furthest_step) << std::setw(7)
          << StepOrDash(m->failed_step) << std::setw(26) << m->failure.value_or("-");
      if (!verdicts.empty()) out << std::setw(30) << VerdictText(FindVerdict(verdicts, *m));
      out << Detail(*m) << (m->attempt > 0 ? " [retry " + std::to_string(m->attempt) + "]" : "")
          << "\n";
    }
  }
  if (!report.store_error.empty()) out << "\nstorage error: " << report.store_error << "\n";
}

nlohmann::json CycleSummaryJson(const CycleReport& report, const std::vector<Verdict>& verdicts) {
  using nlohmann::json;
  auto opt = [](const std::optional<std::string>& s) -> json { return s ? json(*s) : json(); };
  auto step = [](const std::optional<Step>& s) -> json { return s ? json(StepName(*s)) : json(); };
  json j;
  j["cycle_uid"] = report.uid;
  j["status"] = report.status;
  j["started_at"] = FormatUtc(report.started_at);
  j["finished_at"] = FormatUtc(report.finished_at);
  j["bytes_sent"] = report.bytes_sent;
  j["bytes_received"] = report.bytes_received;
  j["capture"] = report.capture;
  j["networks"] = json::array();
  for (const NetworkRuntime& net : report.networks) {
    json n;
    n["name"] = net.config.name;
    n["operator"] = net.config.operator_label;
    n["asn"] = net.config.asn;
    n["interface"] = net.config.interface;
    n["probe_error"] = net.probe_error;
    n["endpoints"] = json::array();
    for (const Measurement* m : Sorted(report, net.config.name)) {
      json e;
      e["target"] = m->target;
      e["endpoint"] = m->endpoint;
      e["control"] = m->control;
      e["measurement_uid"] = m->uid;
      e["furthest_step"] = step(m->furthest_step);
      e["failed_step"] = step(m->failed_step);
      e["failure"] = opt(m->failure);
      e["probe_error"] = m->probe_error;
      e["attempt"] = m->attempt;
      if (const Verdict* v = FindVerdict(verdicts, *m)) {
        e["verdict"] = v->verdict;
        e["confidence"] = v->confidence;
        e["rule"] = v->rule;
      }
      e["dns"] = json::array();
      std::map<std::string, json> flows;
      std::vector<std::string> order;
      e["findings"] = json::array();
      for (const Observation& o : m->observations) {
        if (o.details.contains("finding")) {
          e["findings"].push_back({{"step", StepName(o.step)},
                                   {"finding", o.details["finding"]},
                                   {"signals", o.details.value("signals", 0)},
                                   {"proven", o.details.value("proven", false)},
                                   {"evidence_pcap", o.details.value("evidence_pcap", "")}});
          continue;
        }
        if (o.step == Step::kDns) {
          json answers = json::array();
          for (const auto& a : o.details.value("answers", json::array()))
            answers.push_back(a.value("value", ""));
          e["dns"].push_back({{"hostname", o.hostname},
                              {"query_type", o.query_type},
                              {"resolver", o.resolver},
                              {"failure", opt(o.failure)},
                              {"rcode", o.details.value("rcode", -1)},
                              {"answers", answers}});
          continue;
        }
        if (!flows.count(o.flow_uid)) {
          order.push_back(o.flow_uid);
          flows[o.flow_uid] = {{"address", o.remote_addr},
                               {"port", o.remote_port},
                               {"hostname", o.hostname},
                               {"steps", json::array()},
                               {"http_status", nullptr}};
        }
        json& f = flows[o.flow_uid];
        f["steps"].push_back({{"step", StepName(o.step)}, {"failure", opt(o.failure)}});
        if (o.step == Step::kHttp && o.details.contains("status"))
          f["http_status"] = o.details["status"];
        if (o.step == Step::kTls && o.details.contains("chain") && !o.details["chain"].empty())
          f["tls_leaf_subject"] = o.details["chain"][0].value("subject", "");
      }
      e["flows"] = json::array();
      for (const auto& id : order) e["flows"].push_back(flows[id]);
      n["endpoints"].push_back(e);
    }
    j["networks"].push_back(n);
  }
  return j;
}

}  // namespace rasad

namespace rasad {

void PrintVerdictTable(const std::vector<Verdict>& verdicts, std::ostream& out) {
  std::string network;
  for (const Verdict& v : verdicts) {
    if (v.network != network) {
      network = v.network;
      out << "\nnetwork " << network << "\n  " << std::left << std::setw(24) << "TARGET"
          << std::setw(14) << "ENDPOINT" << std::setw(30) << "VERDICT"
          << "RULE\n";
    }
    out << "  " << std::left << std::setw(24) << v.target << std::setw(14) << v.endpoint
        << std::setw(30) << VerdictText(&v) << v.rule << "\n";
  }
  out << "\napps per network:\n";
  for (const AppRollup& r : RollupByApp(verdicts)) {
    out << "  " << std::left << std::setw(14) << r.network << std::setw(24) << r.target << r.status;
    if (r.status == "partial") {
      out << ":";
      for (const auto& [e, v] : r.endpoints) out << " " << e << "=" << v;
    }
    out << "\n";
  }
}

}  // namespace rasad

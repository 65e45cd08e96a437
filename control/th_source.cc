#include "control/th_source.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include "control/th_client.h"
#include "control/th_protocol.h"
#include "probe/core/clock.h"
#include "probe/measure/failure.h"

namespace rasad {

struct ThControlSource::Call {
  std::string url;
  Done done;
  size_t helper = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body, response;
  std::vector<std::string> errors;
  // DNS-over-HTTPS fallback: one A and one AAAA query.
  size_t doh = 0;
  int doh_pending = 0;
  std::vector<CURL*> doh_easy;
  std::vector<std::string> doh_bodies, doh_responses;
  std::vector<Observation> doh_obs;
  ~Call() {
    for (CURL* e : doh_easy) curl_easy_cleanup(e);
    if (easy) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }
};

namespace {
constexpr size_t kMaxResponse = 4 * 1024 * 1024;

size_t Collect(char* data, size_t size, size_t n, void* p) {
  auto* out = static_cast<std::string*>(p);
  if (out->size() + size * n > kMaxResponse) return 0;
  out->append(data, size * n);
  return size * n;
}
}  // namespace

ThControlSource::ThControlSource(EventLoop* loop, std::vector<std::string> helpers,
                                 std::string ca_file, int64_t timeout_ms,
                                 std::vector<std::string> doh_resolvers)
    : loop_(loop),
      helpers_(std::move(helpers)),
      doh_(std::move(doh_resolvers)),
      ca_file_(std::move(ca_file)),
      timeout_ms_(timeout_ms),
      multi_(loop) {}

ThControlSource::~ThControlSource() { CancelAll(); }

Status ThControlSource::Init() { return multi_.Init(); }

void ThControlSource::Request(const std::string& url, Done done) {
  auto call = std::make_unique<Call>();
  call->url = url;
  call->done = std::move(done);
  call->body = DumpJson(ThRequestToJson(BuildThRequest(url, {})));
  Call* raw = call.get();
  calls_.push_back(std::move(call));
  Try(raw);
}

void ThControlSource::Try(Call* call) {
  if (call->helper >= helpers_.size() && call->doh < doh_.size()) {
    TryDoh(call);
    return;
  }
  if (call->helper >= helpers_.size()) {
    std::string why;
    for (const std::string& e : call->errors) why += (why.empty() ? "" : "; ") + e;
    // Report from the loop, never from inside Request().
    loop_->AddTimer(0, [this, call, why] {
      Finish(call, {}, why.empty() ? "no control helper configured" : why);
    });
    return;
  }
  if (call->easy) curl_easy_cleanup(call->easy);
  call->response.clear();
  call->easy = curl_easy_init();
  CURL* h = call->easy;
  const std::string& helper = helpers_[call->helper];
  curl_easy_setopt(h, CURLOPT_URL, helper.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(call->body.size()));
  if (!call->headers) call->headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, call->headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "rasad/" RASAD_VERSION);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &call->response);
  if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
  Status st = multi_.Add(h, [this, call, helper](CURLcode rc) {
    long status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    std::string err;
    if (rc != CURLE_OK) {
      err = helper + ": " + curl_easy_strerror(rc);
    } else if (status != 200) {
      err = helper + ": HTTP " + std::to_string(status);
    } else {
      THResponse resp;
      Status ps = ParseThResponse(call->response, &resp);
      if (ps.ok()) {
        Finish(call, ThResponseToObservations(resp, call->url), "");
        return;
      }
      err = helper + ": " + ps.ToString();
    }
    call->errors.push_back(err);
    ++call->helper;
    Try(call);
  });
  if (!st.ok()) {
    call->errors.push_back(helper + ": " + st.ToString());
    ++call->helper;
    Try(call);
  }
}

namespace {
std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of(":/?", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}
}  // namespace

// RFC 8484: POST application/dns-message, one query per type, id 0.
void ThControlSource::TryDoh(Call* call) {
  const std::string resolver = doh_[call->doh];
  const std::string host = UrlHost(call->url);
  for (CURL* e : call->doh_easy) {
    multi_.Remove(e);
    curl_easy_cleanup(e);
  }
  call->doh_easy.clear();
  call->doh_obs.clear();
  call->doh_bodies.assign(2, "");
  call->doh_responses.assign(2, "");
  call->doh_pending = 2;
  const int types[2] = {ns_t_a, ns_t_aaaa};
  for (int i = 0; i < 2; ++i) {
    unsigned char* q = nullptr;
    int qlen = 0;
    if (ares_create_query(host.c_str(), ns_c_in, types[i], 0, 1, &q, &qlen, 0) != ARES_SUCCESS) {
      call->errors.push_back(resolver + ": cannot encode a query for " + host);
      ++call->doh;
      loop_->AddTimer(0, [this, call] { Try(call); });
      return;
    }
    call->doh_bodies[i].assign(reinterpret_cast<char*>(q), static_cast<size_t>(qlen));
    ares_free_string(q);
  }
  static curl_slist* kHeaders = [] {
    curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/dns-message");
    return curl_slist_append(h, "Accept: application/dns-message");
  }();
  int64_t t0 = WallMicros();
  for (int i = 0; i < 2; ++i) {
    CURL* h = curl_easy_init();
    call->doh_easy.push_back(h);
    curl_easy_setopt(h, CURLOPT_URL, resolver.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->doh_bodies[i].data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(call->doh_bodies[i].size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, kHeaders);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &call->doh_responses[i]);
    if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
    const int qtype = types[i];
    multi_.Add(h, [this, call, h, i, qtype, host, resolver, t0](CURLcode rc) {
      long status = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      Observation o;
      o.uid = NewUid();
      o.flow_uid = o.uid;
      o.step = Step::kDns;
      o.hostname = host;
      o.query_type = qtype == ns_t_a ? "A" : "AAAA";
      o.resolver = resolver;
      o.transport = "doh";
      o.t_start = t0;
      o.t_end = WallMicros();
      o.details["source"] = "control";
      o.details["engine"] = "doh";
      nlohmann::json answers = nlohmann::json::array();
      const std::string& resp = call->doh_responses[i];
      auto* abuf = reinterpret_cast<const unsigned char*>(resp.data());
      int alen = static_cast<int>(resp.size());
      if (rc != CURLE_OK || status != 200 || alen < 12) {
        o.failure = rc != CURLE_OK ? FailureFromCurl(rc, 0, nullptr).value_or("unknown_failure")
                                   : std::string("http_request_failed");
      } else {
        o.raw = resp;
        int rcode = abuf[3] & 0x0f;
        o.details["rcode"] = rcode;
        if (qtype == ns_t_a) {
          ares_addrttl ttls[32];
          int n = 32;
          if (ares_parse_a_reply(abuf, alen, nullptr, ttls, &n) == ARES_SUCCESS)
            for (int k = 0; k < n; ++k) {
              char buf[INET_ADDRSTRLEN];
              inet_ntop(AF_INET, &ttls[k].ipaddr, buf, sizeof buf);
              answers.push_back({{"type", "A"}, {"value", buf}, {"ttl", ttls[k].ttl}});
            }
        } else {
          ares_addr6ttl ttls[32];
          int n = 32;
          if (ares_parse_aaaa_reply(abuf, alen, nullptr, ttls, &n) == ARES_SUCCESS)
            for (int k = 0; k < n; ++k) {
              char buf[INET6_ADDRSTRLEN];
              inet_ntop(AF_INET6, &ttls[k].ip6addr, buf, sizeof buf);
              answers.push_back({{"type", "AAAA"}, {"value", buf}, {"ttl", ttls[k].ttl}});
            }
        }
        static const int kRcodeStatus[] = {ARES_SUCCESS,   ARES_EFORMERR, ARES_ESERVFAIL,
                                           ARES_ENOTFOUND, ARES_ENOTIMP,  ARES_EREFUSED};
        int st = rcode <= 5 ? kRcodeStatus[rcode] : ARES_EBADRESP;
        o.failure = FailureFromAres(st, rcode);
        if (!o.failure && answers.empty()) o.failure = "dns_no_answer";
      }
      o.details["answers"] = answers;
      call->doh_obs.push_back(std::move(o));
      if (--call->doh_pending > 0) return;
      // Both done. A resolver that answered nothing at all: try the next one.
      bool any_answer = false;
      for (const Observation& d : call->doh_obs)
        if (!d.raw.empty()) any_answer = true;
      if (!any_answer) {
        call->errors.push_back(resolver + ": no DNS-over-HTTPS answer");
        ++call->doh;
        loop_->AddTimer(0, [this, call] { Try(call); });
        return;
      }
      Finish(call, std::move(call->doh_obs), "");
    });
  }
}

void ThControlSource::Finish(Call* call, std::vector<Observation> obs, std::string error) {
  auto it = calls_.begin();
  while (it != calls_.end() && it->get() != call) ++it;
  if (it == calls_.end()) return;  // cancelled meanwhile
  Done done = std::move(call->done);
  // Keep the call alive until its easy handle is out of curl's hands.
  std::unique_ptr<Call> owned = std::move(*it);
  calls_.erase(it);
  loop_->AddTimer(0, [c = owned.release()] { delete c; });
  if (done) done(std::move(obs), std::move(error));
}

void ThControlSource::CancelAll() {
  for (auto& c : calls_) {
    if (c->easy) multi_.Remove(c->easy);
    for (CURL* e : c->doh_easy) multi_.Remove(e);
  }
  calls_.clear();
}

}  // namespace rasad

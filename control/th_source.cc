#include "control/th_source.h"

#include "control/th_client.h"
#include "control/th_protocol.h"

namespace rasad {

struct ThControlSource::Call {
  std::string url;
  Done done;
  size_t helper = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body, response;
  std::vector<std::string> errors;
  ~Call() {
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
                                 std::string ca_file, int64_t timeout_ms)
    : loop_(loop),
      helpers_(std::move(helpers)),
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
  for (auto& c : calls_)
    if (c->easy) multi_.Remove(c->easy);
  calls_.clear();
}

}  // namespace rasad

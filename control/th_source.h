// ThControlSource: the probe's ControlSource backed by control helpers that
// speak OONI's test-helper protocol (rasad's own `rasad helper`, or OONI's).
// POSTs on the probe's event loop through its own curl multi handle; tries
// the helpers in order until one answers. When none does, falls back to DNS
// over HTTPS (RFC 8484) against foreign resolvers: a DNS-only control.
#pragma once

#include <curl/curl.h>

#include <list>
#include <memory>
#include <string>
#include <vector>

#include "probe/loop/event_loop.h"
#include "probe/measure/control_source.h"
#include "probe/net/curl_multi.h"

namespace rasad {

class ThControlSource : public ControlSource {
 public:
  // `helpers`: base URLs, tried in order. `ca_file`: extra trust anchors for
  // https helpers (e.g. the lab CA), "" for the system store only.
  ThControlSource(EventLoop* loop, std::vector<std::string> helpers, std::string ca_file,
                  int64_t timeout_ms = 60000, std::vector<std::string> doh_resolvers = {});
  ~ThControlSource() override;
  Status Init();

  void Request(const std::string& url, Done done) override;
  void CancelAll() override;

 private:
  struct Call;
  void Try(Call* call);
  void TryDoh(Call* call);
  void Finish(Call* call, std::vector<Observation> obs, std::string error);

  EventLoop* loop_;
  std::vector<std::string> helpers_;
  std::vector<std::string> doh_;
  std::string ca_file_;
  int64_t timeout_ms_;
  CurlMulti multi_;
  std::list<std::unique_ptr<Call>> calls_;
};

}  // namespace rasad

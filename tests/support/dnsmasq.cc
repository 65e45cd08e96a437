#include "tests/support/dnsmasq.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace rasad::testing {
namespace {

using Clock = std::chrono::steady_clock;

// In the child between fork and exec: only async-signal-safe calls.
void CloseFdsFrom(int first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, ~0U, 0) == 0) return;
#endif
  for (int fd = first; fd < 65536; ++fd) close(fd);
}

// fork/exec argv with stdin from /dev/null and stdout+stderr to out_fd (or /dev/null if -1).
pid_t Spawn(const std::vector<std::string>& args, int out_fd) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;  // parent (or -1)
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) dup2(null_fd, 0);
  int out = out_fd >= 0 ? out_fd : null_fd;
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
  }
  CloseFdsFrom(3);
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_DFL);
  execv(argv[0], argv.data());
  _exit(127);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Binds 127.0.0.1 UDP port 0 and checks TCP is free on the same port.
uint16_t FreeUdpTcpPort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint16_t port = 0;
    if (udp >= 0 && tcp >= 0 && bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      socklen_t len = sizeof a;
      getsockname(udp, reinterpret_cast<sockaddr*>(&a), &len);
      if (bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) port = ntohs(a.sin_port);
    }
    if (udp >= 0) close(udp);
    if (tcp >= 0) close(tcp);
    if (port != 0) return port;
  }
  return 0;
}

// One UDP query for "rasad-ready.invalid" A; true if any answer with our id arrives in time.
bool Answers(uint16_t port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  static const unsigned char kQuery[] = {
      0x52, 0x41, 0x01, 0x00, 0,   1,   0,   0,   0,   0,   0,   0,    // id 0x5241, RD, 1 question
      11,   'r',  'a',  's',  'a', 'd', '-', 'r', 'e', 'a', 'd', 'y',  //
      7,    'i',  'n',  'v',  'a', 'l', 'i', 'd', 0,                   // root
      0,    1,    0,    1};                                            // A, IN
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      send(fd, kQuery, sizeof kQuery, 0) == static_cast<ssize_t>(sizeof kQuery)) {
    pollfd p{fd, POLLIN, 0};
    unsigned char buf[512];
    if (poll(&p, 1, timeout_ms) == 1) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      ok = n >= 12 && buf[0] == 0x52 && buf[1] == 0x41;
    }
  }
  close(fd);
  return ok;
}

}  // namespace

std::string Dnsmasq::Binary() {
  for (const char* p : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

bool Dnsmasq::Available() {
  static const bool available = [] {
    std::string bin = Binary();
    if (bin.empty()) return false;
    pid_t pid = Spawn({bin, "--version"}, -1);
    if (pid < 0) return false;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return available;
}

Dnsmasq::Dnsmasq(const std::vector<std::string>& config_lines) {
  if (!Available()) {
    error_ = "dnsmasq is not installed or does not run (apt-get install dnsmasq-base)";
    return;
  }
  char tmpl[] = "/tmp/rasad-dnsmasq-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = std::string("mkdtemp: ") + strerror(errno);
    return;
  }
  dir_ = tmpl;
  conf_ = dir_ + "/dnsmasq.conf";
  log_ = dir_ + "/dnsmasq.log";
  {
    std::ofstream out(conf_);
    for (const auto& line : config_lines) out << line << "\n";
    if (!out) {
      error_ = "cannot write " + conf_;
      return;
    }
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint16_t port = FreeUdpTcpPort();
    if (port == 0) {
      error_ = "no free port";
      return;
    }
    bool in_use = false;
    std::string err;
    if (StartOnce(port, &err, &in_use)) {
      ok_ = true;
      port_ = port;
      error_.clear();
      return;
    }
    error_ = err;
    if (!in_use) return;
  }
}

bool Dnsmasq::StartOnce(uint16_t port, std::string* err, bool* port_in_use) {
  std::vector<std::string> args = {Binary(),
                                   "--keep-in-foreground",
                                   "--no-resolv",
                                   "--no-hosts",
                                   "--port=" + std::to_string(port),
                                   "--listen-address=127.0.0.1",
                                   "--bind-interfaces",
                                   "--conf-file=" + conf_,
                                   "--pid-file=",
                                   "--log-facility=-"};
  if (geteuid() == 0) args.push_back("--user=root");
  int log_fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    *err = "cannot open " + log_;
    return false;
  }
  pid_ = Spawn(args, log_fd);
  close(log_fd);
  if (pid_ < 0) {
    *err = std::string("fork: ") + strerror(errno);
    return false;
  }
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::string out = ReadFile(log_);
      *port_in_use = out.find("in use") != std::string::npos;
      *err = "dnsmasq exited (status " + std::to_string(status) + "): " + out;
      return false;
    }
    if (Answers(port, 20)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  *err = "dnsmasq did not answer within 5 s: " + ReadFile(log_);
  Stop();
  return false;
}

void Dnsmasq::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(1);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pid_ = -1;
}

Dnsmasq::~Dnsmasq() {
  Stop();
  if (!dir_.empty()) {
    unlink(conf_.c_str());
    unlink(log_.c_str());
    rmdir(dir_.c_str());
  }
}

std::string Dnsmasq::log() const { return log_.empty() ? "" : ReadFile(log_); }

}  // namespace rasad::testing

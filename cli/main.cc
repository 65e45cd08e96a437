// rasad: the command line. Subcommands and every option: docs/CLI.md.
#include <ares.h>
#include <curl/curl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "analysis/analyzer.h"
#include "cli/summary.h"
#include "control/helper_cli.h"
#include "control/th_source.h"
#include "interop/ooni_import.h"
#include "probe/capture/export.h"
#include "probe/capture/pcap_file.h"
#include "probe/config/citizenlab.h"
#include "probe/config/config.h"
#include "probe/config/targets.h"
#include "probe/core/clock.h"
#include "probe/loop/event_loop.h"
#include "probe/measure/cycle.h"
#include "probe/net/tls_inspect.h"
#include "probe/store/store.h"
#include "report/commands.h"
#include "report/timeline.h"

namespace rasad {
namespace {

void Log(const std::string& msg) { std::cerr << "rasad: " << msg << std::endl; }

struct ProbeOptions {
  std::string config;
  bool once = false;
  std::string summary_json;
  std::string database;
  bool quiet = false;
};

// Config from --config, else ./rasad.toml when present, else built-in defaults.
Status LoadConfigOrDefault(const std::string& path, Config* cfg) {
  if (!path.empty()) return LoadConfig(path, cfg);
  if (access("rasad.toml", R_OK) == 0) return LoadConfig("rasad.toml", cfg);
  *cfg = Config();
  return Status::Ok();
}

struct Loaded {
  Config config;
  std::vector<Target> targets;
  std::shared_ptr<TrustStore> trust;
  std::shared_ptr<Analyzer> analyzer;
};

Status LoadAll(const ProbeOptions& o, Loaded* out) {
  Loaded l;
  Status st = LoadConfigOrDefault(o.config, &l.config);
  if (!st.ok()) return st;
  if (!o.database.empty()) l.config.database = o.database;
  st = LoadTargets(l.config.targets, &l.targets);
  if (!st.ok()) return st;
  if (l.targets.empty()) return Status::Invalid("no targets found in the configured target paths");
  st = TrustStore::Create(l.config.ca_file, &l.trust);
  if (!st.ok()) return st;
  std::unique_ptr<Analyzer> analyzer;
  st = Analyzer::Create(l.config, &analyzer);
  if (!st.ok()) return st;
  for (const std::string& w : analyzer->warnings()) Log(w);
  l.analyzer = std::move(analyzer);
  *out = std::move(l);
  return Status::Ok();
}

int RunProbe(const ProbeOptions& opts) {
  Loaded cur;
  Status st = LoadAll(opts, &cur);
  if (!st.ok()) {
    Log(st.ToString());
    return 2;
  }
  std::unique_ptr<Store> store;
  st = Store::Open(cur.config.database, &store);
  if (!st.ok()) {
    Log(st.ToString());
    return 1;
  }
  int interrupted = 0;
  store->MarkInterruptedCycles(&interrupted);
  if (interrupted)
    Log("marked " + std::to_string(interrupted) + " cycle(s) cut short earlier as interrupted");

  EventLoop loop;
  st = loop.Init();
  if (!st.ok()) {
    Log(st.ToString());
    return 1;
  }
  // Signals arrive as readable data on the loop, never as async handlers.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  bool stop = false, reload = false;
  loop.WatchFd(sfd, EPOLLIN, [&](uint32_t) {
    signalfd_siginfo si{};
    while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGHUP) {
        reload = true;
      } else {
        if (!stop) Log("stopping (signal " + std::to_string(si.ssi_signo) + ")");
        stop = true;
      }
    }
  });

  while (true) {
    if (reload) {
      reload = false;
      Loaded next;
      Status rs = LoadAll(opts, &next);
      if (!rs.ok()) {
        Log("reload failed, keeping the previous configuration: " + rs.ToString());
      } else {
        if (next.config.database != cur.config.database) {
          std::unique_ptr<Store> ns;
          Status os = Store::Open(next.config.database, &ns);
          if (!os.ok()) {
            Log("reload failed, keeping the previous configuration: " + os.ToString());
            next.config.database = cur.config.database;
          } else {
            int n = 0;
            ns->MarkInterruptedCycles(&n);
            store = std::move(ns);
          }
        }
        cur = std::move(next);
        Log("reloaded configuration and " + std::to_string(cur.targets.size()) + " targets");
      }
    }
    CycleReport report;
    Cycle cycle(&loop, cur.config, cur.targets, store.get(), cur.trust);
    cycle.SetLogger(Log);
    std::unique_ptr<ThControlSource> control;
    if (!cur.config.control_helpers.empty()) {
      control =
          std::make_unique<ThControlSource>(&loop, cur.config.control_helpers, cur.config.ca_file);
      Status cs = control->Init();
      if (cs.ok()) {
        cycle.SetControlSource(control.get());
      } else {
        Log("control helpers unavailable: " + cs.ToString());
      }
    }
    st = cycle.Run([&] { return stop; }, &report);
    if (!st.ok()) {
      Log("cycle failed: " + st.ToString());
      if (opts.once) return 1;
    } else {
      // Judgement comes after the observations are safely stored.
      std::vector<Verdict> verdicts = cur.analyzer->Classify(report.measurements);
      Status vs = WriteVerdicts(store.get(), report.uid, verdicts);
      if (!vs.ok()) Log("cannot store verdicts: " + vs.ToString());
      if (vs.ok()) {
        Status ts = UpdateTimeline(store.get(), report.uid);
        if (!ts.ok()) Log("cannot update the timeline: " + ts.ToString());
      }
      if (!opts.quiet) PrintCycleTable(report, verdicts, std::cout);
      std::cout.flush();
      if (!report.store_error.empty()) Log("storage error: " + report.store_error);
      if (!opts.summary_json.empty()) {
        std::ofstream f(opts.summary_json);
        f << CycleSummaryJson(report, verdicts).dump(2) << "\n";
        if (!f) Log("cannot write " + opts.summary_json);
      }
    }
    if (opts.once || stop) break;
    uint32_t rnd = 0;
    getrandom(&rnd, sizeof rnd, 0);
    int64_t wait_ms =
        cur.config.interval_ms + (cur.config.jitter_ms > 0 ? rnd % (cur.config.jitter_ms + 1) : 0);
    bool woke = false;
    auto timer = loop.AddTimer(wait_ms * 1000, [&] { woke = true; });
    loop.RunUntil([&] { return woke || stop || reload; });
    loop.CancelTimer(timer);
    if (stop) break;
  }
  loop.UnwatchFd(sfd);
  close(sfd);
  return 0;
}

int RunTargetsCheck(const std::string& config_path, std::vector<std::string> paths) {
  if (paths.empty()) {
    Config cfg;
    Status st = LoadConfigOrDefault(config_path, &cfg);
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 2;
    }
    paths = cfg.targets;
  }
  int bad = 0, endpoints = 0, count = 0;
  // Check each path on its own so every broken file is reported, not just the first.
  for (const std::string& p : paths) {
    std::vector<Target> ts;
    Status st = LoadTargets({p}, &ts);
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      ++bad;
      continue;
    }
    for (const Target& t : ts) {
      ++count;
      endpoints += static_cast<int>(t.endpoints.size());
      std::cout << t.file << ": " << t.name << " version " << t.version << ", "
                << t.endpoints.size() << " endpoints" << (t.control ? " (control)" : "") << "\n";
    }
  }
  if (bad == 0) {
    std::vector<Target> all;
    Status st = LoadTargets(paths, &all);  // cross-file checks (duplicate names)
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    std::cout << "ok: " << count << " targets, " << endpoints << " endpoints\n";
    return 0;
  }
  return 1;
}

int RunClassify(const std::string& config_path, const std::string& database,
                const std::string& cycle, bool all, bool quiet,
                const std::vector<std::string>* only = nullptr) {
  Config cfg;
  Status st = LoadConfigOrDefault(config_path, &cfg);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 2;
  }
  std::unique_ptr<Analyzer> analyzer;
  st = Analyzer::Create(cfg, &analyzer);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 2;
  }
  std::unique_ptr<Store> store;
  st = Store::Open(database.empty() ? cfg.database : database, &store);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  std::vector<std::string> cycles;
  if (only) {
    cycles = *only;  // e.g. the cycles `import ooni` just wrote
  } else if (all) {
    st = ListCycles(*store, &cycles);
  } else if (!cycle.empty()) {
    cycles = {cycle};
  } else {
    std::string last;
    st = store->LatestCycleUid(&last);
    cycles = {last};
  }
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  size_t total = 0;
  for (const std::string& uid : cycles) {
    std::vector<Verdict> verdicts;
    st = analyzer->ClassifyStored(store.get(), uid, &verdicts);
    if (st.ok()) st = UpdateTimeline(store.get(), uid);
    if (!st.ok()) {
      std::cerr << "cycle " << uid << ": " << st.ToString() << "\n";
      return 1;
    }
    total += verdicts.size();
    if (!quiet && (!all || cycles.size() == 1)) {
      std::cout << "cycle " << uid;
      PrintVerdictTable(verdicts, std::cout);
    }
  }
  std::cout.flush();
  std::cerr << "classified " << cycles.size() << " cycle(s), " << total << " verdict(s) with "
            << ClassifierVersion() << "\n";
  return 0;
}

// Shareable copies of the evidence pcaps: the volunteer's own addresses
// (every interface's, and every local address rasad ever recorded) are
// rewritten to documentation addresses, checksums fixed.
int RunEvidenceExport(const std::string& config_path, const std::string& database,
                      const std::string& output) {
  Config cfg;
  Status st = LoadConfigOrDefault(config_path, &cfg);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 2;
  }
  std::string db = database.empty() ? cfg.database : database;
  std::unique_ptr<Store> store;
  st = Store::OpenReadOnly(db, &store);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  capture::AddressRewriter rw;
  rw.AddInterfaceAddresses();
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(store->handle(),
                     "SELECT DISTINCT local_addr FROM observations WHERE local_addr IS NOT NULL",
                     -1, &q, nullptr);
  while (q && sqlite3_step(q) == SQLITE_ROW)
    rw.AddAddressText(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
  sqlite3_finalize(q);
  std::string dir = std::filesystem::path(db).parent_path().string();
  std::string evidence = (dir.empty() ? "." : dir) + "/evidence";
  capture::ExportStats stats;
  std::vector<std::string> written;
  st = capture::ExportEvidenceDir(evidence, output, rw, &stats, &written);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  std::cout << "wrote " << written.size() << " file(s) to " << output << ": " << stats.frames
            << " frames, " << stats.ip_rewrites << " address fields and " << stats.mac_rewrites
            << " MAC fields rewritten\n";
  return 0;
}

int RunImportCitizenLab(const std::string& file, std::string name, const std::string& output) {
  if (name.empty()) {
    std::string base = file.substr(file.find_last_of('/') + 1);
    base = base.substr(0, base.find('.'));
    name = "citizenlab-" + base;
  }
  Target t;
  Status st = ImportCitizenLab(file, name, &t);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  std::string toml = TargetToToml(t);
  if (output.empty() || output == "-") {
    std::cout << toml;
  } else {
    std::ofstream f(output);
    f << toml;
    if (!f) {
      std::cerr << output << ": cannot write\n";
      return 1;
    }
    std::cerr << "wrote " << t.endpoints.size() << " endpoints to " << output << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace rasad

int main(int argc, char** argv) {
  using namespace rasad;
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "rasad: measures whether apps and sites are reachable over DNS, TCP, TLS and HTTP on\n"
      "every configured operator uplink, and stores raw observations in SQLite."};
  app.set_version_flag("--version", std::string("rasad ") + RASAD_VERSION);
  app.require_subcommand(1);

  ProbeOptions popts;
  auto* probe = app.add_subcommand(
      "probe", "Measure every target on every network: one cycle with --once, else forever");
  probe->add_option("-c,--config", popts.config,
                    "Config file (default: ./rasad.toml if present, else built-in defaults)");
  probe->add_flag("--once", popts.once, "Run one cycle, print its table and exit");
  probe->add_option("--summary-json", popts.summary_json,
                    "Also write the cycle's outcome per network and endpoint as JSON to this file");
  probe->add_option("--database", popts.database, "Override the config's database path");
  probe->add_flag("-q,--quiet", popts.quiet, "Do not print the per-network table");
  probe->footer(
      "Signals: SIGTERM/SIGINT stop cleanly (a cycle in progress is stored as 'aborted');\n"
      "SIGHUP reloads the config and targets at the next cycle (a broken file is reported\n"
      "and the previous configuration is kept).");

  auto* targets = app.add_subcommand("targets", "Check and import target files");
  targets->require_subcommand(1);
  std::string check_config;
  std::vector<std::string> check_paths;
  auto* check = targets->add_subcommand("check", "Validate target files; errors as file:line");
  check->add_option("paths", check_paths, "Target files or directories (default: the config's)");
  check->add_option("-c,--config", check_config, "Config file naming the target paths");
  std::string import_file, import_name, import_output;
  auto* import = targets->add_subcommand("import", "Turn a published test list into a target file");
  import->require_subcommand(1);
  auto* citizenlab = import->add_subcommand(
      "citizenlab", "Import a Citizen Lab test list CSV (url,category_code,...)");
  citizenlab->add_option("file", import_file, "The CSV file, e.g. lists/ir.csv")->required();
  citizenlab->add_option("-n,--name", import_name, "Target name (default: citizenlab-<file name>)");
  citizenlab->add_option("-o,--output", import_output, "Write here instead of standard output");

  std::string cls_config, cls_db, cls_cycle;
  bool cls_all = false, cls_quiet = false;
  auto* classify = app.add_subcommand(
      "classify", "Recompute verdicts from stored observations (latest cycle by default)");
  classify->add_option("-c,--config", cls_config, "Config file (fingerprints, public ranges)");
  classify->add_option("--database", cls_db, "Database (default: the config's)");
  classify->add_option("--cycle", cls_cycle, "Cycle uid to classify");
  classify->add_flag("--all", cls_all, "Classify every cycle in the database");
  classify->add_flag("-q,--quiet", cls_quiet, "Do not print the verdict table");

  std::vector<std::string> ooni_files;
  std::string ooni_db, ooni_config;
  auto* import_cmd = app.add_subcommand("import", "Import measurements made by other tools");
  import_cmd->require_subcommand(1);
  auto* ooni = import_cmd->add_subcommand(
      "ooni", "Import OONI measurement JSON (one object, an array, or JSONL) into the database");
  ooni->add_option("files", ooni_files, "OONI measurement files")->required();
  ooni->add_option("--database", ooni_db, "Database (default: the config's)");
  ooni->add_option("-c,--config", ooni_config, "Config file naming the database");

  rasad::HelperOptions helper_opts;
  auto* helper = rasad::AddHelperCommand(&app, &helper_opts);

  std::string ev_config, ev_db, ev_out = "results/evidence-export";
  auto* evidence_cmd = app.add_subcommand("evidence", "Packet evidence kept by the probe");
  evidence_cmd->require_subcommand(1);
  auto* evidence_export = evidence_cmd->add_subcommand(
      "export",
      "Write shareable copies of the evidence pcaps with the volunteer's own addresses rewritten");
  evidence_export->add_option("-c,--config", ev_config, "Config file naming the database");
  evidence_export->add_option("--database", ev_db, "Database (default: the config's)");
  evidence_export->add_option("-o,--output", ev_out, "Output directory")->capture_default_str();

  std::string pcap_path;
  auto* pcap_cmd = app.add_subcommand("pcap", "Work with packet captures");
  pcap_cmd->require_subcommand(1);
  auto* pcap_analyze = pcap_cmd->add_subcommand(
      "analyze", "Run the injection detectors on a pcap/pcapng file and print the findings");
  pcap_analyze->add_option("file", pcap_path, "Capture file (pcap or pcapng)")->required();

  // report/: timelines, events, reports and exports for people (docs/REPORTS.md, EXPORTS.md).
  rasad::ReportOptions ropts;
  ropts.database.clear();  // "" = the config's
  std::string report_config, report_kind;
  auto* report_cmd = app.add_subcommand(
      "report", "Disruption events, timelines and operator comparisons for people");
  report_cmd->require_subcommand(1);
  const std::pair<const char*, const char*> report_kinds[] = {
      {"events",
       "Disruption events (onset/end windows, techniques, confidence, evidence) and, "
       "per app, which operator blocked first and how"},
      {"timeline", "Verdict counts per hour or day, per app and operator"},
      {"compare", "Operators side by side for a period: what is blocked where, how, since when"},
      {"html", "One self-contained HTML report: heatmaps, events, comparison, methodology"}};
  for (const auto& [name, help] : report_kinds) {
    auto* sub = report_cmd->add_subcommand(name, help);
    sub->callback([&report_kind, n = std::string(name)] { report_kind = n; });
    sub->add_option("-c,--config", report_config, "Config file naming the database");
    sub->add_option("--database", ropts.database, "Database (default: the config's)");
    sub->add_option("--since", ropts.since,
                    "Start: UTC ISO 8601 (2026-04-08T19:40Z) or relative (24h, 7d)");
    sub->add_option("--until", ropts.until, "End: same forms (default: the newest data)");
    sub->add_option("--tz", ropts.tz, "Show times in this zone, e.g. Asia/Tehran (default UTC)");
    sub->add_option("--target", ropts.target, "One app only");
    sub->add_option("--network", ropts.network, "One operator network only");
    sub->add_flag("--rebuild", ropts.rebuild, "Recompute the timeline counts from the verdicts");
    std::string n = name;
    if (n == "timeline" || n == "html")
      sub->add_option("--bucket", ropts.bucket, "hour or day (default: by the period's length)")
          ->check(CLI::IsMember({"hour", "day"}));
    if (n == "timeline")
      sub->add_flag("--by-endpoint", ropts.by_endpoint, "One row per endpoint, not per app");
    if (n == "events")
      sub->add_flag("--include-controls", ropts.include_controls, "Canary targets too");
    if (n == "html")
      sub->add_option("-o,--output", ropts.output,
                      "Output file (default rasad-report.html; - = standard output)");
  }

  rasad::ExportOptions xopts;
  xopts.database.clear();
  std::string export_config, export_format;
  auto* export_cmd = app.add_subcommand(
      "export", "Export observations, verdicts or events (CSV, JSON Lines) or OONI measurements");
  export_cmd->require_subcommand(1);
  const std::pair<const char*, const char*> export_formats[] = {
      {"csv", "Tidy CSV, one row per observation, verdict or event (docs/EXPORTS.md)"},
      {"json", "The same rows as JSON Lines"},
      {"ooni", "OONI measurement JSONL (df-000 base keys, web_connectivity test keys)"}};
  for (const auto& [name, help] : export_formats) {
    auto* sub = export_cmd->add_subcommand(name, help);
    sub->callback([&export_format, n = std::string(name)] { export_format = n; });
    sub->add_option("-c,--config", export_config, "Config file naming the database");
    sub->add_option("--database", xopts.database, "Database (default: the config's)");
    sub->add_option("--since", xopts.since, "Start: UTC ISO 8601 or relative (24h, 7d)");
    sub->add_option("--until", xopts.until, "End: same forms");
    sub->add_option("--target", xopts.target, "One app only");
    sub->add_option("--network", xopts.network, "One operator network only");
    sub->add_option("-o,--output", xopts.output, "Output file (default: standard output)");
    if (std::string(name) == "ooni")
      sub->add_option("--probe-cc", xopts.probe_cc,
                      "ISO 3166 country of the networks (default ZZ, unknown)")
          ->capture_default_str();
    else
      sub->add_option("--what", xopts.what, "observations, verdicts or events")
          ->check(CLI::IsMember({"observations", "verdicts", "events"}))
          ->capture_default_str();
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  ares_library_init(ARES_LIB_INIT_ALL);
  int rc = 0;
  if (*probe) {
    rc = RunProbe(popts);
  } else if (*check) {
    rc = RunTargetsCheck(check_config, check_paths);
  } else if (*citizenlab) {
    rc = RunImportCitizenLab(import_file, import_name, import_output);
  } else if (*classify) {
    rc = RunClassify(cls_config, cls_db, cls_cycle, cls_all, cls_quiet);
  } else if (*helper) {
    rc = rasad::RunHelper(helper_opts);
  } else if (*evidence_export) {
    rc = RunEvidenceExport(ev_config, ev_db, ev_out);
  } else if (*pcap_analyze) {
    rc = rasad::capture::AnalyzePcapFile(pcap_path, std::cout, std::cerr);
  } else if (*report_cmd) {
    if (ropts.database.empty()) {
      Config cfg;
      Status st = LoadConfigOrDefault(report_config, &cfg);
      if (!st.ok()) {
        std::cerr << st.ToString() << "\n";
        return 2;
      }
      ropts.database = cfg.database;
    }
    rc = rasad::RunReport(report_kind, ropts);
  } else if (*export_cmd) {
    if (xopts.database.empty()) {
      Config cfg;
      Status st = LoadConfigOrDefault(export_config, &cfg);
      if (!st.ok()) {
        std::cerr << st.ToString() << "\n";
        return 2;
      }
      xopts.database = cfg.database;
    }
    rc = rasad::RunExport(export_format, xopts);
  } else if (*ooni) {
    Config cfg;
    Status st = LoadConfigOrDefault(ooni_config, &cfg);
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      rc = 2;
    } else {
      const std::string db = ooni_db.empty() ? cfg.database : ooni_db;
      std::vector<std::string> imported;
      rc = RunImportOoni(ooni_files, db, &imported);
      // Verdicts right away for what was imported (as `rasad classify` would).
      if (!imported.empty()) {
        int crc = RunClassify(ooni_config, db, "", false, true, &imported);
        if (rc == 0) rc = crc;
      }
    }
  }
  ares_library_cleanup();
  curl_global_cleanup();
  return rc;
}

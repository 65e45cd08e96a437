// report_tool: the report and export functions as a command, for
// scripts/bench-reports before (or without) the `rasad` CLI wiring.
//   report_tool init DB                       create an empty database (schema)
//   report_tool catchup DB                    apply every cycle to the timeline
//   report_tool report KIND --database DB [--since S] [--until U] [--tz Z] [--target T] [-o FILE]
//   report_tool export FORMAT --database DB [--what W] [--since S] [-o FILE]
// (the same options as `rasad report` / `rasad export`)
#include <cstring>
#include <iostream>
#include <memory>

#include "probe/store/store.h"
#include "report/commands.h"
#include "report/timeline.h"

int main(int argc, char** argv) {
  using namespace rasad;
  if (argc < 3) {
    std::cerr << "usage: report_tool init|catchup DB | report KIND DB [opts] | export FMT DB "
                 "[opts]\n";
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "init" || cmd == "catchup") {
    std::unique_ptr<Store> store;
    Status st = Store::Open(argv[2], &store);
    if (st.ok() && cmd == "catchup") {
      int n = 0;
      st = CatchUpTimeline(store.get(), &n);
      std::cerr << "applied " << n << " cycles\n";
    }
    if (!st.ok()) std::cerr << st.ToString() << "\n";
    return st.ok() ? 0 : 1;
  }
  if (argc < 4) return 2;
  std::string kind = argv[2];
  ReportOptions r;
  ExportOptions e;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--database")
      r.database = e.database = v;
    else if (k == "--since")
      r.since = e.since = v;
    else if (k == "--until")
      r.until = e.until = v;
    else if (k == "--tz")
      r.tz = v;
    else if (k == "--target")
      r.target = e.target = v;
    else if (k == "--network")
      r.network = e.network = v;
    else if (k == "--what")
      e.what = v;
    else if (k == "--bucket")
      r.bucket = v;
    else if (k == "-o")
      r.output = e.output = v;
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  return cmd == "report" ? RunReport(kind, r) : RunExport(kind, e);
}

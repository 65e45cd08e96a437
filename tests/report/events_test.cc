// Timeline counts and disruption events on the scripted history
// (tests/report/fixture.h), and the event rules on synthetic sequences.
#include "report/events.h"

#include <gtest/gtest.h>

#include "report/db.h"
#include "report/timefmt.h"
#include "report/timeline.h"
#include "tests/report/fixture.h"

namespace rasad {
namespace {

using namespace testing_report;

std::vector<VerdictPoint> Points(const std::vector<std::string>& vs,
                                 const std::string& confidence = "probable") {
  std::vector<VerdictPoint> out;
  for (size_t i = 0; i < vs.size(); ++i) {
    VerdictPoint p;
    p.t = static_cast<int64_t>(i + 1) * 1000;
    p.verdict = vs[i];
    p.confidence = IsBlocking(vs[i]) ? confidence : "";
    p.measurement_uid = "m" + std::to_string(i);
    out.push_back(p);
  }
  return out;
}

TEST(EventRules, ScriptedHistoryIsOneEventWithTwoTechniques) {
  auto ev = EventsOfSeries("clubhouse", "api", "mci", Points(MciScript()));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].onset_after, 2000);  // the last ok
  EXPECT_EQ(ev[0].onset_by, 3000);     // the first bogon
  EXPECT_EQ(ev[0].last_blocking, 7000);
  EXPECT_EQ(ev[0].end_by, 8000);
  EXPECT_FALSE(ev[0].ongoing);
  EXPECT_EQ(ev[0].TechniqueChain(), "dns.bogon > tls.reset");
  EXPECT_EQ(ev[0].blocking_verdicts, 5);
  EXPECT_EQ(ev[0].id, "m2");
}

TEST(EventRules, SingleFailureOnCleanPathIsNotAnEvent) {
  EXPECT_TRUE(EventsOfSeries("a", "e", "n", Points({"ok", "tcp.timeout", "ok", "ok"})).empty());
  // ...unless it is confirmed (a fingerprint, packet proof, or agreement).
  auto ev = EventsOfSeries("a", "e", "n", Points({"ok", "dns.bogon", "ok", "ok"}, "confirmed"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].end_by, 3000);
}

TEST(EventRules, FlappingMergedButTwoOksEndTheEvent) {
  // One ok between blocking verdicts: flapping, one event.
  auto ev = EventsOfSeries("a", "e", "n",
                           Points({"ok", "tls.reset", "tls.reset", "ok", "tls.reset", "ok", "ok"}));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].merged_gaps, 1);
  EXPECT_EQ(ev[0].blocking_verdicts, 3);
  EXPECT_EQ(ev[0].end_by, 6000);
  // Two oks in a row: two events.
  ev = EventsOfSeries("a", "e", "n",
                      Points({"tls.reset", "tls.reset", "ok", "ok", "tls.reset", "tls.reset"}));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].onset_after, 0);  // blocked since observation began
  EXPECT_EQ(ev[0].end_by, 3000);
  EXPECT_EQ(ev[1].onset_after, 4000);
  EXPECT_TRUE(ev[1].ongoing);
  // Inconclusive / down gaps up to max_gap are merged; longer ones split.
  ev = EventsOfSeries("a", "e", "n",
                      Points({"dns.bogon", "dns.bogon", "inconclusive", "down", "vantage.offline",
                              "dns.bogon", "dns.bogon"}));
  ASSERT_EQ(ev.size(), 1u);
  ev = EventsOfSeries("a", "e", "n",
                      Points({"dns.bogon", "dns.bogon", "inconclusive", "down", "vantage.offline",
                              "down", "dns.bogon", "dns.bogon", "inconclusive", "ok"}));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].end_by, 0);  // unknown: no ok before it blocked again
  EXPECT_FALSE(ev[0].ongoing);
  EXPECT_EQ(ev[1].end_by, 10000);
}

TEST(EventRules, TechniqueChangesAreListedInOrder) {
  auto ev = EventsOfSeries(
      "a", "e", "n",
      Points({"ok", "dns.bogon", "dns.bogon", "tls.reset", "dns.bogon", "dns.bogon"}));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].TechniqueChain(), "dns.bogon > tls.reset > dns.bogon");
  EXPECT_TRUE(ev[0].ongoing);
  EXPECT_EQ(ev[0].techniques[1].first_measurement, "m3");
}

class ReportDb : public ::testing::Test {
 protected:
  void SetUp() override { fx.Build(); }
  Fixture fx;
};

TEST_F(ReportDb, EventsFromStoredVerdicts) {
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::OpenReadOnly(fx.db, &store).ok());
  std::vector<Event> events;
  Status st = LoadEvents(*store, {}, {}, &events);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(events.size(), 1u);
  const Event& e = events[0];
  EXPECT_EQ(e.network, "mci");
  EXPECT_EQ(e.target, "clubhouse");
  EXPECT_EQ(e.endpoint, "api");
  // Onset window: between the last ok (cycle 1) and the first bogon (cycle 2).
  EXPECT_EQ(e.onset_after, kStart + 1 * kStep);
  EXPECT_EQ(e.onset_by, kStart + 2 * kStep);
  EXPECT_EQ(e.end_by, kStart + 7 * kStep);
  ASSERT_EQ(e.techniques.size(), 2u);
  EXPECT_EQ(e.techniques[0].technique, "dns.bogon");
  EXPECT_EQ(e.techniques[1].technique, "tls.reset");
  EXPECT_EQ(e.confidence, "confirmed");
  EXPECT_EQ(e.evidence.size(), 5u);
  EXPECT_EQ(e.id, Uid("m", 2, 0));

  // Nothing on the other operator.
  EventFilter f;
  f.network = "irancell";
  ASSERT_TRUE(LoadEvents(*store, f, {}, &events).ok());
  EXPECT_TRUE(events.empty());

  // Grouped per app: who blocked first, and how.
  ASSERT_TRUE(LoadEvents(*store, {}, {}, &events).ok());
  auto eps = GroupEpisodes(events);
  ASSERT_EQ(eps.size(), 1u);
  ASSERT_EQ(eps[0].networks.size(), 1u);
  EXPECT_EQ(eps[0].networks[0].network, "mci");
  EXPECT_EQ(eps[0].networks[0].first_technique, "dns.bogon");
}

TEST_F(ReportDb, TimelineCountsAreIncrementalAndIdempotent) {
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(fx.db, &store).ok());
  TimelineFilter f;
  f.target = "clubhouse";
  f.network = "mci";
  std::vector<TimelineCount> counts;
  ASSERT_TRUE(QueryTimeline(*store, f, &counts).ok());
  // 16:00-16:59: ok, ok, bogon, bogon; 17:00-17:59: bogon, reset, reset, ok.
  std::map<std::pair<int64_t, std::string>, int64_t> by;
  for (const auto& c : counts) by[{c.hour, c.verdict}] += c.n;
  EXPECT_EQ((by[{kStart, "ok"}]), 2);
  EXPECT_EQ((by[{kStart, "dns.bogon"}]), 2);
  EXPECT_EQ((by[{kStart + kMicrosPerHour, "dns.bogon"}]), 1);
  EXPECT_EQ((by[{kStart + kMicrosPerHour, "tls.reset"}]), 2);
  EXPECT_EQ((by[{kStart + kMicrosPerHour, "ok"}]), 1);

  // Re-classify cycle 2 (bogon -> ok) and update twice: counted once.
  std::vector<Verdict> vs;
  ASSERT_TRUE(LoadVerdicts(*store, fx.cycles[2], &vs).ok());
  for (Verdict& v : vs) {
    v.verdict = "ok";
    v.confidence = "";
  }
  ASSERT_TRUE(WriteVerdicts(store.get(), fx.cycles[2], vs).ok());
  ASSERT_TRUE(UpdateTimeline(store.get(), fx.cycles[2]).ok());
  ASSERT_TRUE(UpdateTimeline(store.get(), fx.cycles[2]).ok());
  ASSERT_TRUE(QueryTimeline(*store, f, &counts).ok());
  by.clear();
  for (const auto& c : counts) by[{c.hour, c.verdict}] += c.n;
  EXPECT_EQ((by[{kStart, "ok"}]), 3);
  EXPECT_EQ((by[{kStart, "dns.bogon"}]), 1);

  // A rebuild from scratch agrees with the incremental counts.
  std::vector<TimelineCount> before = counts;
  ASSERT_TRUE(RebuildTimeline(store.get()).ok());
  ASSERT_TRUE(QueryTimeline(*store, f, &counts).ok());
  ASSERT_EQ(before.size(), counts.size());
  for (size_t i = 0; i < counts.size(); ++i) EXPECT_EQ(before[i].n, counts[i].n);

  std::vector<Series> series;
  ASSERT_TRUE(ListSeries(*store, &series).ok());
  EXPECT_EQ(series.size(), 4u);  // {canary, clubhouse} x {irancell, mci}
  EXPECT_TRUE(series[0].control);
}

TEST(TimelineCatchUp, AppliesCyclesTheHookMissed) {
  Fixture fx;
  fx.Build(/*update_timeline=*/false);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(fx.db, &store).ok());
  int applied = 0;
  ASSERT_TRUE(CatchUpTimeline(store.get(), &applied).ok());
  EXPECT_EQ(applied, 8);
  ASSERT_TRUE(CatchUpTimeline(store.get(), &applied).ok());
  EXPECT_EQ(applied, 0);
  std::vector<TimelineCount> counts;
  ASSERT_TRUE(QueryTimeline(*store, {}, &counts).ok());
  int64_t total = 0;
  for (const auto& c : counts) total += c.n;
  EXPECT_EQ(total, 8 * 4);
}

TEST(TimeArgs, ParsesIsoAndRelative) {
  int64_t t = 0;
  ASSERT_TRUE(ParseTimeArg("2026-04-08T16:00Z", 0, &t).ok());
  EXPECT_EQ(t, kStart);
  ASSERT_TRUE(ParseTimeArg("2026-04-08 16:00:00", 0, &t).ok());
  EXPECT_EQ(t, kStart);
  ASSERT_TRUE(ParseTimeArg("2026-04-08", 0, &t).ok());
  EXPECT_EQ(t, kStart - 16 * kMicrosPerHour);
  ASSERT_TRUE(ParseTimeArg("24h", kStart, &t).ok());
  EXPECT_EQ(t, kStart - 24 * kMicrosPerHour);
  ASSERT_TRUE(ParseTimeArg("7d", kStart, &t).ok());
  EXPECT_EQ(t, kStart - 7 * 24 * kMicrosPerHour);
  EXPECT_FALSE(ParseTimeArg("yesterday", 0, &t).ok());
  EXPECT_FALSE(ParseTimeArg("3y", 0, &t).ok());
}

TEST(TimeZones, TehranIsThreeThirtyAhead) {
  TimeZone tz;
  ASSERT_TRUE(TimeZone::Load("Asia/Tehran", &tz).ok());
  EXPECT_EQ(tz.OffsetAt(kStart), 3 * 3600 + 30 * 60);
  EXPECT_EQ(tz.Format(kStart), "2026-04-08 19:30");
  TimeZone utc;
  ASSERT_TRUE(TimeZone::Load("", &utc).ok());
  EXPECT_EQ(utc.Format(kStart), "2026-04-08 16:00");
  EXPECT_EQ(tz.Day(kStart + 5 * kMicrosPerHour), "2026-04-09");  // 00:30 Tehran
  EXPECT_EQ(tz.DayStart(kStart), kStart - 19 * kMicrosPerHour - 30 * 60 * 1000000LL);
  EXPECT_FALSE(TimeZone::Load("Mars/Olympus", &tz).ok());
  EXPECT_FALSE(TimeZone::Load("../../etc/passwd", &tz).ok());
}

}  // namespace
}  // namespace rasad

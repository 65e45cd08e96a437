"""Scenario runner: lab up -> censors -> N probe cycles -> compare -> lab down."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib

import checks
import rasadlab
from rasadlab import Lab, OP, OPERATORS, PUBLIC_RANGES, log

SKIP = 77
NONE = "none"   # TOML has no null: "none" in an expectation means JSON null
FINGERPRINTS = os.path.join(rasadlab.ROOT, "targets", "fingerprints", "rasad.toml")
# (scenario, cycle, network, target, endpoint, expected verdict or None, observed verdict or None)
# over every run scenario: the confusion matrix at the end
VERDICTS = []
NO_EXPECT = "(no expectation)"
MISSING = "(missing)"


def toml_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_str(x) for x in v) + "]"
    return json.dumps(str(v))


def write_targets(dirname, targets, cycle):
    os.makedirs(dirname, exist_ok=True)
    for f in os.listdir(dirname):
        os.unlink(os.path.join(dirname, f))
    for t in targets:
        cyc = t.get("cycles")
        if cyc is not None and cycle not in cyc:
            continue
        lines = [f"name = {toml_str(t['name'])}", f"title = {toml_str(t.get('title', t['name']))}",
                 f"version = {toml_str(t.get('version', 'lab-1'))}"]
        for k in ("category", "control", "control_kind"):   # canaries: control = true + control_kind
            if k in t:
                lines.append(f"{k} = {toml_str(t[k])}")
        for ep in t["endpoint"]:
            lines.append("\n[[endpoint]]")
            for k in ("name", "hosts", "steps", "tls", "ports", "path", "sni", "method", "expect_cert_names"):
                if k in ep:
                    lines.append(f"{k} = {toml_str(ep[k])}")
        with open(os.path.join(dirname, t["name"] + ".toml"), "w") as f:
            f.write("\n".join(lines) + "\n")


def write_config(path, lab, sc, targets_dir, db):
    resolvers = sc.get("resolvers", {})
    lines = [f"database = {toml_str(db)}", f"targets = [{toml_str(targets_dir)}]",
             "concurrency = 16", "max_addresses_per_family = 2", "ipv6 = false",
             f"ca_file = {toml_str(lab.ca_file)}", "interval = \"20s\"", "jitter = \"0s\"",
             "", "[dns]", 'timeout = "2s"', "tries = 1", 'transport = "udp"',
             "", "[timeouts]", 'tcp = "3s"', 'tls = "3s"', 'http = "5s"',
             "", "[analysis]", f"public_ranges = {toml_str(PUBLIC_RANGES)}",
             # absolute: rasad runs in the vantage namespace from another cwd
             f"fingerprints = {toml_str(FINGERPRINTS)}"]
    if lab.helper is not None:   # the control helper the runner started (control_helper = true)
        lines.append(f"control_helpers = {toml_str([rasadlab.HELPER_URL])}")
    # one attempt per endpoint and cycle: the ground truth is per attempt, and rasad's
    # default retry spacing (2 min) would hold a --once cycle for minutes.
    # A scenario may set [retries] count/spacing itself.
    retries = sc.get("retries", {"count": 0})
    lines += ["", "[retries]"] + [f"{k} = {toml_str(v)}" for k, v in retries.items()]
    for op in sc.get("networks", OPERATORS):
        p = OP[op]
        lines += ["", "[[network]]", f"name = {toml_str(op.lower())}", f"operator = {toml_str('Operator ' + op[-1])}",
                  f"asn = {p['asn']}", f"interface = {toml_str(p['vif'])}",
                  f"resolvers = {toml_str(resolvers.get(op, [p['resolver']]))}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def have_rasad(path):
    if not path or not os.access(path, os.X_OK):
        return False
    r = subprocess.run([path, "probe", "--help"], capture_output=True, text=True)
    return "--summary-json" in (r.stdout + r.stderr)


def run_probe(lab, probe, rasad, cfg, out):
    V = lab.ns("v")
    if probe == "rasad":
        cmd = ["ip", "netns", "exec", V, rasad, "probe", "--once", "--config", cfg, "--summary-json", out]
    else:
        cmd = ["ip", "netns", "exec", V, sys.executable, os.path.join(rasadlab.LAB_DIR, "miniprobe.py"), cfg, out]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"probe failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    with open(out) as f:
        return json.load(f), time.time() - t0


def observed_fields(ep):
    dns_answers = sorted({a for d in ep.get("dns") or [] if d.get("query_type", "A") == "A" for a in d.get("answers") or []})
    dns_fail = next((d.get("failure") for d in ep.get("dns") or [] if d.get("failure")), None)
    statuses = sorted({f.get("http_status") for f in ep.get("flows") or [] if f.get("http_status") is not None})
    return {"furthest_step": ep.get("furthest_step"), "failed_step": ep.get("failed_step"),
            "failure": ep.get("failure"), "dns_answers": dns_answers, "dns_failure": dns_fail,
            "http_status": statuses[0] if len(statuses) == 1 else (statuses or None),
            "attempt": ep.get("attempt"),
            "tls_leaf_subject": sorted({f["tls_leaf_subject"] for f in ep.get("flows") or [] if f.get("tls_leaf_subject")})}


def norm(v):
    if v == NONE:
        return None
    if isinstance(v, list):
        return sorted(v)
    return v


def expect_applies(e, op, cycle):
    if e.get("network", op) not in (op, "*", None):
        return False
    c = e.get("cycle")
    return c is None or cycle == c or (isinstance(c, list) and cycle in c)


def expected_verdict(exps, op, key):
    """The expectation carrying the verdict for (op, target, endpoint): one naming the
    network wins over a "*" one."""
    cands = [e for e in exps if (e["target"], e["endpoint"]) == key and "verdict" in e]
    cands.sort(key=lambda e: e.get("network") in ("*", None))
    return cands[0] if cands else None


def compare(sc, cycle, summary, name=""):
    """Return (lines, mismatches, verdict_line). Raw outcomes are compared on the last
    attempt of an endpoint (the one rasad's summary lists; `attempt` = its index, 0 = no
    retry); verdicts are per (network, target, endpoint) and judge all attempts."""
    lines, bad = [], 0
    # rasad requires lower-case network names: opA is written as "opa"
    nets = {n["name"].lower(): n for n in summary.get("networks", [])}
    keys = ("furthest_step", "failed_step", "failure", "dns_answers", "dns_failure", "http_status", "attempt")
    vkeys = ("verdict", "confidence")
    shown = keys[:-1] + ("tls_leaf_subject",)
    # does this probe classify at all? (the reference probe lab/miniprobe.py does not)
    classifies = any("verdict" in ep for n in summary.get("networks", []) for ep in n.get("endpoints", []))
    vstat = [0, 0]   # verdicts as expected, verdicts compared
    for op in sc.get("networks", OPERATORS):
        n = nets.get(op.lower())
        exps = [e for e in sc.get("expect", []) if expect_applies(e, op, cycle)]
        lines.append(f"  {op}:" + (f" probe_error={n.get('probe_error')!r}" if n and n.get("probe_error") else ""))
        if n is None:
            lines.append("    MISSING network in summary")
            bad += 1
            continue
        eps, attempts = {}, {}
        for ep in sorted(n.get("endpoints", []), key=lambda x: x.get("attempt", 0)):
            k = (ep["target"], ep["endpoint"])
            eps[k] = ep                  # the last attempt (rasad's summary lists only that one)
            attempts[k] = attempts.get(k, 0) + 1
        for e in exps:
            key = (e["target"], e["endpoint"])
            ep = eps.get(key)
            if ep is None:
                lines.append(f"    MISMATCH {key[0]}/{key[1]}: endpoint missing from summary")
                bad += 1
                if "verdict" in e and expected_verdict(exps, op, key) is e:
                    VERDICTS.append((name, cycle, op, key[0], key[1], e["verdict"], MISSING))
                    vstat[1] += 1
                continue
            obs = observed_fields(ep)
            obs["verdict"], obs["confidence"] = ep.get("verdict"), ep.get("confidence") or NONE
            diffs = [k for k in keys if k in e and norm(e[k]) != norm(obs[k])]
            if "dns_answers_within" in e:
                within = set(e["dns_answers_within"])
                if not obs["dns_answers"] or not set(obs["dns_answers"]) <= within:
                    diffs.append("dns_answers_within")
            if "tls_leaf_subject_contains" in e:
                # every flow that got a certificate saw a leaf whose subject names this
                want = e["tls_leaf_subject_contains"]
                if not obs["tls_leaf_subject"] or not all(want in subj for subj in obs["tls_leaf_subject"]):
                    diffs.append("tls_leaf_subject_contains")
            if classifies:
                diffs += [k for k in vkeys if k in e and e[k] != obs[k]]
            o = " ".join(f"{k}={obs[k]}" for k in shown if obs[k] not in (None, []))
            if attempts[key] > 1:
                o += f" (last of {attempts[key]} attempts)"
            v = (f"verdict={obs['verdict']}" + (f" ({ep.get('confidence')})" if ep.get("confidence") else "")
                 + f" rule={ep.get('rule')}") if classifies else "verdict=- (probe does not classify)"
            x = " ".join(f"{k}={e[k]}" for k in keys + ("dns_answers_within", "tls_leaf_subject_contains") + vkeys
                         if k in e)
            tag = "ok      " if not diffs else "MISMATCH"
            lines.append(f"    {tag} {key[0]}/{key[1]}\n        observed: {o}\n                  {v}\n        expected: {x}")
            if diffs:
                bad += 1
                lines.append(f"        differs:  {', '.join(diffs)}")
        checked = {(e['target'], e['endpoint']) for e in exps}
        for key, ep in eps.items():
            if key not in checked:
                obs = observed_fields(ep)
                lines.append(f"    (unchecked) {key[0]}/{key[1]}: " +
                             " ".join(f"{k}={obs[k]}" for k in shown if obs[k] not in (None, [])) +
                             (f" verdict={ep.get('verdict')}" if classifies else ""))
        if not classifies:
            continue
        # every (network, endpoint) the probe measured must carry an expected verdict
        for key, ep in eps.items():
            e = expected_verdict(exps, op, key)
            want = e["verdict"] if e else NO_EXPECT
            got = ep.get("verdict") or MISSING
            VERDICTS.append((name, cycle, op, key[0], key[1], want, got))
            vstat[1] += 1
            if e is None:
                bad += 1
                lines.append(f"    MISMATCH {key[0]}/{key[1]}: no expected verdict in the scenario (observed {got})")
            elif want == got and ("confidence" not in e or e["confidence"] == (ep.get("confidence") or NONE)):
                vstat[0] += 1
    vline = (f" verdicts: {vstat[0]}/{vstat[1]} as expected" if classifies
             else " verdicts: not compared (the probe does not classify)")
    return lines, bad, vline


def print_matrix(records, out=sys.stdout):
    """Confusion matrix expected verdict (rows) x observed verdict (columns), counts over
    every (scenario, cycle, network, target, endpoint)."""
    if not records:
        print("confusion matrix: no verdicts (the probe does not classify)", file=out)
        return 0
    exp = sorted({r[5] for r in records})
    obs = sorted({r[6] for r in records} | set(x for x in exp if x not in (NO_EXPECT,)))
    counts = {}
    for r in records:
        counts[(r[5], r[6])] = counts.get((r[5], r[6]), 0) + 1
    w0 = max(len("expected \\ observed"), *(len(x) for x in exp)) + 1
    cols = [max(len(c), 3) + 1 for c in obs]
    print("confusion matrix (rows: expected verdict, columns: observed verdict; "
          "counts of (scenario, cycle, operator, endpoint)):", file=out)
    print("expected \\ observed".ljust(w0) + "".join(c.rjust(w) for c, w in zip(obs, cols)) + "  total", file=out)
    for x in exp:
        row = [counts.get((x, c), 0) for c in obs]
        print(x.ljust(w0) + "".join((str(n) if n else ".").rjust(w) for n, w in zip(row, cols)) + f"  {sum(row):5}",
              file=out)
    agree = sum(n for (x, c), n in counts.items() if x == c)
    print(f"{agree}/{len(records)} verdicts as expected", file=out)
    wrong = [r for r in records if r[5] != r[6]]
    for r in wrong:
        print(f"  disagree: {r[0]} cycle {r[1]} {r[2]} {r[3]}/{r[4]}: expected {r[5]}, observed {r[6]}", file=out)
    return len(wrong)


JUNK = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.settimeout(3); s.connect((sys.argv[2], int(sys.argv[3]))); s.send(bytes.fromhex(sys.argv[4]))
try: s.recv(100)
except OSError: pass
s.close()
"""


def send_junk(lab, j):
    """Open a TCP connection from the vantage through an operator and send bytes that
    are neither DNS, HTTP nor TLS (to trigger a protocol filter)."""
    subprocess.run(["ip", "netns", "exec", lab.ns("v"), sys.executable, "-c", JUNK, OP[j["operator"]]["vif"],
                    j["address"], str(j.get("port", 443)), j.get("hex", "0001" + b"hello, not a known protocol".hex())],
                   capture_output=True, timeout=10)


def capture_check(lab, sc, pcap):
    """Wire-level checks that the summary cannot show (e.g. two DNS answers)."""
    bad, lines = 0, []
    for chk in sc.get("wire", []):
        if chk.get("kind") != "dns_responses":
            continue
        r = subprocess.run(["tcpdump", "-nr", pcap, "-v", "udp and src port 53"], capture_output=True, text=True)
        host = chk["host"]
        # tcpdump -v: an IP line (with ttl, id) followed by the UDP/DNS line
        ls = r.stdout.splitlines()
        resp = [(ls[i - 1].strip() if i else "", l.strip()) for i, l in enumerate(ls)
                if host.lower() in l.lower() and " A " in l]
        n = len(resp)
        ok = n >= chk.get("min", 2)
        if ok and chk.get("first"):
            ok = chk["first"] in resp[0][1]
        bad += not ok
        if not resp:
            lines.append("        capture: " + " | ".join(x.strip() for x in ls[:6]) + r.stderr.strip()[-300:])
        lines.append(f"  wire {'ok      ' if ok else 'MISMATCH'} {chk.get('interface')}: {n} DNS responses for {host} "
                     f"(expected >= {chk.get('min', 2)}" + (f", first answering {chk['first']})" if chk.get("first") else ")"))
        for ipl, dl in resp:
            m = re.search(r"ttl (\d+), id (\d+)", ipl)
            lines.append(f"        ttl={m.group(1) if m else '?'} id={m.group(2) if m else '?'}  {dl[:110]}")
    return lines, bad


def run_scenario(path, args):
    try:
        with open(path, "rb") as f:
            sc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"ERROR: cannot read scenario {path}: {e}")
        return 1
    name = sc.get("name", os.path.basename(path))
    t0 = time.time()
    lab = Lab(rasadlab.load_sites(sc.get("site", [])))
    total_bad = 0
    caps = []
    try:
        lab.up()
        for op in OPERATORS:
            lab.apply_censors(op, sc.get("censor", {}).get(op, []))
        probe = args.probe
        if probe == "auto":
            probe = "rasad" if have_rasad(args.rasad) else "builtin"
        print(f"=== scenario {name} ({os.path.basename(path)}) probe={probe}: {sc.get('description', '').strip()}")
        if sc.get("control_helper"):
            why = lab.start_helper(args.rasad)
            print(f" control helper: {'running at ' + rasadlab.HELPER_URL if why is None else 'NOT STARTED: ' + why}")
        lab.write_info()
        for chk in sc.get("wire", []):
            pcap = os.path.join(lab.tmp, f"wire-{len(caps)}.pcap")
            p = subprocess.Popen(["ip", "netns", "exec", lab.ns("v"), "tcpdump", "-Z", "root", "--immediate-mode", "-U", "-s0", "-i", chk["interface"],
                                  "-w", pcap, "udp port 53"], stdout=subprocess.DEVNULL,
                                 stderr=open(pcap + ".log", "w"))
            lab.procs.append(p)
            caps.append((p, pcap))
        if caps:
            time.sleep(1)
        cycles = int(args.cycles or sc.get("cycles", 1))
        for cycle in range(1, cycles + 1):
            for a in sc.get("action", []):
                if a.get("before_cycle") == cycle:
                    if a.get("sleep"):
                        time.sleep(float(a["sleep"]))
                    for op, rules in a.get("censor", {}).items():
                        lab.apply_censors(op, rules)
                    for j in a.get("send_junk", []):
                        send_junk(lab, j)
            tdir = os.path.join(lab.tmp, "targets")
            write_targets(tdir, sc["target"], cycle)
            cfg = os.path.join(lab.tmp, "rasad.toml")
            write_config(cfg, lab, sc, tdir, os.path.join(lab.tmp, "lab.db"))
            out = os.path.join(lab.tmp, f"summary-{cycle}.json")
            summary, secs = run_probe(lab, probe, args.rasad, cfg, out)
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                with open(os.path.join(args.save, f"{name}-cycle{cycle}.json"), "w") as f:
                    json.dump(summary, f, indent=1)
            lines, bad, vline = compare(sc, cycle, summary, name)
            total_bad += bad
            print(f" cycle {cycle}/{cycles} ({secs:.1f}s): {'OK' if not bad else f'{bad} MISMATCH(ES)'}")
            print("\n".join(lines))
            print(vline)
        if sc.get("check"):
            lines, bad = checks.run_checks(lab, sc)
            total_bad += bad
            print("\n".join(lines))
        if caps:
            time.sleep(1.5)
            for p, pcap in caps:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=5)
            for p, pcap in caps:
                lines, bad = capture_check(lab, sc, pcap)
                total_bad += bad
                print("\n".join(lines))
    except Exception as e:
        print(f"ERROR in scenario {name}: {e}")
        total_bad += 1
    finally:
        if args.keep:
            log(f"--keep: lab left up with prefix {lab.prefix} (tmp {lab.tmp}; addresses and URLs in {lab.tmp}/lab.json); "
                f"remove with: {sys.argv[0]} --sweep")
            input("press enter to tear down")
        lab.down()
    mine = [r for r in VERDICTS if r[0] == name]
    vsum = (f"; verdicts {sum(1 for r in mine if r[5] == r[6])}/{len(mine)} as expected" if mine else "")
    print(f"=== {name}: {'PASS' if not total_bad else 'FAIL'} in {time.time() - t0:.1f}s{vsum}\n")
    return total_bad


def main(argv):
    ap = argparse.ArgumentParser(prog="scripts/lab/run")
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--rasad", default=os.path.join(rasadlab.ROOT, "build", "rasad"))
    ap.add_argument("--probe", choices=["auto", "rasad", "builtin"], default=os.environ.get("LAB_PROBE", "auto"))
    ap.add_argument("--cycles", type=int)
    ap.add_argument("--save", help="directory to keep the summary JSONs")
    ap.add_argument("--keep", action="store_true", help="keep the lab up until enter is pressed")
    ap.add_argument("--sweep", action="store_true", help="only remove leftovers of dead runs")
    args = ap.parse_args(argv)
    why = rasadlab.preflight()
    if why:
        print(f"SKIPPED: censorship lab cannot run here: {why}. "
              "It needs root, network namespaces, nftables/iptables, nginx, dnsmasq, openssl.", flush=True)
        return SKIP
    rasadlab.sweep()
    if args.sweep:
        return 0
    if not args.scenarios:
        ap.error("no scenario given")
    if args.probe == "rasad" and not have_rasad(args.rasad):
        print(f"ERROR: {args.rasad} missing or its `probe --help` does not mention --summary-json")
        return 1

    def on_signal(sig, frm):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    bad = 0
    t0 = time.time()
    results = []
    for s in args.scenarios:
        b = run_scenario(s, args)
        bad += b
        results.append((s, b))
    if len(args.scenarios) > 1:
        print(f"=== suite: {sum(1 for _, b in results if not b)}/{len(results)} scenarios pass "
              f"in {time.time() - t0:.0f}s" + "".join(f"\n  FAIL {os.path.basename(s)}" for s, b in results if b))
        print_matrix(VERDICTS)
    return 1 if bad else 0

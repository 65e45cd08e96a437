"""Lab self-checks (`[[check]]` tables in a scenario): things the probe does not
measure yet, checked with curl from the vantage namespace through an operator.

  kind = "doh"            the lab's DNS-over-HTTPS resolver (dnsdist) answers
  kind = "https"          fetch a URL (e.g. through a TLS-intercepting operator)
  kind = "control_helper" the control helper (`rasad helper`) answers a test-helper request

Each check has `network` ("opA", "opB" or "*"). See docs/LAB.md.
"""
import base64
import json
import os
import random
import struct
import subprocess

from rasadlab import DOH_URL, HELPER_URL, OP, OPERATORS


def dns_query(name, qtype=1):
    qid = random.randint(0, 0xFFFF)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return q + struct.pack("!HH", qtype, 1)


def _skip_name(m, p):
    while True:
        n = m[p]
        if n == 0:
            return p + 1
        if n & 0xC0 == 0xC0:
            return p + 2
        p += 1 + n


def dns_answers(m):
    """(rcode, [A addresses]) of a DNS response message."""
    _, flags, qd, an = struct.unpack("!HHHH", m[:8])
    p = 12
    for _ in range(qd):
        p = _skip_name(m, p) + 4
    out = []
    for _ in range(an):
        p = _skip_name(m, p)
        t, _, _, rdlen = struct.unpack("!HHIH", m[p:p + 10])
        p += 10
        if t == 1 and rdlen == 4:
            out.append(".".join(str(b) for b in m[p:p + 4]))
        p += rdlen
    return flags & 0xF, sorted(out)


def curl(lab, op, args, timeout=8):
    cmd = ["ip", "netns", "exec", lab.ns("v"), "curl", "-sS", "--max-time", str(timeout - 2),
           "--interface", OP[op]["vif"]] + args
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def check_doh(lab, op, chk, tag):
    name = chk.get("name", "www.clubhouseapi.com")
    want = sorted(chk.get("answers", []))
    if not lab.doh:
        return [f"  check MISMATCH {op} doh: dnsdist is not installed (apt-get install dnsdist)"], 1
    lines, bad = [], 0
    methods = chk.get("methods", ["get", "post"])
    for method in methods:
        q = dns_query(name)
        qfile = os.path.join(lab.tmp, f"doh-query-{tag}-{method}.bin")
        with open(qfile, "wb") as f:
            f.write(q)
        common = ["--cacert", lab.ca_file, "-H", "accept: application/dns-message", "-w", "\n%{http_code}"]
        if method == "post":
            args = common + ["-H", "content-type: application/dns-message", "--data-binary", "@" + qfile, DOH_URL]
        else:
            args = common + [DOH_URL + "?dns=" + base64.urlsafe_b64encode(q).decode().rstrip("=")]
        r = curl(lab, op, args)
        body, _, code = r.stdout.rpartition(b"\n")
        try:
            rcode, got = dns_answers(body)
            ok = r.returncode == 0 and code == b"200" and rcode == chk.get("rcode", 0) and (not want or got == want)
            what = f"HTTP {code.decode()} rcode={rcode} A={got}" + (f" (expected rcode={chk['rcode']})" if "rcode" in chk else "")
        except (IndexError, struct.error):
            ok, what = False, f"curl rc={r.returncode} HTTP {code.decode(errors='replace')} {r.stderr.decode(errors='replace').strip()[-200:]}"
        bad += not ok
        lines.append(f"  check {'ok      ' if ok else 'MISMATCH'} {op} doh {method.upper()} {DOH_URL} {name}: {what}"
                     + (f" (expected A={want})" if want else ""))
    return lines, bad


def check_https(lab, op, chk, tag):
    url = chk["url"]
    args = ["-o", os.path.join(lab.tmp, f"https-{tag}.body"), "-w", "%{http_code}\n%{certs}"]
    ca = chk.get("cacert", "lab")
    if ca == "lab":
        args += ["--cacert", lab.ca_file]
    elif ca == "national":
        args += ["--cacert", os.path.join(lab.tmp, "pki", "national.pem")]
    else:
        args += ["-k"]
    if "address" in chk:
        host = url.split("/")[2]
        port = 443 if url.startswith("https:") else 80
        args += ["--resolve", f"{host}:{port}:{chk['address']}"]
    r = curl(lab, op, args + [url])
    out = r.stdout.decode(errors="replace")
    code, _, certs = out.partition("\n")
    try:
        body = open(os.path.join(lab.tmp, f"https-{tag}.body"), errors="replace").read()
    except OSError:
        body = ""
    issuer = next((l.split(":", 1)[1].strip() for l in certs.splitlines() if l.startswith("Issuer:")), "")
    subject = next((l.split(":", 1)[1].strip() for l in certs.splitlines() if l.startswith("Subject:")), "")
    ok = r.returncode == 0
    if "status" in chk:
        ok = ok and code.strip() == str(chk["status"])
    if "body_contains" in chk:
        ok = ok and chk["body_contains"] in body
    if "issuer_contains" in chk:
        ok = ok and chk["issuer_contains"] in issuer
    if "subject_contains" in chk:
        ok = ok and chk["subject_contains"] in subject
    what = (f"HTTP {code.strip()} subject=[{subject}] issuer=[{issuer}]" if r.returncode == 0
            else f"curl rc={r.returncode} {r.stderr.decode(errors='replace').strip()[-200:]}")
    exp = " ".join(f"{k}={chk[k]}" for k in ("status", "body_contains", "subject_contains", "issuer_contains") if k in chk)
    return [f"  check {'ok      ' if ok else 'MISMATCH'} {op} https {url} (cacert {ca}): {what}"
            + (f"\n        expected: {exp}" if not ok else "")], int(not ok)


def check_helper(lab, op, chk, tag):
    if lab.helper is None:
        return [f"  check SKIPPED  {op} control_helper: no helper running (see 'control helper' above)"], 0
    req = {"http_request": chk.get("url", "https://www.example.com/"), "http_request_headers": {},
           "tcp_connect": chk.get("tcp_connect", ["203.0.113.20:443"])}
    r = curl(lab, op, ["-H", "content-type: application/json", "--data-binary", json.dumps(req),
                       "-w", "\n%{http_code}", HELPER_URL], timeout=20)
    body, _, code = r.stdout.rpartition(b"\n")
    try:
        resp = json.loads(body)
        ok = code == b"200" and isinstance(resp, dict) and "tcp_connect" in resp
        what = f"HTTP {code.decode()} keys={sorted(resp)[:8]}"
        for k, want in chk.get("expect_tcp_connect", {}).items():
            got = (resp.get("tcp_connect") or {}).get(k, {})
            ok = ok and got.get("status") == want
            what += f" tcp_connect[{k}].status={got.get('status')}"
        if "expect_http_status" in chk:   # the helper's own fetch of the URL (its DNS + TLS + HTTP)
            got = (resp.get("http_request") or {}).get("status_code")
            ok = ok and got == chk["expect_http_status"]
            what += f" http_request.status_code={got}"
        if "expect_dns_addrs" in chk:
            got = sorted((resp.get("dns") or {}).get("addrs") or [])
            ok = ok and got == sorted(chk["expect_dns_addrs"])
            what += f" dns.addrs={got}"
    except ValueError:
        ok, what = False, f"curl rc={r.returncode} HTTP {code.decode(errors='replace')} {body[:200]!r}"
    return [f"  check {'ok      ' if ok else 'MISMATCH'} {op} control_helper {HELPER_URL}: {what}"], int(not ok)


KINDS = {"doh": check_doh, "https": check_https, "control_helper": check_helper}


def run_checks(lab, sc):
    lines, bad = [], 0
    for i, chk in enumerate(sc.get("check", [])):
        fn = KINDS.get(chk.get("kind"))
        if fn is None:
            lines.append(f"  check MISMATCH: unknown kind {chk.get('kind')!r}")
            bad += 1
            continue
        net = chk.get("network", "*")
        for op in (sc.get("networks", OPERATORS) if net == "*" else [net]):
            l, b = fn(lab, op, chk, f"{i}-{op}")
            lines += l
            bad += b
    return lines, bad

#!/usr/bin/env python3
"""Reference probe for the lab (used when build/rasad is not available, or
with `scripts/lab/run --probe builtin`).

Reads a rasad.toml and its target files, measures once per network (sockets
bound with SO_BINDTODEVICE, DNS over UDP to the network's first resolver,
TCP, TLS with the lab CA, HTTP/1.1 GET) and writes the same summary JSON as
`rasad probe --once --summary-json`.  It is deliberately simple: it exists
to validate the lab itself, not to replace the engine.
"""
import errno
import json
import os
import random
import socket
import ssl
import struct
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor

STEPS = ["dns", "tcp", "tls", "http"]


def dur(s, default):
    if not s:
        return default
    s = str(s)
    if s.endswith("ms"):
        return float(s[:-2]) / 1000
    if s.endswith("s"):
        return float(s[:-1])
    return float(s)


def classify(e):
    if isinstance(e, ssl.SSLCertVerificationError):
        code = getattr(e, "verify_code", 0)
        if code == 62:
            return "ssl_invalid_hostname"
        if code in (18, 19, 20, 21, 2):
            return "ssl_unknown_authority"
        return "ssl_invalid_certificate"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "generic_timeout_error"
    if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError, EOFError)):
        return "eof_error"
    if isinstance(e, ConnectionResetError):
        return "connection_reset"
    if isinstance(e, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(e, OSError) and e.errno is not None:
        return {errno.EHOSTUNREACH: "host_unreachable", errno.ENETUNREACH: "network_unreachable",
                errno.ECONNRESET: "connection_reset", errno.ETIMEDOUT: "generic_timeout_error",
                errno.ECONNREFUSED: "connection_refused"}.get(e.errno, f"unknown_failure: {e}")
    if isinstance(e, ssl.SSLError):
        return "ssl_failed_handshake"
    return f"unknown_failure: {e}"


def sock(iface, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    return s


def dns_a(iface, resolver, host, timeout):
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in host.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    s = sock(iface, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    rec = {"hostname": host, "query_type": "A", "resolver": f"{resolver}:53", "failure": None, "answers": []}
    try:
        s.sendto(q, (resolver, 53))
        while True:
            data, _ = s.recvfrom(4096)
            if struct.unpack("!H", data[:2])[0] == qid:
                break
    except Exception as e:
        rec["failure"] = classify(e)
        return rec
    finally:
        s.close()
    flags, qd, an = struct.unpack("!HHH", data[2:8])
    rcode = flags & 0xF
    if rcode:
        rec["failure"] = {3: "dns_nxdomain_error", 2: "dns_servfail_error", 5: "dns_refused_error"}.get(
            rcode, f"dns_rcode_{rcode}")
        return rec
    i = 12
    for _ in range(qd):
        while data[i]:
            i += 1 + data[i]
        i += 5
    for _ in range(an):
        if data[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while data[i]:
                i += 1 + data[i]
            i += 1
        t, c, ttl, ln = struct.unpack("!HHIH", data[i:i + 10])
        i += 10
        if t == 1 and ln == 4:
            rec["answers"].append(socket.inet_ntoa(data[i:i + 4]))
        i += ln
    if not rec["answers"]:
        rec["failure"] = "dns_no_answer"
    return rec


def flow(iface, ep, host, addr, port, cfg, ctx):
    to = cfg.get("timeouts", {})
    steps, st = [], None
    want = ep.get("steps", "http")
    s = sock(iface)
    res = {"address": addr, "port": port, "steps": steps, "http_status": None}
    try:
        s.settimeout(dur(to.get("tcp"), 3))
        st = "tcp"
        s.connect((addr, port))
        steps.append({"step": "tcp", "failure": None})
        if want == "tcp":
            return res
        if ep.get("tls", True):
            st = "tls"
            s.settimeout(dur(to.get("tls"), 3))
            s = ctx.wrap_socket(s, server_hostname=host)
            steps.append({"step": "tls", "failure": None})
            if want == "tls":
                return res
        st = "http"
        s.settimeout(dur(to.get("http"), 5))
        s.sendall(f"GET {ep.get('path', '/')} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rasad-lab\r\n"
                  f"Accept: */*\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        deadline = time.monotonic() + dur(to.get("http"), 5)
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError()
            d = s.recv(65536)
            if not d:
                break
            buf += d
        if not buf:
            raise EOFError()
        line = buf.split(b"\r\n", 1)[0].split()
        res["http_status"] = int(line[1])
        steps.append({"step": "http", "failure": None})
    except Exception as e:
        steps.append({"step": st, "failure": classify(e)})
    finally:
        s.close()
    return res


def endpoint(net, tgt, ep, cfg, ctx):
    iface, resolver = net["interface"], net["resolvers"][0]
    out = {"target": tgt["name"], "endpoint": ep["name"], "furthest_step": None, "failed_step": None,
           "failure": None, "dns": [], "flows": []}
    addrs = []
    for host in ep["hosts"]:
        rec = dns_a(iface, resolver, host, dur(cfg.get("dns", {}).get("timeout"), 2))
        out["dns"].append(rec)
        for a in rec["answers"][: cfg.get("max_addresses_per_family", 2)]:
            addrs.append((host, a))
    if not addrs:
        out["failed_step"] = "dns"
        out["failure"] = out["dns"][0]["failure"] if out["dns"] else "dns_no_answer"
        return out
    out["furthest_step"] = "dns"
    if ep.get("steps", "http") == "dns":
        return out
    for host, a in addrs:
        for port in ep.get("ports", [443 if ep.get("tls", True) else 80]):
            out["flows"].append(flow(iface, ep, host, a, port, cfg, ctx))
    best, fail = 0, None
    for f in out["flows"]:
        ok = [s for s in f["steps"] if s["failure"] is None]
        if ok:
            best = max(best, STEPS.index(ok[-1]["step"]))
    out["furthest_step"] = STEPS[best]
    complete = [f for f in out["flows"] if all(s["failure"] is None for s in f["steps"])]
    if not complete:
        for f in out["flows"]:
            bad = [s for s in f["steps"] if s["failure"]]
            if bad and (fail is None or STEPS.index(bad[0]["step"]) > STEPS.index(fail["step"])):
                fail = bad[0]
        if fail:
            out["failed_step"], out["failure"] = fail["step"], fail["failure"]
    return out


def load_targets(paths):
    tg = []
    for p in paths:
        files = [os.path.join(p, f) for f in sorted(os.listdir(p))] if os.path.isdir(p) else [p]
        for f in files:
            if f.endswith(".toml"):
                with open(f, "rb") as fh:
                    tg.append(tomllib.load(fh))
    return tg


def main():
    cfg_path, out_path = sys.argv[1], sys.argv[2]
    with open(cfg_path, "rb") as f:
        cfg = tomllib.load(f)
    ctx = ssl.create_default_context(cafile=cfg["ca_file"])
    targets = load_targets(cfg["targets"])
    summary = {"cycle_uid": f"miniprobe-{os.getpid()}", "networks": []}
    with ThreadPoolExecutor(cfg.get("concurrency", 16)) as ex:
        for net in cfg["network"]:
            jobs = [ex.submit(endpoint, net, t, ep, cfg, ctx) for t in targets for ep in t.get("endpoint", [])]
            summary["networks"].append({"name": net["name"], "probe_error": "", "endpoints": [j.result() for j in jobs]})
    with open(out_path, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()

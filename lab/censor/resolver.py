#!/usr/bin/env python3
"""Operator resolver with a censor policy (the lab's "ISP resolver").

Forwards every query to the lab's authoritative server unless a rule for the
queried name says otherwise.  Rules (JSON file, re-read on SIGHUP):
  {"listen": ["192.0.2.53"], "upstream": "192.0.2.1",
   "rules": [{"host": "clubhouseapi.com", "action": "sinkhole", "ip": "10.10.34.34"}]}
actions: sinkhole|wrong_ip (answer A with ip), nxdomain, servfail, refused,
noanswer (NOERROR, no records), drop (never answer).
A rule for "example.com" matches example.com and every name below it.
"""
import json, signal, socket, struct, sys, threading

RCODES = {"nxdomain": 3, "servfail": 2, "refused": 5, "noanswer": 0}
CONF = {}


def load(path):
    global CONF
    with open(path) as f:
        CONF = json.load(f)


def parse_question(q):
    i, labels = 12, []
    while True:
        n = q[i]
        if n == 0:
            i += 1
            break
        labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    qtype, _ = struct.unpack("!HH", q[i:i + 4])
    return ".".join(labels), qtype, i + 4


def rule_for(name):
    for r in CONF.get("rules", []):
        h = r["host"].lower().rstrip(".")
        if name == h or name.endswith("." + h):
            return r
    return None


def answer(q, qend, rcode, ips=()):
    qid, flags = struct.unpack("!HH", q[:4])
    rflags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode | (flags & 0x7800)
    out = struct.pack("!HHHHHH", qid, rflags, 1, len(ips), 0, 0) + q[12:qend]
    for ip in ips:
        out += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(ip)
    return out


def handle(sock, data, peer):
    try:
        name, qtype, qend = parse_question(data)
    except Exception:
        return
    r = rule_for(name)
    if r:
        act = r["action"]
        if act == "drop":
            return
        if act in ("sinkhole", "wrong_ip"):
            ips = [r.get("ip", "10.10.34.34")] if qtype == 1 else []
            sock.sendto(answer(data, qend, 0, ips), peer)
            return
        if act in RCODES:
            sock.sendto(answer(data, qend, RCODES[act]), peer)
            return
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.settimeout(3)
    try:
        up.sendto(data, (CONF.get("upstream", "192.0.2.1"), 53))
        resp, _ = up.recvfrom(4096)
        sock.sendto(resp, peer)
    except OSError:
        pass
    finally:
        up.close()


def serve(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 53))
    while True:
        data, peer = s.recvfrom(4096)
        threading.Thread(target=handle, args=(s, data, peer), daemon=True).start()


def main():
    path = sys.argv[1]
    load(path)
    signal.signal(signal.SIGHUP, lambda *_: load(path))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ts = [threading.Thread(target=serve, args=(a,), daemon=True) for a in CONF["listen"]]
    for t in ts:
        t.start()
    print("resolver ready", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

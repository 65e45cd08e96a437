"""Censor techniques: one declarative rule -> resolver policy, nftables,
iptables (string match) and NFQUEUE configuration inside an operator ns.

Every rule is a TOML inline table with a `technique` key; see docs/LAB.md.
"""

RESOLVER_TECHNIQUES = {
    "dns_sinkhole": "sinkhole", "dns_wrong_ip": "wrong_ip", "dns_nxdomain": "nxdomain",
    "dns_servfail": "servfail", "dns_refused": "refused", "dns_noanswer": "noanswer", "dns_drop": "drop",
}
SUB = '"down0"'   # operator interface toward its subscribers (the vantage)
MITM_PORT = 8443  # the operator's TLS interception proxy (tls_mitm)


def _hexname(host):
    return "|" + "".join(f"{len(l):02x}" + l.encode().hex() for l in host.split(".")) + "|"


def _ports(r, default):
    p = r.get("ports", r.get("port", default))
    p = p if isinstance(p, list) else [p]
    return p


def build(rules, op, lab):
    from rasadlab import OP
    resolver, ipt, fwd, pre, nat, out_extra, nfq, link_down = [], [], [], [], [], [], [], []
    mitm = None
    sets = []
    v_if = OP[op]["vif"]
    link_up = [v_if]
    for i, r in enumerate(rules):
        t = r["technique"]
        mark = 0x10 + i
        if t in RESOLVER_TECHNIQUES:
            rr = {"host": r["host"], "action": RESOLVER_TECHNIQUES[t]}
            if "ip" in r or t == "dns_sinkhole":
                rr["ip"] = r.get("ip", "10.10.34.34")
            resolver.append(rr)
        elif t == "dns_intercept":
            # every DNS query, whatever resolver it is sent to, goes to the operator's resolver
            res = OP[op]["resolver"]
            nat.append(f'iifname {SUB} ip daddr != {res} udp dport 53 dnat ip to {res}')
            nat.append(f'iifname {SUB} ip daddr != {res} tcp dport 53 dnat ip to {res}')
        elif t in ("ip_drop", "ip_reset", "ip_unreachable", "loss"):
            m = f'iifname {SUB} ip daddr {r["ip"]}'
            if "port" in r or "ports" in r:
                m += " tcp dport { " + ", ".join(str(p) for p in _ports(r, [])) + " }"
            if t == "ip_drop":
                fwd.append(m + " drop")
            elif t == "ip_reset":
                fwd.append(m + " reject with tcp reset" if "tcp dport" in m else m + " meta l4proto tcp reject with tcp reset")
            elif t == "ip_unreachable":
                fwd.append(m + f' reject with icmp type {r.get("icmp", "host-unreachable")}')
            else:
                fwd.append(m + f' numgen random mod 100 < {int(r["percent"])} drop')
        elif t == "loss_burst":
            # deterministic stand-in for a burst of random loss: the first SYN to ip
            # (optionally port(s)) opens a window of N s in which every packet to ip is
            # dropped; it opens once per run (set `seen`), so a retry after the window passes
            m = f'iifname {SUB} ip daddr {r["ip"]}'
            if "port" in r or "ports" in r:
                m += " tcp dport { " + ", ".join(str(p) for p in _ports(r, [])) + " }"
            seen, burst = f"lossseen{i}", f"lossburst{i}"
            sets.append(f"set {seen} {{ type ipv4_addr; flags dynamic,timeout; timeout 1h; }}")
            sets.append(f"set {burst} {{ type ipv4_addr; flags dynamic,timeout; }}")
            fwd.append(m + f" tcp flags & (syn | ack) == syn ip daddr != @{seen} "
                       f"add @{burst} {{ ip daddr timeout {int(r.get('seconds', 4))}s }} add @{seen} {{ ip daddr }}")
            fwd.append(m + f" ip daddr @{burst} drop")
        elif t == "loss_nth":
            # steady deterministic loss: every Nth SYN to ip is dropped (nft numgen inc)
            m = f'iifname {SUB} ip daddr {r["ip"]} tcp flags & (syn | ack) == syn'
            fwd.append(m + f' numgen inc mod {int(r.get("every", 2))} == 0 drop')
        elif t in ("tls_sni_reset", "tls_sni_drop", "http_host_reset", "http_host_drop"):
            if t.startswith("tls"):
                port, s = _ports(r, 443), ["--string", r["sni"]]
            else:
                port, s = _ports(r, 80), ["--hex-string", "|0d0a|Host: " + r["host"] + "|0d0a|"]
            target = ["-j", "REJECT", "--reject-with", "tcp-reset"] if t.endswith("reset") else ["-j", "DROP"]
            for p in port:
                ipt.append(["-A", "FORWARD", "-i", "down0", "-p", "tcp", "--dport", str(p),
                            "-m", "string", "--algo", "bm"] + s + target)
        elif t == "residual":
            # trigger (SNI or Host) -> the (client, server, port) triple is punished for N s
            port = _ports(r, 443)
            s = ["--string", r["sni"]] if "sni" in r else ["--hex-string", "|0d0a|Host: " + r["host"] + "|0d0a|"]
            for p in port:
                ipt.append(["-t", "mangle", "-A", "FORWARD", "-i", "down0", "-p", "tcp", "--dport", str(p),
                            "-m", "string", "--algo", "bm"] + s + ["-j", "MARK", "--set-mark", str(mark)])
            name = f"penalty{i}"
            sets.append(f"set {name} {{ type ipv4_addr . ipv4_addr . inet_service; flags timeout; }}")
            fwd.append(f'meta mark {mark} update @{name} {{ ip saddr . ip daddr . tcp dport timeout {int(r.get("seconds", 60))}s }}')
            # the triggering packet is answered with a RST (so the client stops retransmitting
            # it, which would keep refreshing the penalty); follow-up connections on the
            # triple get `action` (drop: SYN timeout, reset: refused)
            fwd.append(f'meta mark {mark} reject with tcp reset')
            verdict = "reject with tcp reset" if r.get("action", "drop") == "reset" else "drop"
            fwd.append(f'iifname {SUB} ip saddr . ip daddr . tcp dport @{name} {verdict}')
        elif t in ("throttle", "freeze"):
            port = _ports(r, 443)
            s = ["--string", r["sni"]] if "sni" in r else ["--hex-string", "|0d0a|Host: " + r["host"] + "|0d0a|"]
            for p in port:
                ipt.append(["-t", "mangle", "-A", "FORWARD", "-i", "down0", "-p", "tcp", "--dport", str(p),
                            "-m", "string", "--algo", "bm"] + s + ["-j", "CONNMARK", "--set-mark", str(mark)])
            if t == "throttle":
                # a policer: traffic above the rate is dropped, not queued
                fwd.append(f'ct mark {mark} limit rate over {r.get("rate", "16 kbytes/second")} burst {r.get("burst", "8 kbytes")} drop')
            else:
                fwd.append(f'ct mark {mark} ct bytes > {int(r.get("bytes", 20000))} drop')
        elif t == "shutdown":
            allow = r.get("allow", ["198.51.100.0/24", "10.10.34.0/24"])
            fwd.append(f'iifname {SUB} ip daddr != {{ {", ".join(allow)} }} drop')
            fwd.append(f'oifname {SUB} ip saddr != {{ {", ".join(allow)} }} drop')
        elif t == "uplink_down":
            link_down.append(v_if)
            link_up = []
        elif t == "dns_inject":
            q = 0
            nfq.append(f'dns_inject host={r["host"]} ip={r.get("ip", "10.10.34.34")} ttl={r.get("ttl", "copy")} '
                       f'ipid={r.get("ipid", "random")} hold_ms={int(r.get("hold_ms", 50))}')
            # (nft's own `queue` expression is missing on some kernels; xt NFQUEUE works)
            rule = ["-t", "mangle", "-A", "PREROUTING", "-i", "down0", "-p", "udp", "--dport", "53",
                    "-j", "NFQUEUE", "--queue-num", str(q), "--queue-bypass"]
            if rule not in ipt:
                ipt.append(rule)
        elif t == "http_blockpage":
            nfq.append(f'http_blockpage host={r["host"]} status={int(r.get("status", 403))}')
            rule = ["-t", "mangle", "-A", "FORWARD", "-i", "down0", "-p", "tcp", "--dport", "80",
                    "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"]
            if rule not in ipt:
                ipt.append(rule)
        elif t == "protocol_filter":
            ports = _ports(r, [53, 80, 443])
            nfq.append(f'protocol_filter ports={",".join(str(p) for p in ports)} seconds={int(r.get("seconds", 60))}')
            ipt.append(["-t", "mangle", "-A", "FORWARD", "-i", "down0", "-p", "tcp", "-m", "multiport",
                        "--dports", ",".join(str(p) for p in ports), "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"])
        elif t == "tls_mitm":
            # TLS interception: TCP to the ports (optionally only to listed addresses) is
            # redirected to the operator's proxy (censor/tls_mitm.py), which intercepts the
            # listed SNIs with a leaf from the national root and splices everything else.
            snis = r["sni"] if isinstance(r["sni"], list) else [r["sni"]]
            if mitm is None:
                mitm = {"port": MITM_PORT, "snis": [], "ca": f"{lab.tmp}/pki/national.pem",
                        "ca_key": f"{lab.tmp}/pki/national.key", "workdir": f"{lab.tmp}/mitm-{op}",
                        "days": int(r.get("days", 30))}
            mitm["snis"] += [s for s in snis if s not in mitm["snis"]]
            m = f'iifname {SUB}'
            if "ips" in r:
                m += " ip daddr { " + ", ".join(r["ips"]) + " }"
            m += " tcp dport { " + ", ".join(str(p) for p in _ports(r, 443)) + " }"
            nat.append(m + f" redirect to :{MITM_PORT}")
        else:
            raise ValueError(f"unknown censor technique {t!r} (operator {op})")
    nft = "table inet censor {\n"
    for s in sets:
        nft += "  " + s + "\n"
    nft += "  chain c_pre { type filter hook prerouting priority -200; policy accept;\n"
    nft += "".join(f"    {x}\n" for x in pre) + "  }\n"
    nft += "  chain c_nat { type nat hook prerouting priority -100; policy accept;\n"
    nft += "".join(f"    {x}\n" for x in nat) + "  }\n"
    nft += "  chain c_fwd { type filter hook forward priority 0; policy accept;\n"
    nft += "".join(f"    {x}\n" for x in fwd) + "  }\n}\n"
    return {"nft": nft, "iptables": ipt, "resolver": resolver,
            "nfq": "\n".join(nfq) + "\n" if nfq else None, "link_down": link_down, "link_up": link_up,
            "mitm": mitm}

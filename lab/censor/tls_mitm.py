#!/usr/bin/env python3
"""TLS interception by a "national" CA, as Kazakhstan did in 2019/2020.

Runs inside an operator namespace. The operator's nft table redirects the
subscribers' TCP connections to port 443 (all, or only to listed addresses)
to this proxy (`redirect to :PORT`). For each connection it

  * reads the original destination (SO_ORIGINAL_DST) and peeks the ClientHello;
  * SNI not listed: splices the bytes to the original destination unchanged
    (the client sees the genuine server and certificate);
  * SNI listed: connects to the original destination over TLS, takes the real
    server's leaf certificate, mints a leaf with the same subject and
    subjectAltName signed by the national root (openssl CLI, cached per
    upstream certificate), completes the client's handshake with it and relays
    the plaintext between the two TLS sessions.

A client that does not trust the national root fails its handshake with an
unknown-authority error; one that does (curl --cacert national.pem) gets the
real page through the proxy.

Usage: tls_mitm.py CONFIG.json
  {"port": 8443, "snis": ["www.clubhouseapi.com"], "ca": ".../national.pem",
   "ca_key": ".../national.key", "workdir": "...", "days": 30}
Standard library only (+ the openssl CLI for minting).
"""
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading

SO_ORIGINAL_DST = 80


def log(*a):
    print("[tls_mitm]", *a, flush=True)


def original_dst(conn):
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack("!H", raw[2:4])[0]
    return socket.inet_ntoa(raw[4:8]), port


def parse_sni(data):
    """SNI of a TLS ClientHello record (None if absent); raises ValueError if incomplete/not TLS."""
    if len(data) < 5 or data[0] != 0x16:
        raise ValueError("not a TLS handshake record")
    rec_len = struct.unpack("!H", data[3:5])[0]
    if len(data) < 5 + rec_len:
        raise ValueError("incomplete")
    h = data[5:5 + rec_len]
    if h[0] != 1:
        raise ValueError("not a ClientHello")
    p = 4 + 2 + 32                       # handshake header, version, random
    p += 1 + h[p]                        # session id
    p += 2 + struct.unpack("!H", h[p:p + 2])[0]   # cipher suites
    p += 1 + h[p]                        # compression methods
    if p + 2 > len(h):
        return None
    end = p + 2 + struct.unpack("!H", h[p:p + 2])[0]
    p += 2
    while p + 4 <= end:
        et, el = struct.unpack("!HH", h[p:p + 4])
        p += 4
        if et == 0:                      # server_name
            q = p + 2
            while q + 3 <= p + el:
                nt, nl = h[q], struct.unpack("!H", h[q + 1:q + 3])[0]
                if nt == 0:
                    return h[q + 3:q + 3 + nl].decode("ascii", "replace").lower()
                q += 3 + nl
        p += el
    return None


def peek_client_hello(conn, timeout=5.0):
    conn.settimeout(timeout)
    data = b""
    for _ in range(50):
        data = conn.recv(16384, socket.MSG_PEEK)
        if not data:
            return None, data
        try:
            return parse_sni(data), data
        except ValueError as e:
            if str(e) != "incomplete":
                return None, data
        select.select([conn], [], [], 0.1)
    return None, data


class Minter:
    def __init__(self, cfg):
        self.cfg = cfg
        self.dir = cfg["workdir"]
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "mitm-leaf.key")
        # one key for every minted leaf, as interception boxes do
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-out", self.key], check=True, capture_output=True)
        self.lock = threading.Lock()
        self.cache = {}

    def context_for(self, upstream_der):
        fp = hashlib.sha256(upstream_der).hexdigest()[:16]
        with self.lock:
            if fp in self.cache:
                return self.cache[fp]
            stem = os.path.join(self.dir, "mitm-" + fp)
            with open(stem + ".upstream.pem", "w") as f:
                f.write(ssl.DER_cert_to_PEM_cert(upstream_der))
            # subject: copied verbatim by -x509toreq; subjectAltName: copied as text
            subprocess.run(["openssl", "x509", "-x509toreq", "-in", stem + ".upstream.pem", "-key", self.key,
                            "-out", stem + ".csr"], check=True, capture_output=True)
            r = subprocess.run(["openssl", "x509", "-in", stem + ".upstream.pem", "-noout", "-ext", "subjectAltName"],
                               capture_output=True, text=True)
            san = []
            for line in r.stdout.splitlines()[1:]:
                for item in line.strip().split(","):
                    item = item.strip()
                    if item.startswith("DNS:"):
                        san.append(item)
                    elif item.startswith("IP Address:"):
                        san.append("IP:" + item.split(":", 1)[1])
            with open(stem + ".ext", "w") as f:
                f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\n"
                        "extendedKeyUsage=serverAuth\n")
                if san:
                    f.write("subjectAltName=" + ",".join(san) + "\n")
            subprocess.run(["openssl", "x509", "-req", "-in", stem + ".csr", "-CA", self.cfg["ca"],
                            "-CAkey", self.cfg["ca_key"], "-set_serial", "0x" + fp, "-days",
                            str(self.cfg.get("days", 30)), "-extfile", stem + ".ext", "-out", stem + ".pem"],
                           check=True, capture_output=True)
            with open(stem + ".chain.pem", "w") as f:
                f.write(open(stem + ".pem").read() + open(self.cfg["ca"]).read())
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(stem + ".chain.pem", self.key)
            ctx.set_alpn_protocols(["http/1.1"])
            self.cache[fp] = ctx
            log(f"minted leaf {stem}.pem (subject copied, SAN {','.join(san)})")
            return ctx


def relay(a, b, idle=30.0):
    """Copy bytes both ways until either side closes or idles (sockets may be SSLSockets)."""
    socks = [a, b]
    for s in socks:
        s.settimeout(idle)
    try:
        while True:
            ready = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select(socks, [], [], idle)
                if not ready:
                    return
            for s in ready:
                other = b if s is a else a
                try:
                    data = s.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                if not data:
                    return
                other.sendall(data)
    except (OSError, ssl.SSLError):
        return


def handle(conn, peer, cfg, minter):
    up = None
    try:
        dst = original_dst(conn)
        sni, _ = peek_client_hello(conn)
        up = socket.create_connection(dst, timeout=5)
        if sni is None or sni not in cfg["snis"]:
            log(f"{peer[0]}:{peer[1]} -> {dst[0]}:{dst[1]} sni={sni}: pass")
            relay(conn, up)
            return
        uctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        uctx.check_hostname = False
        uctx.verify_mode = ssl.CERT_NONE
        uctx.set_alpn_protocols(["http/1.1"])
        up = uctx.wrap_socket(up, server_hostname=sni)
        ctx = minter.context_for(up.getpeercert(binary_form=True))
        log(f"{peer[0]}:{peer[1]} -> {dst[0]}:{dst[1]} sni={sni}: intercepted")
        conn.settimeout(10)
        try:
            conn = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"{peer[0]}:{peer[1]} client handshake failed: {e}")
            return
        relay(conn, up)
    except Exception as e:  # one bad connection must not stop the proxy
        log(f"{peer}: {type(e).__name__}: {e}")
    finally:
        for s in (conn, up):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    cfg["snis"] = [s.lower() for s in cfg["snis"]]
    minter = Minter(cfg)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((cfg.get("listen", "0.0.0.0"), int(cfg["port"])))
    srv.listen(128)
    log(f"ready on :{cfg['port']}, intercepting {cfg['snis']}")
    while True:
        conn, peer = srv.accept()
        threading.Thread(target=handle, args=(conn, peer, cfg, minter), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass

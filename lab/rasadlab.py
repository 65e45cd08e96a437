"""rasad censorship lab: topology, servers, censors, scenarios, comparison.

Everything a run creates lives in network namespaces named rl<pid>-<role>
and in a temp dir /tmp/rasad-lab-<pid>.  Deleting the namespaces removes
every veth, route and netfilter rule of the run; killing the processes in
them (ip netns pids) removes the servers.  sweep() does both for runs whose
pid is gone.  No namespace is connected to the root namespace, so the lab has
no route out by construction.
"""
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(LAB_DIR)
PREFIX_RE = re.compile(r"^rl(\d+)-")

OPERATORS = ["opA", "opB"]
# per-operator fixed plan
OP = {
    "opA": {"ns": "a", "vif": "vethA", "vnet": "10.64.1", "upnet": "10.65.1", "resolver": "192.0.2.53", "asn": 64500},
    "opB": {"ns": "b", "vif": "vethB", "vnet": "10.64.2", "upnet": "10.65.2", "resolver": "192.0.2.54", "asn": 64501},
}
AUTH_DNS = "192.0.2.1"
PUBLIC_RESOLVER = "192.0.2.8"        # stand-in for 8.8.8.8, in the internet ns
BLOCKPAGE_IPS = ["10.10.34.34", "10.10.34.35", "10.10.34.36"]
PUBLIC_RANGES = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
DOH_IP = "192.0.2.9"                 # DNS-over-HTTPS resolver (dnsdist), in the internet ns
DOH_URL = f"https://{DOH_IP}/dns-query"
HELPER_IP, HELPER_PORT = "203.0.113.53", 8080   # control vantage (`rasad helper`), internet ns
HELPER_URL = f"http://{HELPER_IP}:{HELPER_PORT}/"

IRAN_BLOCKPAGE = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
                  '<title>M1-6\n</title></head><body><iframe src="http://10.10.34.34?type=Invalid Site&policy=MainPolicy" '
                  'style="width: 100%; height: 100%" scrolling="no" marginwidth="0" marginheight="0" frameborder="0" '
                  'vspace="0" hspace="0"></iframe></body></html>\n')

VERBOSE = os.environ.get("LAB_VERBOSE") == "1"


def log(*a):
    print("[lab]", *a, file=sys.stderr, flush=True)


def sh(cmd, check=True, ns=None, input=None, capture=False):
    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    if VERBOSE:
        log("$", " ".join(cmd))
    r = subprocess.run(cmd, input=input, text=True,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r.stdout if capture else r.returncode


# --------------------------------------------------------------------------
# leftovers of dead runs

def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
        return b"lab" in cmd or b"demo" in cmd
    except OSError:
        return False


def list_netns():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [l.split()[0] for l in out.splitlines() if l.strip()]


def kill_ns_procs(ns):
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    pids = [int(p) for p in out.split()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGTERM and pids:
            deadline = time.time() + 2
            while time.time() < deadline and any(_exists(p) for p in pids):
                time.sleep(0.05)


def _exists(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def destroy_prefix(prefix):
    for ns in list_netns():
        if ns.startswith(prefix):
            kill_ns_procs(ns)
    for ns in list_netns():
        if ns.startswith(prefix):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    m = PREFIX_RE.match(prefix)
    if m:
        shutil.rmtree(f"/tmp/rasad-lab-{m.group(1)}", ignore_errors=True)


def sweep():
    """Remove namespaces and temp dirs of lab runs whose process is gone."""
    dead = set()
    for ns in list_netns():
        m = PREFIX_RE.match(ns)
        if m and not _pid_alive(int(m.group(1))):
            dead.add(int(m.group(1)))
    for d in os.listdir("/tmp"):
        m = re.match(r"^rasad-lab-(\d+)$", d)
        if m and not _pid_alive(int(m.group(1))):
            dead.add(int(m.group(1)))
    for pid in sorted(dead):
        log(f"sweeping leftovers of dead run {pid}")
        destroy_prefix(f"rl{pid}-")
    return dead


def preflight():
    """Return None if the lab can run here, else a reason to skip."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "nft", "iptables", "nginx", "dnsmasq", "openssl"):
        if not shutil.which(tool):
            return f"missing tool: {tool}"
    probe = f"rlprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if r.returncode != 0:
        return "cannot create network namespaces: " + r.stderr.decode().strip()
    subprocess.run(["ip", "netns", "del", probe])
    return None


# --------------------------------------------------------------------------
# sites

def load_sites(extra=()):
    with open(os.path.join(LAB_DIR, "sites.toml"), "rb") as f:
        sites = tomllib.load(f)["site"]
    byhost = {s["host"]: dict(s) for s in sites}
    for s in extra:
        byhost[s["host"]] = dict(s)
    for s in byhost.values():
        s.setdefault("behaviour", "ok")
        s.setdefault("where", "internet")
    return list(byhost.values())


# --------------------------------------------------------------------------
# the lab

class Lab:
    def __init__(self, sites, pid=None):
        self.pid = pid or os.getpid()
        self.prefix = f"rl{self.pid}-"
        self.tmp = f"/tmp/rasad-lab-{self.pid}"
        self.sites = sites
        self.procs = []
        self.censors = {op: [] for op in OPERATORS}
        self.nfq = {}
        self.mitm = {}
        self.helper = None
        self.doh = False

    def ns(self, role):
        return self.prefix + role

    # ---- topology
    def up(self):
        os.makedirs(self.tmp, exist_ok=True)
        os.chmod(self.tmp, 0o755)
        roles = ["v", "a", "b", "gw", "hop", "inet"]
        for r in roles:
            sh(["ip", "netns", "add", self.ns(r)])
            sh(["ip", "link", "set", "lo", "up"], ns=self.ns(r))
            for k, v in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                         ("net.ipv4.conf.default.rp_filter", "0"),
                         ("net.ipv6.conf.all.disable_ipv6", "1")):
                sh(["sysctl", "-qw", f"{k}={v}"], ns=self.ns(r), check=False)
        V = self.ns("v")
        for op in OPERATORS:
            p = OP[op]
            O = self.ns(p["ns"])
            self.veth(V, p["vif"], f"{p['vnet']}.2/24", O, "down0", f"{p['vnet']}.1/24")
            self.veth(O, "up0", f"{p['upnet']}.2/24", self.ns("gw"), op, f"{p['upnet']}.1/24")
            sh(["ip", "addr", "add", p["resolver"] + "/32", "dev", "lo"], ns=O)
            sh(["ip", "route", "add", "default", "via", f"{p['upnet']}.1"], ns=O)
            sh(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"], ns=O, check=False)
            metric = "100" if op == "opA" else "200"
            sh(["ip", "route", "add", "default", "via", f"{p['vnet']}.1", "dev", p["vif"], "metric", metric], ns=V)
            G = self.ns("gw")
            sh(["ip", "route", "add", f"{p['vnet']}.0/24", "via", f"{p['upnet']}.2"], ns=G)
            sh(["ip", "route", "add", p["resolver"] + "/32", "via", f"{p['upnet']}.2"], ns=G)
        G, H, I = self.ns("gw"), self.ns("hop"), self.ns("inet")
        self.veth(G, "hop0", "10.66.0.1/24", H, "gw0", "10.66.0.2/24")
        self.veth(H, "inet0", "10.67.0.1/24", I, "hop0", "10.67.0.2/24")
        sh(["ip", "route", "add", "default", "via", "10.66.0.2"], ns=G)
        for net in ("10.64.0.0/14", "10.10.34.0/24", "198.51.100.0/24", "192.0.2.52/30"):
            sh(["ip", "route", "add", net, "via", "10.66.0.1"], ns=H)
        for net in ("203.0.113.0/24", "192.0.2.0/24"):
            sh(["ip", "route", "add", net, "via", "10.67.0.2"], ns=H)
        for net in ("10.0.0.0/8", "198.51.100.0/24", "192.0.2.52/30"):
            sh(["ip", "route", "add", net, "via", "10.67.0.1"], ns=I)
        # hosts
        for ip in BLOCKPAGE_IPS:
            sh(["ip", "addr", "add", ip + "/32", "dev", "lo"], ns=G)
        for ip in (AUTH_DNS, PUBLIC_RESOLVER, DOH_IP, HELPER_IP):
            sh(["ip", "addr", "add", ip + "/32", "dev", "lo"], ns=I)
        seen = set()
        for s in self.sites:
            for ip in s["ips"]:
                if ip in seen:
                    continue
                seen.add(ip)
                sh(["ip", "addr", "add", ip + "/32", "dev", "lo"], ns=G if s["where"] == "domestic" else I)
        self.make_certs()
        self.start_servers()
        for op in OPERATORS:
            self.apply_censors(op, [])

    def veth(self, ns1, if1, addr1, ns2, if2, addr2):
        sh(["ip", "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2])
        for ns, ifn, addr in ((ns1, if1, addr1), (ns2, if2, addr2)):
            sh(["ip", "addr", "add", addr, "dev", ifn], ns=ns)
            sh(["ip", "link", "set", ifn, "up"], ns=ns)
            sh(["ethtool", "-K", ifn, "gro", "off", "gso", "off", "tso", "off"], ns=ns, check=False)

    def down(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
        destroy_prefix(self.prefix)

    def spawn(self, role, cmd, name):
        logf = open(os.path.join(self.tmp, name + ".log"), "w")
        full = ["ip", "netns", "exec", self.ns(role)] + cmd
        if VERBOSE:
            log("spawn", " ".join(full))
        p = subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    # ---- certificates
    def make_certs(self):
        d = os.path.join(self.tmp, "pki")
        os.makedirs(d, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        sh(["openssl", "req", "-x509"] + ec + ["-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
            "-days", "3650", "-subj", "/O=Rasad Lab/CN=Rasad Lab Root CA"])
        sh(["openssl", "req", "-x509"] + ec + ["-keyout", f"{d}/national.key", "-out", f"{d}/national.pem",
            "-days", "3650", "-subj", "/O=National Trust Network/CN=National Root CA"])
        self.ca_file = f"{d}/ca.pem"
        byip = {}
        for s in self.sites:
            for ip in s["ips"]:
                byip.setdefault(ip, []).append(s)
        self.ip_sites = byip
        for ip, ss in byip.items():
            names = [s["host"] for s in ss]
            beh = ss[0]["behaviour"]
            if beh == "wrongname":
                names = ["other.invalid"]
            days = "-1" if beh == "expired" else "825"
            self.leaf(d, ip, names, "ca", days)
        self.leaf(d, "doh", ["IP:" + DOH_IP], "ca")

    def leaf(self, d, stem, names, ca, days="825"):
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        sh(["openssl", "req", "-new"] + ec + ["-keyout", f"{d}/{stem}.key", "-out", f"{d}/{stem}.csr",
            "-subj", f"/CN={names[0].removeprefix('IP:')}"])
        with open(f"{d}/{stem}.ext", "w") as f:   # names: DNS names, or "IP:<address>"
            f.write("subjectAltName=" + ",".join(n if n.startswith("IP:") else "DNS:" + n for n in names) + "\n")
        sh(["openssl", "x509", "-req", "-in", f"{d}/{stem}.csr", "-CA", f"{d}/{ca}.pem", "-CAkey", f"{d}/{ca}.key",
            "-CAcreateserial", "-days", days, "-extfile", f"{d}/{stem}.ext", "-out", f"{d}/{stem}.pem"])
        for ext in ("key", "pem"):
            os.chmod(f"{d}/{stem}.{ext}", 0o644)

    # ---- servers
    def nginx_conf(self, name, servers):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        conf = f"""daemon off;
master_process on;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
  uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
  default_type text/html;
  server_tokens off;
  keepalive_timeout 5;
{servers}
}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        return path

    def start_servers(self):
        pki = os.path.join(self.tmp, "pki")
        srv = []
        dom = []
        for ip, ss in self.ip_sites.items():
            beh = ss[0]["behaviour"]
            if beh == "down":
                continue
            if beh == "large":
                root = os.path.join(self.tmp, "www-large")
                os.makedirs(root, exist_ok=True)
                with open(os.path.join(root, "index.html"), "w") as f:
                    f.write("<html><title>large</title><body>" + "x" * (1 << 20) + "</body></html>\n")
                body = f"root {root};"
            elif beh.startswith("status:"):
                code = beh.split(":")[1]
                body = f"return {code} 'status {code} from {ss[0]['host']}\\n';"
            else:
                body = f"return 200 '<html><title>{ss[0]['host']}</title><body>hello from {ss[0]['host']}</body></html>\\n';"
            block = f"""  server {{
    listen {ip}:80; listen {ip}:443 ssl;
    server_name _;
    ssl_certificate {pki}/{ip}.pem; ssl_certificate_key {pki}/{ip}.key;
    location / {{ {body} }}
  }}
"""
            (dom if ss[0]["where"] == "domestic" else srv).append(block)
        # blockpage server (national side)
        bp = IRAN_BLOCKPAGE.replace("'", "\\'").replace("\n", "\\n")
        for ip in BLOCKPAGE_IPS:
            dom.append(f"""  server {{
    listen {ip}:80;
    server_name _;
    location / {{ add_header Connection close; return 403 '{bp}'; }}
  }}
""")
        c1 = self.nginx_conf("nginx-inet", "".join(srv))
        c2 = self.nginx_conf("nginx-gw", "".join(dom))
        self.spawn("inet", ["nginx", "-c", c1], "nginx-inet")
        self.spawn("gw", ["nginx", "-c", c2], "nginx-gw")
        # authoritative DNS for the lab names (+ the foreign public resolver stand-in)
        args = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
                f"--listen-address={AUTH_DNS},{PUBLIC_RESOLVER}",
                "--pid-file=", "--log-facility=-", "--user=root", "--local-ttl=60", "--cache-size=0",
                "--local=/#/"]
        if VERBOSE:
            args.append("--log-queries")
        names = {}
        for s in self.sites:
            names.setdefault(s["host"], []).extend(s["ips"])
        for host, ips in names.items():
            for ip in ips:   # several records = DNS load balancing (all returned, order rotates)
                args.append(f"--host-record={host},{ip}")
        self.spawn("inet", args, "dns-auth")
        # DNS-over-HTTPS resolver: dnsdist (Debian's) forwarding to the authoritative server
        dd = os.path.join(self.tmp, "dnsdist")
        os.makedirs(dd, exist_ok=True)
        with open(os.path.join(dd, "dnsdist.conf"), "w") as f:
            f.write(f"""-- generated by lab/rasadlab.py
setSecurityPollSuffix("")          -- no version polling (it would query secpoll.powerdns.com)
setLocal("{DOH_IP}:53")            -- plain DNS on the same address (handy for dig)
addDOHLocal("{DOH_IP}:443", "{pki}/doh.pem", "{pki}/doh.key", "/dns-query")
newServer({{address="{AUTH_DNS}:53", name="auth", healthCheckMode="up"}})
""")
        self.doh = shutil.which("dnsdist") is not None
        if self.doh:
            self.spawn("inet", ["dnsdist", "--supervised", "--disable-syslog", "-C", os.path.join(dd, "dnsdist.conf")],
                       "dnsdist")
        else:
            log("WARNING: dnsdist not installed (apt-get install dnsdist): no DoH resolver in this lab; doh checks fail")
        # operator resolvers
        for op in OPERATORS:
            self.write_resolver_conf(op, [])
            self.spawn(OP[op]["ns"], [sys.executable, os.path.join(LAB_DIR, "censor", "resolver.py"),
                                      self.resolver_conf(op)], f"resolver-{op}")
        self.wait_ready()

    def resolver_conf(self, op):
        return os.path.join(self.tmp, f"resolver-{op}.json")

    def write_resolver_conf(self, op, rules):
        with open(self.resolver_conf(op), "w") as f:
            json.dump({"listen": [OP[op]["resolver"]], "upstream": AUTH_DNS, "rules": rules}, f)

    def wait_ready(self):
        deadline = time.time() + 10
        checks = [("inet", f"exec 3<>/dev/tcp/203.0.113.10/443"), ("gw", "exec 3<>/dev/tcp/10.10.34.34/80")]
        if self.doh:
            checks.append(("inet", f"exec 3<>/dev/tcp/{DOH_IP}/443"))
        for role, cmd in checks:
            while sh(["bash", "-c", cmd], ns=self.ns(role), check=False) != 0:
                if time.time() > deadline:
                    raise RuntimeError(f"server in {role} did not come up; see {self.tmp}/*.log")
                time.sleep(0.1)
        for op in OPERATORS:
            while not os.path.exists(self.resolver_conf(op)) or \
                    "ready" not in open(os.path.join(self.tmp, f"resolver-{op}.log")).read():
                if time.time() > deadline:
                    raise RuntimeError(f"resolver {op} did not come up")
                time.sleep(0.1)
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"server exited early: {p.args}; see {self.tmp}/*.log")

    # ---- censors
    def apply_censors(self, op, rules):
        """(Re)install operator op's censor: resolver policy, nft table, iptables rules, NFQUEUE."""
        from censors import build
        O = self.ns(OP[op]["ns"])
        self.censors[op] = rules
        plan = build(rules, op, self)
        sh(["nft", "delete", "table", "inet", "censor"], ns=O, check=False)
        for t in ("filter", "mangle", "nat"):
            sh(["iptables", "-t", t, "-F"], ns=O, check=False)
        sh(["nft", "-f", "-"], ns=O, input=plan["nft"])
        for rule in plan["iptables"]:
            sh(["iptables"] + rule, ns=O)
        self.write_resolver_conf(op, plan["resolver"])
        for p in self.procs:
            if p.args[-1] == self.resolver_conf(op) and p.poll() is None:
                p.send_signal(signal.SIGHUP)  # ip netns exec execs, so this is the resolver
        old = self.nfq.pop(op, None)
        if old and old.poll() is None:
            old.terminate()
            old.wait()
        if plan["nfq"]:
            conf = os.path.join(self.tmp, f"nfq-{op}.conf")
            with open(conf, "w") as f:
                f.write(plan["nfq"])
            self.nfq[op] = self.spawn(OP[op]["ns"], [nfq_binary(), conf], f"nfq-{op}")
            time.sleep(0.3)
        old = self.mitm.pop(op, None)
        if old and old.poll() is None:
            old.terminate()
            old.wait()
        if plan.get("mitm"):
            conf = os.path.join(self.tmp, f"mitm-{op}.json")
            with open(conf, "w") as f:
                json.dump(plan["mitm"], f)
            logname = f"mitm-{op}"
            self.mitm[op] = self.spawn(OP[op]["ns"], [sys.executable, "-u", os.path.join(LAB_DIR, "censor", "tls_mitm.py"),
                                                      conf], logname)
            wait_log(os.path.join(self.tmp, logname + ".log"), "ready", self.mitm[op], 10)
        for link in plan.get("link_down", []):
            sh(["ip", "link", "set", link, "down"], ns=self.ns("v"))
        for link in plan.get("link_up", []):
            sh(["ip", "link", "set", link, "up"], ns=self.ns("v"))
        time.sleep(0.1)


    # ---- what the lab offers, for tools and later issues (written to <tmp>/lab.json)
    def info(self):
        return {"prefix": self.prefix, "tmp": self.tmp, "vantage_ns": self.ns("v"), "internet_ns": self.ns("inet"),
                "ca_file": self.ca_file, "national_ca_file": os.path.join(self.tmp, "pki", "national.pem"),
                "public_ranges": PUBLIC_RANGES, "authoritative_dns": AUTH_DNS, "public_resolver": PUBLIC_RESOLVER,
                "doh_url": DOH_URL if self.doh else None, "doh_dns53": DOH_IP if self.doh else None,
                "operators": {op: {"interface": OP[op]["vif"], "resolver": OP[op]["resolver"]} for op in OPERATORS},
                "control_helper_url": HELPER_URL if self.helper is not None else None}

    def write_info(self):
        with open(os.path.join(self.tmp, "lab.json"), "w") as f:
            json.dump(self.info(), f, indent=1)

    # ---- control vantage: `rasad helper` in the internet namespace
    def start_helper(self, rasad):
        """Start `rasad helper` on HELPER_IP:HELPER_PORT if the binary has that subcommand.
        Returns None when started, else the reason it was not."""
        if not rasad or not os.access(rasad, os.X_OK):
            return f"{rasad} is not executable"
        r = subprocess.run([rasad, "helper", "--help"], capture_output=True, text=True)
        text = r.stdout + r.stderr
        if r.returncode != 0 or "--listen" not in text:
            return f"`{rasad} helper --help` failed or lacks --listen (subcommand not built yet?)"
        cmd = [rasad, "helper", "--listen", f"{HELPER_IP}:{HELPER_PORT}"]
        if "--allow-ranges" in text:
            cmd += ["--allow-ranges", ",".join(PUBLIC_RANGES)]
        elif "--allow" in text:
            for rng in PUBLIC_RANGES:
                cmd += ["--allow", rng]
        if "--resolver" in text:      # uncensored resolution: the foreign public resolver
            cmd += ["--resolver", PUBLIC_RESOLVER]
        if "--ca-file" in text:       # the lab's servers use the lab CA
            cmd += ["--ca-file", self.ca_file]
        self.helper = self.spawn("inet", cmd, "rasad-helper")
        deadline = time.time() + 10
        while sh(["bash", "-c", f"exec 3<>/dev/tcp/{HELPER_IP}/{HELPER_PORT}"], ns=self.ns("inet"), check=False) != 0:
            if self.helper.poll() is not None or time.time() > deadline:
                self.helper = None
                return f"`{' '.join(cmd)}` did not start listening; see {self.tmp}/rasad-helper.log"
            time.sleep(0.1)
        return None


def wait_log(path, word, proc, timeout):
    deadline = time.time() + timeout
    while True:
        try:
            if word in open(path).read():
                return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{proc.args} did not become ready; see {path}")
        time.sleep(0.05)


def nfq_binary():
    for cand in (os.environ.get("LAB_NFQ"), os.path.join(ROOT, "build", "lab", "nfq_censor"),
                 os.path.join(LAB_DIR, "censor", "nfq_censor")):
        if cand and os.access(cand, os.X_OK):
            return cand
    # not built by CMake: compile it ourselves (needs a C compiler and libnetfilter-queue-dev)
    src = os.path.join(LAB_DIR, "censor", "nfq_censor.c")
    out = "/tmp/rasad-lab-nfq/nfq_censor"
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc and os.path.exists("/usr/include/libnetfilter_queue/libnetfilter_queue.h"):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        r = subprocess.run([cc, "-O2", "-Wno-deprecated-declarations", "-o", out + ".tmp", src, "-lnetfilter_queue"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            os.replace(out + ".tmp", out)
            return out
    raise RuntimeError("this scenario needs the NFQUEUE censor (lab/censor/nfq_censor.c); "
                       "build it: cmake --build build --target nfq_censor (needs libnetfilter-queue-dev)")

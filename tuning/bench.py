#!/usr/bin/env python3
"""Runs the same bounded load against ringdns and the servers it is measured against, on
loopback. All servers run at once (idle ones cost nothing) and the runs are interleaved, run
i of each server before run i+1 of any, so that the drift of a noisy machine hits all alike:

- UDP and TCP: ringdns (io_uring and epoll drivers), Knot DNS, NSD, and for UDP a do-nothing
  responder (the kernel floor);
- DoT (dnsperf -m dot) and DoH (h2load; dnsperf's DoH mode miscounts answers when a server
  packs several HTTP/2 responses into one write): ringdns, Unbound serving the zone with
  auth-zone, and dnsdist answering from its packet cache in front of a backend;
- forwarding with cache hits, UDP and DoT: ringdns `forward` + `cache` against dnsdist's
  packet cache, both in front of the same backend (a ringdns pinned to the load tool's CPU,
  which after the warm-up sees no queries).

The server is pinned to CPU 0 and the load tool to CPU 1. On two cores the load tool, not the
server, limits the rate, so the figure that compares servers is the server's CPU time per
answered query: utime+stime of every process of the server's session, from /proc before and
after the run, divided by the answers the load tool counted. Each run is repeated (median and
spread reported). Latency (mean and p99) is measured in a separate run at a fixed rate, where
the tool logs every answer's latency.

Writes tuning/results/<date>.md and tuning/results/<date>.svg. Started by tuning/bench.
"""

import argparse
import base64
import datetime
import os
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RINGDNS = ROOT / "target" / "release" / "ringdns"
FLOOR = ROOT / "target" / "release" / "examples" / "floor"
ZONE = "bench.test"
# The same names signed by dnssec-signzone (ECDSA P-256, NSEC3 without salt or extra
# iterations, RFC 9276), for the DO=1 section.
SIGNED = "signed.test"
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = "0", "1"
NX_POOL = 1000  # NXDOMAIN names come from a fixed pool so that caches can answer them too


class Section:
    def __init__(self, title, load, port, refs, queries="queries", extra=()):
        self.title, self.load, self.port, self.refs = title, load, port, refs
        # The query file and the load tool's extra flags.
        self.queries, self.extra = queries, extra


# Each section is one kind of load; refs are the servers every result is divided by.
SECTIONS = {
    "udp": Section("UDP", "udp", "dns", ("floor", "knot")),
    "udp-do": Section(
        "UDP, DO=1, the zone signed (NSEC3)", "udp", "dns", ("knot", "nsd"), queries="signed_queries", extra=("-D",)
    ),
    "tcp": Section("TCP (persistent, pipelined connections)", "tcp", "dns", ("knot",)),
    "dot": Section("DoT", "dot", "dot", ("unbound", "dnsdist")),
    "doh": Section("DoH (HTTP/2, GET)", "doh", "doh", ("unbound", "dnsdist")),
    "fwd-udp": Section("Forwarding with cache hits, UDP", "udp", "dns", ("dnsdist",)),
    "fwd-dot": Section("Forwarding with cache hits, DoT", "dot", "dot", ("dnsdist",)),
}

# Issue 5's targets: ringdns CPU per query at most FACTOR x the reference's, in the same run.
TARGETS = [
    ("udp", "knot", 0.85),
    ("udp", "floor", 1.15),
    ("tcp", "knot", 0.8),
    ("dot", "unbound", 0.6),
    ("dot", "dnsdist", 1.0),
    ("doh", "unbound", 0.6),
    ("doh", "dnsdist", 1.0),
    ("fwd-udp", "dnsdist", 1.0),
    ("fwd-dot", "dnsdist", 1.0),
]


_given = set()


def free_port():
    """A port free for both UDP and TCP now, and not handed out before by this script."""
    import socket

    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            if port in _given:
                continue
            _given.add(port)
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


# ---------------------------------------------------------------- data


def write_zone(path, names, origin=ZONE):
    with open(path, "w") as f:
        f.write(f"$ORIGIN {origin}.\n$TTL 3600\n")
        f.write("@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
        for i in range(names):
            f.write(f"h{i} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if i % 4 == 0:
                f.write(f"h{i} AAAA 2001:db8::{i & 0xffff:x}\n")


def write_queries(path, names, count, seed=1, origin=ZONE):
    """About 75% A hits, 20% AAAA (hits for every 4th name, NODATA otherwise), 5% NXDOMAIN
    (from a pool of NX_POOL names)."""
    rnd = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(count):
            r = rnd.random()
            i = rnd.randrange(names)
            if r < 0.75:
                f.write(f"h{i}.{origin} A\n")
            elif r < 0.95:
                f.write(f"h{i - i % 4}.{origin} AAAA\n")
            else:
                f.write(f"nx{rnd.randrange(NX_POOL)}.{origin} A\n")


def write_uris(path, queries, limit=50_000):
    """DoH GET paths (RFC 8484 section 4.1: ID 0, base64url without padding) for h2load."""
    with open(queries) as src, open(path, "w") as f:
        for n, line in enumerate(src):
            if n == limit:
                break
            name, qtype = line.split()
            wire = struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 0)
            for label in name.rstrip(".").split("."):
                wire += bytes([len(label)]) + label.encode()
            wire += b"\0" + struct.pack(">HH", {"A": 1, "AAAA": 28}[qtype], 1)
            f.write("/dns-query?dns=" + base64.urlsafe_b64encode(wire).decode().rstrip("=") + "\n")


def write_certificate(work):
    """A self-signed P-256 certificate for 127.0.0.1; the load tools do not verify it."""
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={ZONE}",
         "-addext", f"subjectAltName=DNS:{ZONE},IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


# ---------------------------------------------------------------- servers


def write_signed_zone(work, names):
    """The zone of `names` names as SIGNED, signed with a new KSK and ZSK: its path."""
    d = work / "signed"
    d.mkdir(exist_ok=True)
    unsigned = d / "db"
    write_zone(unsigned, names, SIGNED)
    keys = []
    for extra in (["-f", "KSK"], []):
        r = subprocess.run(["dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", *extra, SIGNED], cwd=d, capture_output=True, text=True, check=True)
        keys.append(r.stdout.strip())
    with open(unsigned, "a") as f:
        for k in keys:
            f.write((d / f"{k}.key").read_text())
    signed = d / "db.signed"
    subprocess.run(
        ["dnssec-signzone", "-q", "-o", SIGNED, "-N", "keep", "-3", "-", "-H", "0", "-f", str(signed), str(unsigned), *keys],
        cwd=d,
        capture_output=True,
        check=True,
    )
    return signed


class Env:
    """What every server of one bench shares: the work directory, the certificate, the backend,
    the signed zone."""

    def __init__(self, work, cert, key):
        self.work, self.cert, self.key = work, cert, key
        self.backend_port = None
        self.signed_zone = None


class Server:
    """A server under test, started in its own session so all its processes are measured.
    `full` is false for the zone-loading runs, which need plain DNS only."""

    name = "?"
    sections = ("udp", "tcp")
    measures_load = False
    cpu = SERVER_CPU

    def __init__(self, env, zone_path, full=True):
        self.env = env
        self.work = env.work
        self.zone_path = zone_path
        self.full = full
        self.ports = {"dns": free_port(), "dot": free_port(), "doh": free_port()}
        self.port = self.ports["dns"]
        self.proc = None

    def command(self):
        raise NotImplementedError

    def start(self):
        log = open(self.work / f"{self.slug()}.log", "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.cpu] + self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()

    def slug(self):
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower())

    def after_start(self):
        """Re-pin every thread (Knot moves its UDP worker to CPU 0 itself; others may spawn)."""
        for pid in self.pids():
            subprocess.run(["taskset", "-a", "-p", "-c", self.cpu, str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {(self.work / (self.slug() + '.log')).read_text()[-2000:]}")
            r = subprocess.run(
                ["dig", "@127.0.0.1", "-p", str(self.port), f"h0.{ZONE}", "A", "+short", "+time=1", "+tries=1"],
                capture_output=True,
                text=True,
            )
            # dig prints errors to stdout too: only an address means an answer.
            if re.search(r"^\d+\.\d+\.\d+\.\d+$", r.stdout, re.M):
                return time.monotonic() - self.started
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready in {timeout} s")

    def pids(self):
        sid = self.proc.pid
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:  # session id
                out.append(int(d))
        return out

    def cpu_seconds(self):
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime of all its threads
        return total / TICK

    def rss_mib(self):
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Ringdns(Server):
    """Authoritative for the zone over UDP, TCP, DoT and DoH, and for the signed one."""

    sections = ("udp", "udp-do", "tcp", "dot", "doh")
    measures_load = True

    def __init__(self, env, zone_path, driver, full=True):
        super().__init__(env, zone_path, full)
        self.driver = driver
        self.name = f"ringdns ({driver})"

    def blocks(self):
        """(server block key, directives) of the Corefile."""
        file = f"file {self.zone_path} {{\n        reload 0\n    }}"
        tls = f"tls {self.env.cert} {self.env.key}"
        out = [(f"{ZONE}:{self.ports['dns']}", [file])]
        if self.full:
            out += [(f"tls://{ZONE}:{self.ports['dot']}", [tls, file]), (f"https://{ZONE}:{self.ports['doh']}", [tls, file])]
            if self.env.signed_zone:
                out.append((f"{SIGNED}:{self.ports['dns']}", [f"file {self.env.signed_zone} {{\n        reload 0\n    }}"]))
        return out

    def command(self):
        conf = self.work / f"Corefile-{self.slug()}"
        text = ""
        for key, directives in self.blocks():
            text += f"{key} {{\n    bind 127.0.0.1\n" + "".join(f"    {d}\n" for d in directives) + "}\n"
        conf.write_text(text)
        return [str(RINGDNS), "--conf", str(conf), "--shards", "1", "--driver", self.driver, "--log-level", "warn"]


class RingdnsMetrics(Ringdns):
    """The same zone with `prometheus` on: every query timed and counted (issue 12's cost)."""

    sections = ("udp", "tcp")
    measures_load = False

    def __init__(self, env, zone_path, driver, full=True):
        super().__init__(env, zone_path, driver, False)
        self.name = f"ringdns +prometheus ({driver})"
        self.ports["metrics"] = free_port()

    def blocks(self):
        (key, directives), *rest = super().blocks()
        return [(key, directives + [f"prometheus 127.0.0.1:{self.ports['metrics']}"])] + rest


class RingdnsRrl(Ringdns):
    """The same zone with `rrl` on, generous enough that nothing is limited: every reply
    classified and counted against its account (issue 15's cost). dnsperf's one socket is one
    shard's; its /24 spreads over one account per name asked."""

    sections = ("udp",)
    measures_load = False

    def __init__(self, env, zone_path, driver, full=True):
        super().__init__(env, zone_path, driver, False)
        self.name = f"ringdns +rrl ({driver})"

    def blocks(self):
        (key, directives), *rest = super().blocks()
        rrl = "rrl {\n        responses-per-second 10000000\n        slip-ratio 2\n    }"
        return [(key, directives + [rrl])] + rest


class RingdnsBackend(Ringdns):
    """The authoritative upstream of the forwarders, on the load tool's CPU."""

    cpu = CLIENT_CPU

    def __init__(self, env, zone_path):
        super().__init__(env, zone_path, "io-uring", full=False)
        self.name = "backend"


class RingdnsForward(Ringdns):
    """Forwards everything to the backend and caches (large enough to hold every name)."""

    sections = ("fwd-udp", "fwd-dot")
    measures_load = False

    def __init__(self, env, zone_path, driver, full=True):
        super().__init__(env, zone_path, driver, full)
        self.name = f"ringdns forward+cache ({driver})"

    def blocks(self):
        fwd = f"forward . 127.0.0.1:{self.env.backend_port}"
        cache = "cache {\n        success 100000\n        denial 100000\n    }"
        tls = f"tls {self.env.cert} {self.env.key}"
        return [(f".:{self.ports['dns']}", [fwd, cache]), (f"tls://.:{self.ports['dot']}", [tls, fwd, cache])]


class Knot(Server):
    name = "Knot DNS"
    sections = ("udp", "udp-do", "tcp")
    measures_load = True

    def command(self):
        d = self.work / "knot"
        d.mkdir(exist_ok=True)
        conf = d / "knot.conf"
        conf.write_text(
            f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{d}"
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {ZONE}
    file: "{self.zone_path}"
"""
            + (f'  - domain: {SIGNED}\n    file: "{self.env.signed_zone}"\n' if self.full and self.env.signed_zone else "")
        )
        return ["knotd", "-c", str(conf)]


class Nsd(Server):
    name = "NSD"
    sections = ("udp", "udp-do", "tcp")
    measures_load = True

    def command(self):
        d = self.work / "nsd"
        d.mkdir(exist_ok=True)
        conf = d / "nsd.conf"
        conf.write_text(
            f"""server:
    ip-address: 127.0.0.1@{self.port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    verbosity: 0
    do-ip6: no
    tcp-count: 1000
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: "{self.zone_path}"
"""
            + (f'zone:\n    name: {SIGNED}\n    zonefile: "{self.env.signed_zone}"\n' if self.full and self.env.signed_zone else "")
        )
        return ["nsd", "-d", "-c", str(conf)]


class Unbound(Server):
    """Serves the zone itself (auth-zone) over UDP, TCP, DoT and DoH; one thread."""

    name = "Unbound"
    sections = ("dot", "doh")

    def command(self):
        conf = self.work / "unbound.conf"
        p = self.ports
        conf.write_text(
            f"""server:
    interface: 127.0.0.1@{p['dns']}
    interface: 127.0.0.1@{p['dot']}
    interface: 127.0.0.1@{p['doh']}
    tls-port: {p['dot']}
    https-port: {p['doh']}
    tls-service-key: "{self.env.key}"
    tls-service-pem: "{self.env.cert}"
    num-threads: 1
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{self.work}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    do-ip6: no
    module-config: "iterator"
    auto-trust-anchor-file: ""
    local-zone: "test." nodefault
    so-reuseport: no
    incoming-num-tcp: 100
auth-zone:
    name: "{ZONE}"
    zonefile: "{self.zone_path}"
    for-downstream: yes
    for-upstream: no
    fallback-enabled: no
"""
        )
        return ["unbound", "-d", "-c", str(conf)]


class Dnsdist(Server):
    """Answers from its packet cache in front of the backend, over UDP, DoT and DoH."""

    name = "dnsdist (packet cache)"
    sections = ("dot", "doh", "fwd-udp", "fwd-dot")

    def command(self):
        conf = self.work / "dnsdist.conf"
        p, e = self.ports, self.env
        conf.write_text(
            f"""setSecurityPollSuffix("")
setLocal("127.0.0.1:{p['dns']}")
addTLSLocal("127.0.0.1:{p['dot']}", "{e.cert}", "{e.key}")
addDOHLocal("127.0.0.1:{p['doh']}", "{e.cert}", "{e.key}", "/dns-query")
newServer({{address="127.0.0.1:{e.backend_port}", checkName="{ZONE}.", checkType="SOA"}})
getPool(""):setCache(newPacketCache(1000000, {{maxTTL=86400, minTTL=0}}))
"""
        )
        return ["dnsdist", "--supervised", "--disable-syslog", "-C", str(conf)]


class Floor(Server):
    name = "floor (no DNS work)"
    sections = ("udp",)

    def command(self):
        return [str(FLOOR), f"127.0.0.1:{self.port}"]

    def wait_ready(self, timeout=10):
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("floor exited")
        return 0.0


KINDS = {
    "floor": lambda env, zone, full: Floor(env, zone, full),
    "ringdns-io-uring": lambda env, zone, full: Ringdns(env, zone, "io-uring", full),
    "ringdns-legacy": lambda env, zone, full: Ringdns(env, zone, "legacy", full),
    "knot": lambda env, zone, full: Knot(env, zone, full),
    "nsd": lambda env, zone, full: Nsd(env, zone, full),
    "unbound": lambda env, zone, full: Unbound(env, zone, full),
    "dnsdist": lambda env, zone, full: Dnsdist(env, zone, full),
    "ringdns-prom-io-uring": lambda env, zone, full: RingdnsMetrics(env, zone, "io-uring", full),
    "ringdns-prom-legacy": lambda env, zone, full: RingdnsMetrics(env, zone, "legacy", full),
    "ringdns-rrl-io-uring": lambda env, zone, full: RingdnsRrl(env, zone, "io-uring", full),
    "ringdns-rrl-legacy": lambda env, zone, full: RingdnsRrl(env, zone, "legacy", full),
    "ringdns-fwd-io-uring": lambda env, zone, full: RingdnsForward(env, zone, "io-uring", full),
    "ringdns-fwd-legacy": lambda env, zone, full: RingdnsForward(env, zone, "legacy", full),
}


# ---------------------------------------------------------------- load


def dnsperf(port, queries, mode, duration, extra=()):
    cmd = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(duration)]
    cmd += ["-c", "4", "-q", "200"] if mode == "udp" else ["-m", mode, "-c", "8", "-q", "400"]
    cmd += list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 3 + 60).stdout


def parse_dnsperf(out):
    def num(pattern, cast=float, default=0):
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else default

    return {
        "completed": num(r"Queries completed:\s+(\d+)", int),
        "lost": num(r"Queries lost:\s+(\d+)", int),
        "qps": num(r"Queries per second:\s+([\d.]+)"),
    }


def h2load(port, uris, duration, extra=()):
    cmd = ["taskset", "-c", CLIENT_CPU, "h2load", "-i", str(uris), "-B", f"https://127.0.0.1:{port}", "-D", str(duration), "-t", "1"]
    cmd += list(extra) or ["-c", "8", "-m", "32"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 3 + 60).stdout


def parse_h2load(out):
    m = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    q = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    return {
        "completed": int(m.group(1)) if m else 0,
        "lost": sum(int(x) for x in m.groups()[1:]) if m else 0,
        "qps": float(q.group(1)) if q else 0.0,
    }


def one_load(server, section, files, duration):
    port = server.ports[section.port]
    if section.load == "doh":
        return parse_h2load(h2load(port, files["uris"], duration))
    return parse_dnsperf(dnsperf(port, files[section.queries], section.load, duration, section.extra))


def throughput_run(server, section, files, duration):
    one_load(server, section, files, 2)  # warm-up (caches, connections)
    c0 = server.cpu_seconds()
    r = one_load(server, section, files, duration)
    c1 = server.cpu_seconds()
    r["cpu_us"] = (c1 - c0) * 1e6 / max(r["completed"], 1)
    return r


def latency_run(server, section, files, rate, seconds=5):
    """Mean and p99 in ms at a fixed rate, from every answer's latency."""
    port = server.ports[section.port]
    if section.load == "doh":
        log = server.work / "h2load-latency.log"
        h2load(port, files["uris"], seconds, ["-c", "4", "-m", "8", f"--rps={rate // 4}", f"--log-file={log}"])
        lat = sorted(int(line.split()[2]) / 1e6 for line in log.read_text().splitlines() if line.count("\t") == 2)
    else:
        out = dnsperf(port, files[section.queries], section.load, seconds, [*section.extra, "-Q", str(rate), "-v"])
        lat = sorted(float(line.split()[-1]) for line in out.splitlines() if line.startswith("> "))
    if not lat:
        return None, None
    return statistics.fmean(lat) * 1000, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


# ---------------------------------------------------------------- report


def med(values):
    return statistics.median(values)


def spread(values):
    return (max(values) - min(values)) / 2


def svg_chart(rows, path):
    """Horizontal bars: server CPU µs per query, one group per section."""
    bars = [(f"{label}: {name}", cpu, name.startswith("ringdns")) for label, name, cpu in rows]
    width, left, bar_h, gap = 860, 380, 18, 6
    top = 30
    height = top + len(bars) * (bar_h + gap) + 30
    peak = max((c for _, c, _ in bars), default=1) or 1
    scale = (width - left - 80) / peak
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="18" font-size="14">Server CPU per answered query (µs, median; lower is better)</text>',
    ]
    for i, (label, cpu, ours) in enumerate(bars):
        y = top + i * (bar_h + gap)
        colour = "#c0392b" if ours else "#7f8c8d"
        parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{label}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{cpu * scale:.1f}" height="{bar_h}" fill="{colour}"/>')
        parts.append(f'<text x="{left + cpu * scale + 6:.1f}" y="{y + 13}">{cpu:.2f}</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=10_000, help="names in the zone for the load runs")
    ap.add_argument("--big", type=int, default=1_000_000, help="names in the zone for the memory and load-time runs (0: skip)")
    ap.add_argument("--queries", type=int, default=200_000, help="lines in the query file")
    ap.add_argument("--duration", type=int, default=10, help="seconds per throughput run")
    ap.add_argument("--runs", type=int, default=3, help="repeats of each throughput run")
    ap.add_argument("--rate", type=int, default=20_000, help="queries per second of the latency runs")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"any of {','.join(SECTIONS)}")
    ap.add_argument("--servers", default=",".join(KINDS), help=f"any of {','.join(KINDS)}")
    ap.add_argument("--out", default=str(ROOT / "tuning" / "results"))
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("tuning/bench needs two CPUs (server on CPU 0, load tool on CPU 1)")
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    sections = [t.strip() for t in args.sections.split(",") if t.strip()]
    for name, known in ((kinds, KINDS), (sections, SECTIONS)):
        unknown = [x for x in name if x not in known]
        if unknown:
            sys.exit(f"tuning/bench: unknown {', '.join(unknown)}; known: {', '.join(known)}")

    work = Path(tempfile.mkdtemp(prefix="ringdns-bench-"))
    zone = work / "bench.test.zone"
    files = {"queries": work / "queries.txt", "uris": work / "uris.txt", "signed_queries": work / "signed-queries.txt"}
    write_zone(zone, args.names)
    write_queries(files["queries"], args.names, args.queries)
    write_uris(files["uris"], files["queries"])
    env = Env(work, *write_certificate(work))
    if "udp-do" in sections:
        env.signed_zone = write_signed_zone(work, args.names)
        write_queries(files["signed_queries"], args.names, args.queries, origin=SIGNED)

    # Every server runs at once (idle ones cost nothing) and the runs are interleaved: run 1
    # of each server, then run 2 of each... so drift of this noisy machine hits all alike.
    results = {}  # (section, kind) -> {"name", "runs", "mean_ms", "p99_ms"}
    servers = {kind: KINDS[kind](env, zone, True) for kind in kinds}
    servers = {k: s for k, s in servers.items() if any(t in s.sections for t in sections)}
    started = []
    try:
        if any(k == "dnsdist" or k.startswith("ringdns-fwd") for k in servers):
            backend = RingdnsBackend(env, zone)
            backend.start()
            started.append(backend)
            backend.wait_ready()
            env.backend_port = backend.port
        for s in servers.values():
            s.start()
            started.append(s)
            s.wait_ready()
            s.after_start()
        for t in sections:
            section = SECTIONS[t]
            here = [(k, s) for k, s in servers.items() if t in s.sections]
            for k, s in here:
                results[(t, k)] = {"name": s.name, "runs": []}
            for _ in range(args.runs):
                for k, s in here:
                    results[(t, k)]["runs"].append(throughput_run(s, section, files, args.duration))
            for k, s in here:
                v = results[(t, k)]
                v["mean_ms"], v["p99_ms"] = latency_run(s, section, files, args.rate)
                cpu = [r["cpu_us"] for r in v["runs"]]
                print(f"{t:7} {s.name:36} cpu/query {med(cpu):6.2f} µs ±{spread(cpu):.2f}  qps {med([r['qps'] for r in v['runs']]):9.0f}  lost {sum(r['lost'] for r in v['runs'])}", flush=True)
    finally:
        for s in started:
            s.stop()
    loads = []
    if args.big:
        big = work / "big.zone"
        write_zone(big, args.big)
        for kind in kinds:
            if not KINDS[kind](env, big, False).measures_load:
                continue
            times, rss = [], []
            for _ in range(args.runs):
                s = KINDS[kind](env, big, False)
                s.start()
                try:
                    times.append(s.wait_ready())
                    time.sleep(1)
                    rss.append(s.rss_mib())
                finally:
                    s.stop()
            loads.append((kind, s.name, med(times), spread(times), med(rss)))
            print(f"load    {s.name:36} {med(times):6.2f} s ±{spread(times):.2f}  RSS {med(rss):7.1f} MiB", flush=True)
    report(args, sections, results, loads, versions())
    shutil.rmtree(work, ignore_errors=True)


def versions():
    out = {}
    for tool, cmd in (
        ("knot", ["knotd", "--version"]),
        ("nsd", ["nsd", "-v"]),
        ("unbound", ["unbound", "-V"]),
        ("dnsdist", ["dnsdist", "--version"]),
        ("dnsperf", ["dnsperf", "-h"]),
        ("h2load", ["h2load", "--version"]),
    ):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            first = ((r.stdout + r.stderr).strip().splitlines() or ["?"])[0]
            out[tool] = first if tool in first.lower() else f"{tool} {first}"
        except OSError:
            out[tool] = "not installed"
    return out


def cpu_of(results, section, kind):
    v = results.get((section, kind))
    return med([r["cpu_us"] for r in v["runs"]]) if v else None


def short(kind):
    return {"floor": "floor", "knot": "Knot", "nsd": "NSD", "unbound": "Unbound", "dnsdist": "dnsdist"}.get(kind, kind)


def report(args, sections, results, loads, versions):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# tuning/bench {stamp}",
        "",
        f"ringdns {commit}; {'; '.join(versions[k] for k in ('knot', 'nsd', 'unbound', 'dnsdist', 'h2load'))}; "
        f"{os.cpu_count()} CPUs ({platform_cpu()}); kernel {os.uname().release}.",
        "",
        f"Zone of {args.names} names (A for each, AAAA for every 4th); {args.queries} queries, about 75% A, 20% AAAA,"
        f" 5% NXDOMAIN (from {NX_POOL} names). Server on CPU 0, load tool on CPU 1: dnsperf for UDP (`-c 4 -q 200`),"
        " TCP and DoT (`-c 8 -q 400`), h2load for DoH (`-c 8 -m 32`, GET, the first 50k queries)."
        f" {args.runs} runs of {args.duration} s each after a 2 s warm-up, interleaved across servers (all run"
        " at once; idle ones cost nothing): median, ± half the range."
        f" Latency: one {args.rate} QPS run of 5 s.",
        "",
        "Server CPU per query is the figure that compares servers (the load tool is the limit of QPS here)."
        " Unbound serves the zone with `auth-zone`; dnsdist answers from its packet cache in front of a"
        " backend (a ringdns on CPU 1 that, after the warm-up, sees no queries); the forwarding sections"
        " put ringdns `forward` + `cache` in front of the same backend. The DO=1 section asks the same mix"
        " with dnsperf `-D` of a copy of the zone signed by dnssec-signzone (ECDSA P-256, NSEC3, no salt, no"
        " extra iterations): RRSIGs with every answer, NSEC3 proofs with every NODATA and NXDOMAIN.",
        "",
    ]
    chart = []
    for t in sections:
        section = SECTIONS[t]
        rows = [(kind, v) for (tt, kind), v in results.items() if tt == t]
        if not rows:
            continue
        refs = [(r, cpu_of(results, t, r)) for r in section.refs]
        lines += [
            f"## {section.title}",
            "",
            "| server | CPU µs/query | " + " | ".join(f"× {short(r)}" for r, _ in refs) + " | QPS | lost | mean ms | p99 ms |",
            "| --- | --- | " + " | ".join("---" for _ in refs) + " | --- | --- | --- | --- |",
        ]
        for kind, v in rows:
            cpu = [r["cpu_us"] for r in v["runs"]]
            m = med(cpu)
            chart.append((section.title, v["name"], m))
            lines.append(
                f"| {v['name']} | {m:.2f} ± {spread(cpu):.2f} | "
                + " | ".join(fmt_ratio(m, base) for _, base in refs)
                + f" | {med([r['qps'] for r in v['runs']]):.0f} | {sum(r['lost'] for r in v['runs'])} | "
                f"{fmt(v['mean_ms'])} | {fmt(v['p99_ms'])} |"
            )
        lines.append("")
    if loads:
        lines += [
            f"## Loading a zone of {args.big} names",
            "",
            f"Median of {args.runs} starts; RSS one second after the first answer.",
            "",
            "| server | time to first answer | RSS |",
            "| --- | --- | --- |",
        ]
        for _, name, took, dev, rss in loads:
            lines.append(f"| {name} | {took:.2f} ± {dev:.2f} s | {rss:.0f} MiB |")
        lines.append("")
    lines += targets(results, loads)
    svg = out / f"{stamp}.svg"
    svg_chart(chart, svg)
    lines.append(f"![CPU per query]({svg.name})")
    md = out / f"{stamp}.md"
    md.write_text("\n".join(lines) + "\n")
    print(f"wrote {md} and {svg}")


def targets(results, loads):
    """Issue 5's targets, each as ratio and verdict for every ringdns variant measured."""
    ours = sorted({k for (_, k) in results if k.startswith("ringdns")} | {k for k, *_ in loads if k.startswith("ringdns")})
    if not ours:
        return []
    drivers = [d for d in ("io-uring", "legacy") if any(k.endswith(d) for k in ours)]
    lines = ["## Targets", "", "| target | " + " | ".join(f"ringdns {d}" for d in drivers) + " |", "| --- |" + " --- |" * len(drivers)]

    def variant(section, driver):
        prefix = "ringdns-fwd-" if section.startswith("fwd") else "ringdns-"
        return prefix + driver

    for t, ref, factor in TARGETS:
        base = cpu_of(results, t, ref)
        if base is None:
            continue
        cells = []
        for d in drivers:
            m = cpu_of(results, t, variant(t, d))
            cells.append("–" if m is None else f"{m / base:.2f} {'met' if m <= factor * base else 'NOT met'}")
        lines.append(f"| {SECTIONS[t].title}: CPU/query ≤ {factor} × {short(ref)} | " + " | ".join(cells) + " |")
    # Issue 14: signed answers keep the ratio to Knot that unsigned ones have.
    knot_plain, knot_signed = cpu_of(results, "udp", "knot"), cpu_of(results, "udp-do", "knot")
    if knot_plain and knot_signed:
        cells = []
        for d in drivers:
            plain, signed = cpu_of(results, "udp", f"ringdns-{d}"), cpu_of(results, "udp-do", f"ringdns-{d}")
            if None in (plain, signed):
                cells.append("–")
                continue
            r_plain, r_signed = plain / knot_plain, signed / knot_signed
            cells.append(f"{r_signed:.2f} vs {r_plain:.2f} {'met' if r_signed <= r_plain * 1.03 else 'NOT met'}")
        lines.append("| UDP DO=1, signed zone: × Knot ≤ unsigned UDP's × Knot (within 3%) | " + " | ".join(cells) + " |")
    for t in ("udp", "tcp"):
        cells = []
        for d in drivers:
            off, on = cpu_of(results, t, f"ringdns-{d}"), cpu_of(results, t, f"ringdns-prom-{d}")
            cells.append("–" if None in (off, on) else f"{on / off:.3f} {'met' if on <= 1.03 * off else 'NOT met'}")
        if any(c != "–" for c in cells):
            lines.append(f"| {SECTIONS[t].title}: CPU/query with `prometheus` ≤ 1.03 × without | " + " | ".join(cells) + " |")
    # Issue 15: rrl's accounting costs at most 5% of a UDP answer.
    cells = []
    for d in drivers:
        off, on = cpu_of(results, "udp", f"ringdns-{d}"), cpu_of(results, "udp", f"ringdns-rrl-{d}")
        cells.append("–" if None in (off, on) else f"{on / off:.3f} {'met' if on <= 1.05 * off else 'NOT met'}")
    if any(c != "–" for c in cells):
        lines.append("| UDP: CPU/query with `rrl` (nothing limited) ≤ 1.05 × without | " + " | ".join(cells) + " |")
    knot = next((x for x in loads if x[0] == "knot"), None)
    if knot:
        for label, i in (("load time", 2), ("RSS", 4)):
            cells = []
            for d in drivers:
                mine = next((x for x in loads if x[0] == f"ringdns-{d}"), None)
                cells.append("–" if mine is None else f"{mine[i] / knot[i]:.2f} {'met' if mine[i] <= knot[i] else 'NOT met'}")
            lines.append(f"| 1M-name zone {label} ≤ Knot | " + " | ".join(cells) + " |")
    lost = [(v["name"], t) for (t, k), v in results.items() if k.startswith("ringdns") and sum(r["lost"] for r in v["runs"])]
    lines.append(f"| no lost queries at the load tool's maximum rate | {'met' if not lost else 'NOT met: ' + ', '.join(f'{n} {t}' for n, t in lost)} |" + " |" * (len(drivers) - 1))
    lines.append("")
    return lines


def fmt(x):
    return "–" if x is None else f"{x:.3f}"


def fmt_ratio(x, base):
    return "–" if not base else f"{x / base:.2f}"


def platform_cpu():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs the same bounded dnsperf load against ringdns (io_uring and epoll drivers), Knot DNS,
NSD and a do-nothing UDP responder (the kernel floor), one at a time, on loopback.

The server is pinned to CPU 0 and dnsperf to CPU 1. On two cores dnsperf, not the server,
limits the rate, so the figure that compares servers is the server's CPU time per answered
query: utime+stime of every process of the server's session, from /proc before and after
the run, divided by the answers dnsperf counted. Each run is repeated (median and spread
reported). Latency (mean and p99) is measured in a separate run at a fixed rate, where
dnsperf prints every answer's latency.

Writes tuning/results/<date>.md and tuning/results/<date>.svg. Started by tuning/bench.
"""

import argparse
import datetime
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RINGDNS = ROOT / "target" / "release" / "ringdns"
FLOOR = ROOT / "target" / "release" / "examples" / "floor"
ZONE = "bench.test"
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = "0", "1"


def free_port():
    import socket

    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


# ---------------------------------------------------------------- data


def write_zone(path, names):
    with open(path, "w") as f:
        f.write(f"$ORIGIN {ZONE}.\n$TTL 3600\n")
        f.write("@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
        for i in range(names):
            f.write(f"h{i} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if i % 4 == 0:
                f.write(f"h{i} AAAA 2001:db8::{i & 0xffff:x}\n")


def write_queries(path, names, count, seed=1):
    """About 75% A hits, 20% AAAA (hits for every 4th name, NODATA otherwise), 5% NXDOMAIN."""
    rnd = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(count):
            r = rnd.random()
            i = rnd.randrange(names)
            if r < 0.75:
                f.write(f"h{i}.{ZONE} A\n")
            elif r < 0.95:
                f.write(f"h{i - i % 4}.{ZONE} AAAA\n")
            else:
                f.write(f"nx{rnd.randrange(1 << 30)}.{ZONE} A\n")


# ---------------------------------------------------------------- servers


class Server:
    """A server under test, started in its own session so all its processes are measured."""

    name = "?"
    transports = ("udp", "tcp")

    def __init__(self, work, zone_path, port):
        self.work = Path(work)
        self.zone_path = zone_path
        self.port = port
        self.proc = None

    def command(self):
        raise NotImplementedError

    def start(self):
        log = open(self.work / f"{self.slug()}.log", "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU] + self.command(),
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
            subprocess.run(["taskset", "-a", "-p", "-c", SERVER_CPU, str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

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
            total += int(fields[11]) + int(fields[12])  # utime, stime
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
    def __init__(self, work, zone_path, port, driver):
        super().__init__(work, zone_path, port)
        self.driver = driver
        self.name = f"ringdns ({driver})"

    def command(self):
        conf = self.work / f"Corefile-{self.driver}"
        conf.write_text(f"{ZONE}:{self.port} {{\n    bind 127.0.0.1\n    file {self.zone_path} {{\n        reload 0\n    }}\n}}\n")
        return [str(RINGDNS), "--conf", str(conf), "--shards", "1", "--driver", self.driver, "--log-level", "warn"]


class Knot(Server):
    name = "Knot DNS"

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
        )
        return ["knotd", "-c", str(conf)]


class Nsd(Server):
    name = "NSD"

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
        )
        return ["nsd", "-d", "-c", str(conf)]


class Floor(Server):
    name = "floor (no DNS work)"
    transports = ("udp",)

    def command(self):
        return [str(FLOOR), f"127.0.0.1:{self.port}"]

    def wait_ready(self, timeout=10):
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("floor exited")
        return 0.0


# ---------------------------------------------------------------- load


def dnsperf(port, queries, transport, duration, extra=()):
    cmd = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(duration)]
    cmd += ["-c", "4", "-q", "200"] if transport == "udp" else ["-m", "tcp", "-c", "8", "-q", "400"]
    cmd += list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 3 + 60).stdout


def parse(out):
    def num(pattern, cast=float, default=0):
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else default

    return {
        "completed": num(r"Queries completed:\s+(\d+)", int),
        "lost": num(r"Queries lost:\s+(\d+)", int),
        "qps": num(r"Queries per second:\s+([\d.]+)"),
        "mean_ms": num(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
    }


def throughput_run(server, queries, transport, duration):
    dnsperf(server.port, queries, transport, 2)  # warm-up (caches, connections)
    c0 = server.cpu_seconds()
    r = parse(dnsperf(server.port, queries, transport, duration))
    c1 = server.cpu_seconds()
    r["cpu_us"] = (c1 - c0) * 1e6 / max(r["completed"], 1)
    return r


def latency_run(server, queries, transport, rate, seconds=5):
    out = dnsperf(server.port, queries, transport, seconds, ["-Q", str(rate), "-v"])
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
    """Horizontal bars: server CPU µs per query, one group per transport."""
    bars = [(f"{t.upper()} {name}", cpu) for t, name, cpu in rows]
    width, left, bar_h, gap = 760, 250, 18, 6
    top = 30
    height = top + len(bars) * (bar_h + gap) + 30
    peak = max(c for _, c in bars) or 1
    scale = (width - left - 80) / peak
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="18" font-size="14">Server CPU per answered query (µs, median; lower is better)</text>',
    ]
    for i, (label, cpu) in enumerate(bars):
        y = top + i * (bar_h + gap)
        colour = "#c0392b" if label.split(" ", 1)[1].startswith("ringdns") else "#7f8c8d"
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
    ap.add_argument("--rate", type=int, default=20_000, help="queries per second of the latency run")
    ap.add_argument("--transports", default="udp,tcp")
    ap.add_argument("--servers", default="floor,ringdns-io-uring,ringdns-legacy,knot,nsd")
    ap.add_argument("--out", default=str(ROOT / "tuning" / "results"))
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("tuning/bench needs two CPUs (server on CPU 0, dnsperf on CPU 1)")

    work = Path(tempfile.mkdtemp(prefix="ringdns-bench-"))
    zone = work / "bench.test.zone"
    qfile = work / "queries.txt"
    write_zone(zone, args.names)
    write_queries(qfile, args.names, args.queries)

    def make(kind, zone_path):
        port = free_port()
        return {
            "floor": lambda: Floor(work, zone_path, port),
            "ringdns-io-uring": lambda: Ringdns(work, zone_path, port, "io-uring"),
            "ringdns-legacy": lambda: Ringdns(work, zone_path, port, "legacy"),
            "knot": lambda: Knot(work, zone_path, port),
            "nsd": lambda: Nsd(work, zone_path, port),
        }[kind]()

    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    results = {}  # (transport, name) -> dict of lists
    versions = {}
    for kind in kinds:
        s = make(kind, zone)
        s.start()
        try:
            s.wait_ready()
            s.after_start()
            for t in transports:
                if t not in s.transports:
                    continue
                runs = [throughput_run(s, qfile, t, args.duration) for _ in range(args.runs)]
                mean, p99 = latency_run(s, qfile, t, args.rate)
                results[(t, s.name)] = {"runs": runs, "mean_ms": mean, "p99_ms": p99}
                cpu = [r["cpu_us"] for r in runs]
                print(f"{t:4} {s.name:22} cpu/query {med(cpu):6.2f} µs ±{spread(cpu):.2f}  qps {med([r['qps'] for r in runs]):9.0f}  lost {sum(r['lost'] for r in runs)}", flush=True)
        finally:
            s.stop()
    loads = []
    if args.big:
        big = work / "big.zone"
        write_zone(big, args.big)
        for kind in kinds:
            if kind == "floor":
                continue
            times, rss = [], []
            for _ in range(args.runs):
                s = make(kind, big)
                s.start()
                try:
                    times.append(s.wait_ready())
                    time.sleep(1)
                    rss.append(s.rss_mib())
                finally:
                    s.stop()
            loads.append((s.name, med(times), spread(times), med(rss)))
            print(f"load {s.name:22} {med(times):6.2f} s ±{spread(times):.2f}  RSS {med(rss):7.1f} MiB", flush=True)
    for tool, cmd in (("knot", ["knotd", "--version"]), ("nsd", ["nsd", "-v"]), ("dnsperf", ["dnsperf", "-h"])):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            versions[tool] = ((r.stdout + r.stderr).strip().splitlines() or ["?"])[0]
        except OSError:
            versions[tool] = "not installed"
    report(args, results, loads, versions)
    shutil.rmtree(work, ignore_errors=True)


def report(args, results, loads, versions):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# tuning/bench {stamp}",
        "",
        f"ringdns {commit}; {versions.get('knot')}; {versions.get('nsd')}; {os.cpu_count()} CPUs "
        f"({platform_cpu()}); kernel {os.uname().release}.",
        f"Zone of {args.names} names (A for each, AAAA for every 4th); {args.queries} queries, about 75% A,"
        " 20% AAAA, 5% NXDOMAIN. Server on CPU 0, dnsperf on CPU 1 (UDP `-c 4 -q 200`, TCP `-m tcp -c 8 -q 400`)."
        f" {args.runs} runs of {args.duration} s each: median, ± half the range. Latency: one {args.rate} QPS run of 5 s.",
        "",
        "Server CPU per query is the figure that compares servers (dnsperf is the limit of QPS here).",
        "",
    ]
    chart = []
    for t in [x.strip() for x in args.transports.split(",")]:
        rows = [(name, v) for (tt, name), v in results.items() if tt == t]
        if not rows:
            continue
        floor = next((med([r["cpu_us"] for r in v["runs"]]) for n, v in rows if n.startswith("floor")), None)
        knot = next((med([r["cpu_us"] for r in v["runs"]]) for n, v in rows if n == "Knot DNS"), None)
        lines += [
            f"## {t.upper()}",
            "",
            "| server | CPU µs/query | × floor | × Knot | QPS | lost | mean ms | p99 ms |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, v in rows:
            cpu = [r["cpu_us"] for r in v["runs"]]
            m = med(cpu)
            chart.append((t, name, m))
            lines.append(
                f"| {name} | {m:.2f} ± {spread(cpu):.2f} | {fmt_ratio(m, floor)} | {fmt_ratio(m, knot)} | "
                f"{med([r['qps'] for r in v['runs']]):.0f} | {sum(r['lost'] for r in v['runs'])} | "
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
        for name, took, dev, rss in loads:
            lines.append(f"| {name} | {took:.2f} ± {dev:.2f} s | {rss:.0f} MiB |")
        lines.append("")
    svg = out / f"{stamp}.svg"
    svg_chart(chart, svg)
    lines.append(f"![CPU per query]({svg.name})")
    md = out / f"{stamp}.md"
    md.write_text("\n".join(lines) + "\n")
    print(f"wrote {md} and {svg}")


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

#!/usr/bin/env python3
"""IXFR on a large zone: ringdns and Knot DNS as secondaries of one Knot primary.

A zone of --names names (A each, AAAA for every 4th) is loaded on a Knot primary that
NOTIFYs both secondaries. Once both serve it, --changes records are replaced at the primary
with knotc (one transaction: one IXFR). Measured for each secondary: the time from the
commit to serving the new serial (SOA polled every 5 ms), and its peak RSS (VmHWM) before
and after. Everything on loopback; every process is stopped at the end.

    tuning/ixfr.py --names 1000000 --changes 10 --rounds 3
"""

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZONE = "example.test"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def soa_query(qid):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in ZONE.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 6, 1)


def serial(port):
    """The SOA serial served on port, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        s.sendto(soa_query(0x1234), ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 12 or data[3] & 0x0F != 0 or struct.unpack(">H", data[6:8])[0] == 0:
        return None
    # The SOA's serial: the last 20 octets of its rdata are the five numbers.
    rdlen_at = len(data)
    # Walk: header, question, then the first answer record.
    i = 12
    while data[i] != 0:
        i += 1 + data[i]
    i += 5
    # Answer owner (a pointer or a name).
    if data[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while data[i] != 0:
            i += 1 + data[i]
        i += 1
    rdlen = struct.unpack(">H", data[i + 8:i + 10])[0]
    rdata = data[i + 10:i + 10 + rdlen]
    del rdlen_at
    return struct.unpack(">I", rdata[-20:-16])[0]


def hwm(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def rss(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def zone_text(n, serial_no):
    lines = [f"$ORIGIN {ZONE}.", "$TTL 300", f"@ SOA ns admin {serial_no} 3600 600 86400 60", "@ NS ns", "ns A 192.0.2.1"]
    for i in range(n):
        lines.append(f"h{i} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}")
        if i % 4 == 0:
            lines.append(f"h{i} AAAA 2001:db8::{i & 0xffff:x}")
    return "\n".join(lines) + "\n"


def knot_conf(d, port, primary=None, notify=()):
    c = [
        "server:",
        f'    rundir: "{d}"',
        f"    listen: 127.0.0.1@{port}",
        "    udp-workers: 1",
        "    tcp-workers: 1",
        "    background-workers: 1",
        "database:",
        f'    storage: "{d}"',
        "log:",
        "  - target: stderr",
        "    any: warning",
    ]
    if primary or notify:
        c.append("remote:")
        if primary:
            c += ["  - id: primary", f"    address: 127.0.0.1@{primary}"]
        for i, p in enumerate(notify):
            c += [f"  - id: s{i}", f"    address: 127.0.0.1@{p}"]
    c += ["acl:", "  - id: all", "    address: 127.0.0.0/8", "    action: [transfer, notify]"]
    c += ["template:", "  - id: default", f'    storage: "{d}"', "    semantic-checks: off", "    zonefile-sync: -1"]
    if primary:
        c += ["    zonefile-load: none", "    journal-content: none"]
    c += ["zone:", f"  - domain: {ZONE}", "    acl: all"]
    if primary:
        c.append("    master: primary")
    else:
        c.append(f'    file: "{d}/zone"')
        if notify:
            c.append("    notify: [" + ", ".join(f"s{i}" for i in range(len(notify))) + "]")
    (Path(d) / "knot.conf").write_text("\n".join(c) + "\n")
    return str(Path(d) / "knot.conf")


def wait_serial(port, want, deadline):
    while time.monotonic() < deadline:
        if serial(port) == want:
            return True
        time.sleep(0.005)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=200000)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--driver", default="io-uring")
    args = ap.parse_args()
    binary = ROOT / "target/release/ringdns"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="ringdns-ixfr-"))
    procs = []
    try:
        pport, rport, kport = free_port(), free_port(), free_port()
        pd, kd, rd = work / "primary", work / "knot2", work / "ringdns"
        for d in (pd, kd, rd):
            d.mkdir()
        (pd / "zone").write_text(zone_text(args.names, 1))
        pconf = knot_conf(pd, pport, notify=(rport, kport))
        procs.append(subprocess.Popen(["knotd", "-c", pconf], stderr=subprocess.DEVNULL))
        if not wait_serial(pport, 1, time.monotonic() + 120):
            sys.exit("the primary did not load the zone")
        kconf = knot_conf(kd, kport, primary=pport)
        knot2 = subprocess.Popen(["knotd", "-c", kconf], stderr=subprocess.DEVNULL)
        procs.append(knot2)
        (rd / "Corefile").write_text(
            f"{ZONE}:{rport} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{pport}\n        directory {rd}/zones\n    }}\n}}\n"
        )
        ring = subprocess.Popen(
            [str(binary), "--conf", str(rd / "Corefile"), "--shards", "1", "--driver", args.driver, "--log-level", "warn"],
            stderr=subprocess.DEVNULL,
        )
        procs.append(ring)
        t0 = time.monotonic()
        first = {}
        for name, port in (("ringdns", rport), ("knot", kport)):
            if not wait_serial(port, 1, time.monotonic() + 300):
                sys.exit(f"{name} did not transfer the zone")
            first[name] = time.monotonic() - t0
        print(f"zone: {args.names} names; first AXFR served after ringdns {first['ringdns']:.2f} s, knot {first['knot']:.2f} s (both started together)")
        print(f"RSS after the AXFR: ringdns {rss(ring.pid)} MiB (peak {hwm(ring.pid)}), knot {rss(knot2.pid)} MiB (peak {hwm(knot2.pid)})")
        results = {"ringdns": [], "knot": []}
        for r in range(args.rounds):
            new = 2 + r
            cmds = [["knotc", "-c", pconf, "zone-begin", ZONE]]
            for i in range(args.changes):
                h = f"h{r * args.changes + i}"
                cmds.append(["knotc", "-c", pconf, "zone-unset", ZONE, h, "A"])
                cmds.append(["knotc", "-c", pconf, "zone-set", ZONE, h, "300", "A", f"192.0.2.{(r * 10 + i) % 250}"])
            for c in cmds:
                subprocess.run(c, check=True, stdout=subprocess.DEVNULL)
            t = time.monotonic()
            subprocess.run(["knotc", "-c", pconf, "zone-commit", ZONE], check=True, stdout=subprocess.DEVNULL)
            pending = {"ringdns": rport, "knot": kport}
            deadline = time.monotonic() + 120
            while pending and time.monotonic() < deadline:
                for name, port in list(pending.items()):
                    if serial(port) == new:
                        results[name].append(time.monotonic() - t)
                        del pending[name]
                time.sleep(0.005)
            if pending:
                sys.exit(f"round {r}: {list(pending)} did not follow")
        for name in results:
            v = sorted(results[name])
            print(f"{name}: commit to new serial, {args.changes}-record IXFR: median {v[len(v) // 2] * 1000:.0f} ms (all: {', '.join(f'{x * 1000:.0f}' for x in v)})")
        print(f"RSS after the IXFRs: ringdns {rss(ring.pid)} MiB (peak {hwm(ring.pid)}), knot {rss(knot2.pid)} MiB (peak {hwm(knot2.pid)})")
        rm = sorted(results["ringdns"])[len(results["ringdns"]) // 2]
        km = sorted(results["knot"])[len(results["knot"]) // 2]
        print(f"ratio ringdns/knot (median time to the new serial): {rm / km:.2f}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Start-up and idle-memory benchmark for `embargo serve` (embedded default: SQLite).

Measures, over several runs of the release binary:
  * first start: a new data directory (master key generated, database created and
    migrated) until GET /healthz answers 200;
  * restart: the same data directory again until /healthz answers 200;
  * idle resident memory (VmRSS) a few seconds after start, with the job worker running.

Writes the results, with the machine they ran on, to BENCHMARKS.md (section "Start-up and
idle memory"). Timing lives here, never in tests.

Usage: python3 bench/startup.py [--runs N] [--binary PATH]
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary, data_dir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_")}
    env["EMBARGO_METRICS_LISTEN"] = "127.0.0.1:0"  # metrics on a free loopback port
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--http", f"127.0.0.1:{port}", "--smtp", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while not healthy(port):
        if proc.poll() is not None:
            sys.exit(f"embargo serve exited with {proc.returncode}")
        if time.perf_counter() - t0 > 30:
            proc.kill()
            sys.exit("embargo serve did not become healthy within 30 s")
        time.sleep(0.001)
    return proc, time.perf_counter() - t0


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, {mem}; {platform.system()} {platform.release()}; {rustc}"


def write_section(title, body):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\nMeasured by the scripts in `bench/`; each section says how to reproduce it.\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    open(path, "w").write(text.rstrip() + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "embargo"))
    args = parser.parse_args()
    if args.binary.endswith("release/embargo"):
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "embargo"], cwd=ROOT, check=True)

    first, restart, rss = [], [], []
    for _ in range(args.runs):
        data = tempfile.mkdtemp(prefix="embargo-bench-")
        try:
            proc, elapsed = start(args.binary, os.path.join(data, "d"))
            first.append(elapsed)
            stop(proc)
            proc, elapsed = start(args.binary, os.path.join(data, "d"))
            restart.append(elapsed)
            time.sleep(3)
            rss.append(rss_kib(proc.pid) / 1024)
            stop(proc)
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def row(name, values, unit, fmt):
        return f"| {name} | {fmt(statistics.median(values))} {unit} | {fmt(min(values))} {unit} | {fmt(max(values))} {unit} |"

    ms = lambda v: f"{v * 1000:.1f}"
    mb = lambda v: f"{v:.1f}"
    body = f"""
`python3 bench/startup.py --runs {args.runs}` on {datetime.date.today().isoformat()}.
Machine: {machine()}.
Release build, embedded default (SQLite in a new data directory, job worker running).
Time is from process spawn until `GET /healthz` answers 200; memory is VmRSS 3 s after
a restart, idle.

| measure | median | min | max |
|---|---|---|---|
{row("first start to healthy (key generated, database created)", first, "ms", ms)}
{row("restart to healthy (existing data)", restart, "ms", ms)}
{row("idle resident memory", rss, "MiB", mb)}

Targets from issue 2: start-up to a healthy `/healthz` under 1 s, idle memory under 50 MB.
"""
    write_section("Start-up and idle memory", body)
    print(body)


if __name__ == "__main__":
    main()

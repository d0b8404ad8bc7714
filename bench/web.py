#!/usr/bin/env python3
"""Inbox and report-page benchmark with 100,000 reports, on SQLite and PostgreSQL.

For each backend: fills a fresh instance with generated reports (`examples/seed.rs`, which
also signs an admin in with password and TOTP), starts the release `embargo serve`, and
runs wrk on loopback against the inbox (`/inbox`, the first page of open reports, with the
total count) and a report page (`/reports/<ref>`, with its timeline and audit trail), as
the signed-in admin. Every request is a real one: the session is looked up, the read is
audited (a write and a commit per request) and the page is rendered.

wrk shares the machine's cores with the server. Results go to BENCHMARKS.md; timing lives
here, never in tests.

Usage: python3 bench/web.py [--reports N] [--seconds S] [--connections C]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from startup import ROOT, free_port, healthy, machine, write_section  # noqa: E402
from smtp_intake import start_postgres  # noqa: E402


def wrk(url, cookie, seconds, connections):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Cookie: {cookie}", url],
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": rate, "p50": pct(50), "p99": pct(99), "non2xx": int(errors.group(1)) if errors else 0}


def run_backend(binary, seed, tmp, reports, seconds, connections, database_url):
    data = tempfile.mkdtemp(dir=tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_")}
    env["EMBARGO_METRICS_LISTEN"] = "127.0.0.1:0"  # metrics on a free loopback port
    t0 = time.perf_counter()
    seeded = json.loads(subprocess.run([seed, os.path.join(data, "d"), database_url or "", str(reports)],
                                       capture_output=True, text=True, check=True, env=env).stdout)
    seed_seconds = time.perf_counter() - t0
    if database_url:
        # A bulk load leaves PostgreSQL's statistics and visibility map stale until
        # autovacuum comes round; measure the steady state instead.
        subprocess.run(["psql", database_url, "-q", "-c", "VACUUM ANALYZE"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = free_port()
    args = [binary, "serve", "--data-dir", os.path.join(data, "d"), "--http", f"127.0.0.1:{http}",
            "--smtp", f"127.0.0.1:{free_port()}"]
    if database_url:
        args += ["--database-url", database_url]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 30
        while not healthy(http) and time.time() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{http}"
        # Check the pages really render for this cookie before measuring.
        for path in ("/inbox", f"/reports/{seeded['reference']}"):
            req = urllib.request.Request(base + path, headers={"Cookie": seeded["cookie"]})
            body = urllib.request.urlopen(req).read().decode()
            assert seeded["reference"] in body or path == "/inbox", path
            assert "Sign in" not in body[:2000], f"{path} is not signed in"
        wrk(base + "/inbox", seeded["cookie"], 3, connections)  # warm-up
        inbox = wrk(base + "/inbox", seeded["cookie"], seconds, connections)
        page = wrk(base + f"/reports/{seeded['reference']}", seeded["cookie"], seconds, connections)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    if database_url:
        subprocess.run(["psql", database_url, "-q", "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"seed_seconds": seed_seconds, "inbox": inbox, "report": page}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "embargo", "--bin", "embargo",
                    "--example", "seed"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "embargo")
    seed = os.path.join(ROOT, "target", "release", "examples", "seed")
    tmp = tempfile.mkdtemp(prefix="embargo-web-bench-")
    os.chmod(tmp, 0o755)
    pg_url, pg_stop = start_postgres(tmp)
    results = {}
    try:
        results["SQLite"] = run_backend(binary, seed, tmp, args.reports, args.seconds, args.connections, None)
        if pg_url:
            results["PostgreSQL"] = run_backend(binary, seed, tmp, args.reports, args.seconds, args.connections,
                                                pg_url)
    finally:
        if pg_stop:
            pg_stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for backend, r in results.items():
        for name, key in (("inbox (`/inbox`)", "inbox"), ("report page", "report")):
            m = r[key]
            rows.append(f"| {backend} | {name} | {m['rate']:,.0f} | {m['p50']:.1f} | {m['p99']:.1f} | {m['non2xx']} |")
    seeds = ", ".join(f"{b}: {r['seed_seconds']:.0f} s" for b, r in results.items())
    body = f"""
Machine: {machine()}. Run on {time.strftime('%Y-%m-%d')} with `python3 bench/web.py` ({args.reports:,} reports,
wrk with 2 threads and {args.connections} connections for {args.seconds} s per page, on loopback, sharing the
machine's cores with the server; PostgreSQL vacuumed and analysed after the bulk load). Each
request looks up the session, reads through the need-to-know check, commits its audit entry
(group-committed with concurrent reads) and renders the page; the inbox counts matches up to
1,000. Seeding took {seeds}.

| Backend | Page | Requests/s | p50 ms | p99 ms | Non-2xx |
|---|---|---:|---:|---:|---:|
{chr(10).join(rows)}

Target (issue 4): p99 under 20 ms and at least 1,000 requests/s for each page.
"""
    write_section("Web app with 100,000 reports", body)
    print(body)


if __name__ == "__main__":
    main()

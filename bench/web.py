#!/usr/bin/env python3
"""Inbox and report-page benchmark with 100,000 reports, on SQLite and PostgreSQL.

For each backend: fills a fresh instance with generated reports (`examples/seed.rs`, which
also signs an admin in with password and TOTP). The seeder runs no job worker, so the
instance starts with every report's `report.index` job (search terms, near-duplicate
signature) and acknowledgement mail still queued, as after a burst of mail or an import.
Then it starts the release `embargo serve` and runs wrk on loopback against the inbox
(`/inbox`, the first page of open reports, with the total count) and a report page
(`/reports/<ref>`, with its timeline, audit trail and near-duplicate suggestions), as the
signed-in admin, in two states:

* during indexing: right after start, while the worker works through the backlog (the
  number of queued index jobs is read before and after each run, to show it was still
  there);
* steady: once every job is done (PostgreSQL vacuumed and analysed first).

Every request is a real one: the session is looked up, the read is audited (a write and a
commit per request) and the page is rendered. Besides the rates and latencies, each run
reports the server's CPU time per request (from /proc, the PostgreSQL server's included),
which a machine shared with other work disturbs far less than the rates.

With `--compare LABEL=BINARY` (repeatable), the same seeded data (copied) is also served by
another build, in the same run, to give ratios when the machine is shared and absolute
figures are disturbed. wrk shares the machine's cores with the server. Results go to
BENCHMARKS.md; timing lives here, never in tests.

Usage: python3 bench/web.py [--reports N] [--seconds S] [--during-seconds S] [--connections C]
                            [--backends sqlite,postgres] [--compare LABEL=BINARY] [--no-write]
"""

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
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
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-H",
         f"Cookie: {cookie}", url],
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    return {"rate": rate, "requests": requests, "p50": pct(50), "p99": pct(99), "non2xx": int(errors.group(1)) if errors else 0,
            "timeouts": int(timeouts.group(1)) if timeouts else 0}


def psql(url, sql):
    return subprocess.run(["psql", url, "-qtA", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def queued(data, database_url, kind=None):
    """Jobs due and not yet done (queued or running), of one kind or all. A recurring job
    queued for later (the SLA sweep) is not a backlog."""
    now_ms = int(time.time() * 1000)
    sql = f"SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') AND run_at <= {now_ms}"
    if kind:
        sql += f" AND kind = '{kind}'"
    if database_url:
        return int(psql(database_url, sql))
    db = sqlite3.connect(f"file:{os.path.join(data, 'embargo.db')}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_seconds(pids):
    """User + system CPU time used so far by these processes (and their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / tick


def measure(base, path, cookie, seconds, connections, data, database_url, pids):
    """One wrk run, with the server's CPU time per request (its process and, on PostgreSQL,
    the database's: what the page costs whatever else the machine is doing)."""
    before = queued(data, database_url, "report.index")
    load = loadavg()
    cpu = cpu_seconds(pids())
    result = wrk(base + path, cookie, seconds, connections)
    cpu = cpu_seconds(pids()) - cpu
    result.update(index_before=before, index_after=queued(data, database_url, "report.index"), load=load,
                  cpu_ms=1000 * cpu / max(result["requests"], 1))
    return result


def postgres_pids(database_url):
    """The benchmark's PostgreSQL server processes (the postmaster and its children, backends
    included), for their CPU time; none for SQLite."""
    if not database_url:
        return []
    base = os.path.dirname(re.search(r"host=([^&]+)", database_url).group(1))
    with open(os.path.join(base, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
    return pids


def serve(binary, data, database_url, seeded, seconds, during_seconds, connections):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_")}
    env["EMBARGO_METRICS_LISTEN"] = "127.0.0.1:0"  # metrics on a free loopback port
    http = free_port()
    args = [binary, "serve", "--data-dir", data, "--http", f"127.0.0.1:{http}",
            "--smtp", f"127.0.0.1:{free_port()}"]
    if database_url:
        args += ["--database-url", database_url]
    cookie, report = seeded["cookie"], f"/reports/{seeded['reference']}"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    started = time.perf_counter()
    pids = lambda: [proc.pid] + postgres_pids(database_url)
    out = {}
    try:
        deadline = time.time() + 30
        while not healthy(http) and time.time() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{http}"
        # Check the pages really render for this cookie before measuring.
        for path in ("/inbox", report):
            req = urllib.request.Request(base + path, headers={"Cookie": cookie})
            body = urllib.request.urlopen(req).read().decode()
            assert seeded["reference"] in body or path == "/inbox", path
            assert "Sign in" not in body[:2000], f"{path} is not signed in"
        # During indexing: no warm-up, the backlog is being worked through from the start.
        out["during"] = {
            "inbox": measure(base, "/inbox", cookie, during_seconds, connections, data, database_url, pids),
            "report": measure(base, report, cookie, during_seconds, connections, data, database_url, pids),
        }
        deadline = time.time() + 1800
        while queued(data, database_url) and time.time() < deadline:
            time.sleep(1)
        left = queued(data, database_url)
        assert left == 0, f"{left} jobs still queued after 30 minutes"
        out["drained_after"] = time.perf_counter() - started
        if database_url:
            # Indexing rewrote every report row and filled the index tables: measure the
            # steady state, not autovacuum's schedule.
            psql(database_url, "VACUUM ANALYZE")
        wrk(base + "/inbox", cookie, 3, connections)  # warm-up
        wrk(base + report, cookie, 3, connections)
        out["steady"] = {
            "inbox": measure(base, "/inbox", cookie, seconds, connections, data, database_url, pids),
            "report": measure(base, report, cookie, seconds, connections, data, database_url, pids),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return out


def run_backend(builds, seed, tmp, reports, seconds, during_seconds, connections, pg_url):
    seeded_dir = os.path.join(tempfile.mkdtemp(dir=tmp), "d")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_")}
    env["EMBARGO_METRICS_LISTEN"] = "127.0.0.1:0"  # metrics on a free loopback port
    seed_db = None
    if pg_url:
        seed_db = pg_url.replace("/bench?", "/seeded?")
        psql(pg_url, "CREATE DATABASE seeded")
    t0 = time.perf_counter()
    run = subprocess.run([seed, seeded_dir, seed_db or "", str(reports)], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        sys.exit(f"the seeder failed ({run.returncode}): {run.stderr[-2000:]}")
    seeded = json.loads(run.stdout)
    seed_seconds = time.perf_counter() - t0
    if pg_url:
        # A bulk load leaves PostgreSQL's statistics and visibility map stale until
        # autovacuum comes round; measure the steady state instead.
        psql(seed_db, "VACUUM ANALYZE")
    results = {}
    for n, (label, binary) in enumerate(builds):
        # Each build gets its own copy of the same seeded instance, backlog included.
        data = os.path.join(tempfile.mkdtemp(dir=tmp), "d")
        shutil.copytree(seeded_dir, data)
        database_url = None
        if pg_url:
            database_url = pg_url.replace("/bench?", f"/run{n}?")
            psql(pg_url, f"CREATE DATABASE run{n} TEMPLATE seeded")
        try:
            results[label] = serve(binary, data, database_url, seeded, seconds, during_seconds, connections)
        finally:
            shutil.rmtree(os.path.dirname(data), ignore_errors=True)
            if pg_url:
                psql(pg_url, f"DROP DATABASE run{n}")
    if pg_url:
        psql(pg_url, "DROP DATABASE seeded")
    shutil.rmtree(os.path.dirname(seeded_dir), ignore_errors=True)
    return {"seed_seconds": seed_seconds, "builds": results}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--during-seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=BINARY",
                        help="also serve the same data with this build (for example main's)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "embargo", "--bin", "embargo",
                    "--example", "seed"], cwd=ROOT, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    this = f"this build ({commit}{', modified' if dirty else ''})"
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    builds = [(this, os.path.join(target, "release", "embargo"))]
    builds += [tuple(c.split("=", 1)) for c in args.compare]
    seed = os.path.join(target, "release", "examples", "seed")
    tmp = tempfile.mkdtemp(prefix="embargo-web-bench-")
    os.chmod(tmp, 0o755)
    backends = args.backends.split(",")
    pg_url, pg_stop = start_postgres(tmp) if "postgres" in backends else (None, None)
    results = {}
    try:
        if "sqlite" in backends:
            results["SQLite"] = run_backend(builds, seed, tmp, args.reports, args.seconds, args.during_seconds,
                                            args.connections, None)
        if pg_url:
            results["PostgreSQL"] = run_backend(builds, seed, tmp, args.reports, args.seconds,
                                                args.during_seconds, args.connections, pg_url)
    finally:
        if pg_stop:
            pg_stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for backend, r in results.items():
        for label, states in r["builds"].items():
            build = f" | {label}" if len(builds) > 1 else ""
            for state, name in (("during", "during indexing"), ("steady", "steady")):
                for page, key in (("inbox (`/inbox`)", "inbox"), ("report page", "report")):
                    m = states[state][key]
                    rows.append(f"| {backend}{build} | {name} | {page} | {m['rate']:,.0f} | {m['p50']:.1f} | "
                                f"{m['p99']:.1f} | {m['cpu_ms']:.2f} | {m['non2xx'] + m['timeouts']} | "
                                f"{m['index_before']:,} → {m['index_after']:,} | {m['load']:.1f} |")
    seeds = ", ".join(f"{b}: {r['seed_seconds']:.0f} s" for b, r in results.items())
    drains = ", ".join(f"{b} ({label}): {s['drained_after']:.0f} s" for b, r in results.items()
                       for label, s in r["builds"].items())
    build_col = " | Build" if len(builds) > 1 else ""
    body = f"""
Machine: {machine()}. Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at commit {commit}{' (with uncommitted changes)' if dirty else ''}
with `python3 bench/web.py` ({args.reports:,} reports; wrk with 2 threads and {args.connections}
connections, on loopback, sharing the machine's cores with the server: {args.during_seconds} s per page during
indexing, {args.seconds} s per page once steady). The seeder leaves every report's index job and
acknowledgement queued; "during indexing" is measured right after the server starts, while its
worker works through that backlog ("index jobs queued" is read before and after each run),
"steady" once every job is done (PostgreSQL vacuumed and analysed first). Each request looks up
the session, reads the page in one snapshot through the need-to-know check, commits its audit
entry (group-committed with concurrent reads, ahead of background writers, not waiting for the
disk: ADR 32) and renders the page; the inbox counts matches up
to 1,000; the report page shows up to 5 near-duplicate suggestions (every seeded report looks
alike). "CPU ms/request" is the server's user and system CPU time over the run (on PostgreSQL,
the database server's processes' too) divided by the requests answered: during indexing it
includes the background work done meanwhile. It does not depend on other load on the machine
as the rates do: 2,000 divided by it is the most requests/s two idle cores could give the server
(wrk's own CPU aside). "Load" is the machine's 1-minute load average when the run started. Seeding took {seeds};
the backlog was done after {drains}.

| Backend{build_col} | State | Page | Requests/s | p50 ms | p99 ms | CPU ms/request | Errors | Index jobs queued | Load |
|---|---|---|---:|---:|---:|---:|---:|---|---:|
{chr(10).join(rows)}

Targets (issues 4 and 12): p99 under 20 ms and at least 1,000 requests/s for each page once
steady; p99 under 100 ms while the reports are still being indexed.
"""
    if not args.no_write:
        write_section("Web app with 100,000 reports", body)
    print(body)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

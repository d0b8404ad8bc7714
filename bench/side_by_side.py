#!/usr/bin/env python3
"""Two or more builds (or settings) serving the same seeded instance side by side.

    python3 bench/side_by_side.py --backend sqlite --reports 20000 --rounds 8 --seconds 3 \
        --path report before=/tmp/embargo-before after=target/release/embargo \
        'after-env=target/release/embargo:SOME_VARIABLE=1'

Seeds one instance (`examples/seed.rs`), waits until its jobs are done (PostgreSQL vacuumed
and analysed), then starts every build on it at once, each on its own port, and loads them in
turns with wrk (16 connections): round after round, in alternating order. It prints each
build's medians of requests/s, p50, p99 and CPU per request (the server's and, on PostgreSQL,
the database's), and every round's p99.

Why: on this machine the same build's figures move by up to a fifth between runs minutes apart
(other tenants of the host), more than most single changes. Builds loaded in turns see the
same conditions, so their difference is the change's (ADR 38). Prints only; `bench/web.py`
writes `BENCHMARKS.md`.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import web  # noqa: E402
from smtp_intake import start_postgres  # noqa: E402
from startup import ROOT, free_port, healthy  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--path", default="report", help="'report', 'inbox' or a path")
    parser.add_argument("builds", nargs="+", metavar="NAME=BINARY[:VAR=VALUE,...]")
    args = parser.parse_args()
    seed = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "examples", "seed")
    if not os.path.exists(seed):
        subprocess.run(["cargo", "build", "--release", "-p", "embargo", "--example", "seed"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="embargo-side-")
    os.chmod(tmp, 0o755)  # PostgreSQL's own user reads its directory below
    pg_url, stop_pg = (start_postgres(tmp) if args.backend == "postgres" else (None, None))
    if args.backend == "postgres" and not pg_url:
        sys.exit("PostgreSQL is not installed")
    servers = []
    try:
        data = os.path.join(tmp, "data")
        run = subprocess.run([seed, data, pg_url or "", str(args.reports)], capture_output=True, text=True, check=True)
        seeded = json.loads(run.stdout)
        path = {"report": f"/reports/{seeded['reference']}", "inbox": "/inbox"}.get(args.path, args.path)
        for spec in args.builds:
            name, rest = spec.split("=", 1)
            binary, _, settings = rest.partition(":")
            env = {k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_")}
            env["EMBARGO_METRICS_LISTEN"] = "127.0.0.1:0"
            for setting in filter(None, settings.split(",")):
                key, value = setting.split("=", 1)
                env[key] = value
            port = free_port()
            command = [binary, "serve", "--data-dir", data, "--http", f"127.0.0.1:{port}",
                       "--smtp", f"127.0.0.1:{free_port()}"]
            if pg_url:
                command += ["--database-url", pg_url]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            servers.append((name, process, f"http://127.0.0.1:{port}"))
            deadline = time.time() + 30
            while not healthy(port):
                if time.time() > deadline:
                    sys.exit(f"{name} did not start")
                time.sleep(0.05)
        deadline = time.time() + 1800
        while web.queued(data, pg_url) and time.time() < deadline:
            time.sleep(1)
        if pg_url:
            web.psql(pg_url, "VACUUM ANALYZE")
        database = (lambda: web.postgres_pids(pg_url)) if pg_url else (lambda: [])
        results = {name: [] for name, _, _ in servers}
        for _, _, base in servers:
            web.wrk(base + path, seeded["cookie"], 2, 16)  # warm-up
        for round_no in range(args.rounds):
            for name, process, base in servers if round_no % 2 == 0 else servers[::-1]:
                pids = [process.pid] + database()
                cpu = web.cpu_seconds(pids)
                result = web.wrk(base + path, seeded["cookie"], args.seconds, 16)
                cpu = web.cpu_seconds(pids) - cpu
                results[name].append((result["rate"], result["p50"], result["p99"],
                                      1000 * cpu / max(result["requests"], 1)))
    finally:
        for _, process, _ in servers:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        if stop_pg:
            stop_pg()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.backend}, {args.reports} reports, {path}, {args.rounds} rounds of {args.seconds} s (medians)")
    for name, rows in results.items():
        median = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
        print(f"{name:12} {median(0):7.0f} req/s  p50 {median(1):5.1f} ms  p99 {median(2):5.1f} ms  "
              f"CPU {median(3):.2f} ms/request   p99 by round: {' '.join(f'{r[2]:.0f}' for r in rows)}")


if __name__ == "__main__":
    main()

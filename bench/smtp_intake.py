#!/usr/bin/env python3
"""SMTP intake benchmark: Embargo (SQLite and PostgreSQL) beside a local Postfix.

Load: Postfix's smtp-source, 16 concurrent sessions, 2 KB messages to the security address,
the same for every target. Accept rate = messages / wall time of the smtp-source run.
Embargo's p99 accept latency (end of DATA to the 250, which is sent only after the durable
commit) comes from its `embargo_smtp_commit_seconds` histogram; the figure is the histogram
bucket bound that covers 99 % of messages.

Postfix runs as a private instance (its own config, queue and Maildir under a temporary
directory, loopback only) delivering to a Maildir; its 250 means the message is in its
queue file, fsynced. Needs the postfix package (smtp-source is part of it) and, for the
PostgreSQL run, PostgreSQL's server binaries. Results go to BENCHMARKS.md.

Also: the time until every message is delivered (Postfix) or acknowledged (Embargo), and one
sustained run of `--sustained` messages per target.

Usage: python3 bench/smtp_intake.py [--messages N] [--runs N] [--sustained N] [--targets LIST]
                                   [--binary PATH]
"""

import argparse
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from startup import ROOT, machine, write_section  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"nothing listens on {port}")


def smtp_source(port, messages):
    """Runs the load; returns the accept rate and the time it started."""
    t0 = time.perf_counter()
    subprocess.run(
        ["smtp-source", "-s", "16", "-m", str(messages), "-l", "2048", "-f", "load@bench.test",
         "-t", "security@example.org", f"127.0.0.1:{port}"],
        check=True, stdout=subprocess.DEVNULL)
    return messages / (time.perf_counter() - t0), t0


def wait_files(pattern, count, t0, timeout=300):
    """Waits until `count` files match `pattern`; returns how many did and the seconds since t0."""
    deadline = time.time() + timeout
    while len(glob.glob(pattern)) < count and time.time() < deadline:
        time.sleep(0.05)
    return len(glob.glob(pattern)), time.perf_counter() - t0


def postfix_run(tmp, messages):
    os.chmod(tmp, 0o755)
    base = os.path.join(tmp, "postfix")
    conf, queue, data, mail = (os.path.join(base, d) for d in ("conf", "queue", "data", "mail"))
    for d in (conf, queue, data, mail):
        os.makedirs(d)
    pw = pwd.getpwnam("postfix")
    port = free_port()
    with open(os.path.join(conf, "main.cf"), "w") as f:
        f.write(f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
virtual_mailbox_domains = example.org
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:maildir/
virtual_uid_maps = static:{pw.pw_uid}
virtual_gid_maps = static:{pw.pw_gid}
maillog_file = /dev/stdout
smtpd_client_connection_count_limit = 0
default_process_limit = 100
smtputf8_enable = no
""")
    with open("/etc/postfix/master.cf") as f:
        master = [l for l in f.read().splitlines() if not l.startswith("smtp      inet")]
    master.insert(0, f"127.0.0.1:{port} inet n - n - - smtpd")
    with open(os.path.join(conf, "master.cf"), "w") as f:
        f.write("\n".join(master) + "\n")
    for d in (mail, data):
        os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o755)
    log = open(os.path.join(base, "postfix.log"), "w")
    proc = subprocess.Popen(["postfix", "-c", conf, "start-fg"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        rate, t0 = smtp_source(port, messages)
        delivered, done = wait_files(os.path.join(mail, "maildir", "new", "*"), messages, t0)
        return rate, delivered, done
    finally:
        subprocess.run(["postfix", "-c", conf, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc.wait(timeout=30)


PRODUCTION_SETTINGS = os.path.join(ROOT, "packaging", "postgresql", "embargo.conf")


def start_postgres(tmp):
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        return None, None
    bin_dir = bins[-1]
    base = os.path.join(tmp, "pg")
    os.makedirs(os.path.join(base, "sock"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        subprocess.run(["chown", "-R", user, base], check=True)
    run = lambda *a: subprocess.run((["runuser", "-u", user, "--"] if user else []) + list(a), check=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run(f"{bin_dir}/initdb", "-D", f"{base}/data", "-U", "embargo", "-A", "trust")
    # The production settings docs/postgresql.md recommends, as shipped.
    shutil.copy(PRODUCTION_SETTINGS, f"{base}/data/embargo.conf")
    with open(f"{base}/data/postgresql.conf", "a") as conf:
        conf.write("\ninclude 'embargo.conf'\n")
    if user:
        subprocess.run(["chown", "-R", user, f"{base}/data"], check=True)
    run(f"{bin_dir}/pg_ctl", "-D", f"{base}/data", "-l", f"{base}/log", "-w", "start", "-o",
        f"-c listen_addresses='' -k {base}/sock -p 5432")
    run(f"{bin_dir}/createdb", "-h", f"{base}/sock", "-U", "embargo", "bench")
    stop = lambda: run(f"{bin_dir}/pg_ctl", "-D", f"{base}/data", "-m", "fast", "stop")
    return f"postgres://embargo@localhost:5432/bench?host={base}/sock", stop


def commit():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def postgres_version():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        return ""
    out = subprocess.run([f"{bins[-1]}/postgres", "--version"], capture_output=True, text=True).stdout
    return out.split()[2] if out else ""


def embargo_run(binary, tmp, messages, database_url=None):
    data = tempfile.mkdtemp(dir=tmp)
    config = os.path.join(data, "embargo.toml")
    http, smtp, metrics_port = free_port(), free_port(), free_port()
    with open(config, "w") as f:
        # Metrics are served on their own loopback listener, never on the public one.
        f.write(f'metrics_listen = "127.0.0.1:{metrics_port}"\n')
        # Sender authentication (DKIM/SPF/DMARC) needs DNS, which this machine does not reach.
        f.write("[mail]\nmessages_per_minute_per_ip = 100000000\nmax_connections_per_ip = 1000\n"
                "check_sender_authentication = false\n")
    args = [binary, "serve", "--config", config, "--data-dir", os.path.join(data, "d"),
            "--http", f"127.0.0.1:{http}", "--smtp", f"127.0.0.1:{smtp}"]
    if database_url:
        args += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_")}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_port(smtp)
        rate, t0 = smtp_source(smtp, messages)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
        # Every new report is acknowledged by mail (to the outbox Maildir, no relay here).
        acknowledged, done = wait_files(os.path.join(data, "d", "outbox", "new", "*"), messages, t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    buckets, count, batch_sum, batch_count = [], 0, 0.0, 0
    for line in metrics.splitlines():
        if line.startswith("embargo_smtp_commit_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
        elif line.startswith("embargo_smtp_commit_seconds_count"):
            count = float(line.split()[-1])
        elif line.startswith("embargo_intake_batch_size_sum"):
            batch_sum = float(line.split()[-1])
        elif line.startswith("embargo_intake_batch_size_count"):
            batch_count = float(line.split()[-1])
    p99 = next(le for le, cumulative in sorted(buckets) if cumulative >= 0.99 * count)
    out = subprocess.run([binary, "report", "list", "--json", "--data-dir", os.path.join(data, "d")]
                         + (["--database-url", database_url] if database_url else []),
                         capture_output=True, text=True, env=env, check=True)
    stored = len(json.loads(out.stdout))
    if database_url:
        # Leave the database empty for the next run.
        subprocess.run(["psql", database_url, "-q", "-c",
                        "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Flush now, so that PostgreSQL's next checkpoint does not land in the next run.
        subprocess.run(["psql", database_url, "-q", "-c", "CHECKPOINT"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return rate, p99, stored, batch_sum / max(batch_count, 1), acknowledged, done


def table(results, messages, runs):
    """Markdown rows: rates are medians over the runs, p99 the worst run's bound, the
    "all done" time the median."""
    rows = []
    postfix_rate = float("nan")
    if results["postfix"]:
        postfix_rate = statistics.median(r[0] for r in results["postfix"])
        done = statistics.median(r[2] for r in results["postfix"])
        rows.append(f"| Postfix 3.7 (queue, then Maildir) | {postfix_rate:.0f} msg/s | 1.00x | n/a | "
                    f"{done:.1f} s | {min(r[1] for r in results['postfix'])} of {messages} delivered |")
    for name in ("sqlite", "postgres"):
        if not results[name]:
            continue
        rate = statistics.median(r[0] for r in results[name])
        p99 = max(r[1] for r in results[name])
        stored = min(r[2] for r in results[name])
        batch = statistics.median(r[3] for r in results[name])
        acknowledged = min(r[4] for r in results[name])
        done = statistics.median(r[5] for r in results[name])
        rows.append(f"| Embargo on {'SQLite' if name == 'sqlite' else 'PostgreSQL'} | {rate:.0f} msg/s | "
                    f"{rate / postfix_rate:.2f}x | ≤ {p99 * 1000:g} ms | {done:.1f} s | {stored} of {messages} "
                    f"stored, {acknowledged} acknowledged; mean commit batch {batch:.1f} |")
    return "\n".join(rows)


HEADER = """| target | accept rate | vs Postfix | p99 accept latency | all delivered / acknowledged | check |
|---|---|---|---|---|---|
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sustained", type=int, default=20000,
                        help="messages of the one sustained run per target (0: none)")
    parser.add_argument("--targets", default="postfix,sqlite,postgres",
                        help="comma-separated subset of postfix,sqlite,postgres (BENCHMARKS.md is written "
                             "only when all three run)")
    parser.add_argument("--binary", help="measure this build instead of building target/release/embargo")
    args = parser.parse_args()
    targets = set(args.targets.split(","))
    for tool in ("smtp-source", "postfix"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install postfix")
    binary = args.binary
    if not binary:
        # The same build as bench/web.py's (with the seeder example, whose dev-dependencies
        # change feature unification): both benchmarks measure one binary, built once.
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "embargo", "--bin", "embargo",
                        "--example", "seed"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "embargo")
    tmp = tempfile.mkdtemp(prefix="embargo-smtp-bench-")
    os.chmod(tmp, 0o755)
    pg_url, pg_stop = start_postgres(tmp) if "postgres" in targets else (None, None)

    def settle():
        # Each target starts with the previous one's writes on disk, not still being
        # written back beside it.
        os.sync()
        time.sleep(1)

    loads = []

    def load():
        # The machine's 1-minute load average as a run starts (other work on the same cores).
        loads.append(os.getloadavg()[0])

    def one_round(messages, results):
        settle()
        if "postfix" in targets:
            load()
            results["postfix"].append(postfix_run(tempfile.mkdtemp(dir=tmp), messages))
            settle()
        if "sqlite" in targets:
            load()
            results["sqlite"].append(embargo_run(binary, tmp, messages))
            settle()
        if pg_url:
            load()
            results["postgres"].append(embargo_run(binary, tmp, messages, pg_url))

    burst = {"postfix": [], "sqlite": [], "postgres": []}
    sustained = {"postfix": [], "sqlite": [], "postgres": []}
    try:
        for _ in range(args.runs):
            one_round(args.messages, burst)
        if args.sustained:
            one_round(args.sustained, sustained)
    finally:
        if pg_stop:
            pg_stop()
        shutil.rmtree(tmp, ignore_errors=True)

    body = f"""
`python3 bench/smtp_intake.py --messages {args.messages} --runs {args.runs} --sustained {args.sustained}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
at commit {commit()}{f" (binary {args.binary})" if args.binary else ""}.
Machine: {machine()}. 1-minute load as each run started: {min(loads):.1f} to {max(loads):.1f}.
Load: `smtp-source -s 16 -l 2048` (16 concurrent sessions, 2 KB messages) against each target in
turn, on loopback. Embargo answers 250 only after the message is committed durably (SQLite WAL
with `synchronous=FULL`; PostgreSQL commit); concurrent sessions are committed together (group
commit, one statement per table per batch). The same process acknowledges every new report by
mail (written to the outbox Maildir, fsynced) and indexes it, in batched background jobs that
let intake go first for at most 2 s at a time. "All delivered / acknowledged" is the time from
the start of the load until the last message is in Postfix's Maildir, or the last
acknowledgement is in Embargo's outbox. PostgreSQL {postgres_version()} runs with the production settings of
`packaging/postgresql/embargo.conf` (docs/postgresql.md: `shared_buffers` 2 GB, `max_wal_size` 8 GB,
`synchronous_commit` on), on the same two cores.

A burst of {args.messages} messages, {args.runs} runs (medians; p99 is the worst run's histogram bound):

{HEADER}{table(burst, args.messages, args.runs)}
"""
    if args.sustained:
        body += f"""
Sustained: {args.sustained} messages, one run each (long enough that acknowledging and indexing
run beside intake rather than after it):

{HEADER}{table(sustained, args.sustained, 1)}
"""
    body += """
Target from issue 3: at least twice Postfix's accept rate in the same run, p99 under 50 ms.
"""
    if targets >= {"postfix", "sqlite", "postgres"}:
        write_section("SMTP intake", body)
    print(body)


if __name__ == "__main__":
    main()

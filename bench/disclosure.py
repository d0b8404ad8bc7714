#!/usr/bin/env python3
"""Disclosure runbook benchmark (issue 16): how soon after the instant the first public
effect starts, and how much the runbook adds over the critical path of its steps.

Each run makes a report with an approved advisory (the OSV vector GO-2020-0001's content,
with mitigations), plans its disclosure a few seconds ahead, arms it with a second person,
and lets `embargo serve` (its job workers) run it. The announcement channels are local fakes
of Slack's webhook, Mastodon and X that answer after a fixed latency (--latency, default
200 ms) and record every request's own duration; the mailing list goes to the outbox; the
advisory has no CVE ID (CVE Services has its own benchmark-free fake in the tests). Measured per run, from the plan's status (the server's clock):

  * first public effect: when the first public step (the advisory's publication) started,
    after the instant;
  * total: from the instant to the end of the close-out;
  * critical path: the external calls' own time along the longest chain of steps (here the
    announcement channels run side by side after the advisory: the slowest channel's
    requests, as the fakes timed them);
  * overhead: total minus the critical path (the runbook's own work: claiming steps,
    recording intents and results, publishing the advisory, the close-out).

Writes the results, with the machine and commit, to BENCHMARKS.md (section "Disclosure
runbook"). Timing lives here, never in tests.

Usage: python3 bench/disclosure.py [--runs N] [--latency MS] [--binary PATH] [--backend sqlite|postgres]
"""

import argparse
import datetime
import http.server
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTOR = os.path.join(ROOT, "..", "shared", "vectors", "osv", "linter-testdata", "GO-2020-0001.json")
LIST = "oss-security@lists.example.org"


class Fakes:
    """Slack webhook, Mastodon and X on one loopback server, each request timed."""

    def __init__(self, latency):
        self.latency = latency
        self.calls = []  # (channel, method, path, started, finished)
        self.lock = threading.Lock()
        fakes = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method):
                started = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path
                time.sleep(fakes.latency)
                channel = "slack" if path.startswith("/slack") else "mastodon" if path.startswith("/api/v1") else "x"
                if path.startswith("/slack"):
                    # A live webhook refuses an empty payload with "no_text" (the credentials check).
                    has_text = b'"text"' in body
                    status, out = (200, "ok") if has_text else (400, "no_text")
                elif path == "/api/v1/accounts/verify_credentials":
                    status, out = 200, {"id": "1", "username": "project", "acct": "project"}
                elif path.startswith("/api/v1/accounts/1/statuses"):
                    status, out = 200, []
                elif path == "/api/v1/statuses" and method == "POST":
                    status, out = 200, {"id": "1001", "url": "https://social.example/@project/1001",
                                        "content": json.loads(body or b"{}").get("status", ""),
                                        "created_at": "2026-12-05T00:00:00.000Z"}
                elif path.startswith("/2/users/me"):
                    status, out = 200, {"data": {"id": "42", "username": "project", "name": "Project"}}
                elif path.startswith("/2/users/42/tweets"):
                    status, out = 200, {"meta": {"result_count": 0}}
                elif path == "/2/tweets" and method == "POST":
                    status, out = 201, {"data": {"id": "2001", "text": json.loads(body or b"{}").get("text", ""),
                                                 "edit_history_tweet_ids": ["2001"]}}
                else:
                    status, out = 404, {"error": "not found"}
                self.answer(status, out)
                with fakes.lock:
                    fakes.calls.append((channel, method, path, started, time.time()))

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def since(self, t0):
        with self.lock:
            return [c for c in self.calls if c[3] >= t0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    def __init__(self, binary, data_dir, env):
        self.binary = binary
        self.data_dir = data_dir
        self.env = env

    def run(self, args, user="alice", stdin=b""):
        env = dict(self.env)
        env["USER"] = user
        out = subprocess.run([self.binary, *args, "--data-dir", self.data_dir], input=stdin, env=env,
                             capture_output=True)
        if out.returncode != 0:
            sys.exit(f"{args}: {out.stdout.decode()}{out.stderr.decode()}")
        return out.stdout.decode()


def ready_report(it, title, n):
    mail = (f"From: rita@example.org\r\nTo: security@example.org\r\nSubject: {title}\r\n"
            f"Message-ID: <bench-{n}-{time.time()}@example.org>\r\n\r\nSteps\r\n").encode()
    reference = it.run(["ingest-mail"], stdin=mail).strip().split()[-1]
    it.run(["report", "product", reference, "app"])
    it.run(["report", "transition", reference, "triaging"])
    it.run(["report", "transition", reference, "accepted"])
    imported = it.run(["advisory", "import", VECTOR]).split()[1]
    record = json.loads(it.run(["advisory", "export", imported, "--format", "json"]))
    draft = next(w for w in it.run(["advisory", "create", "--report", reference]).split() if w.startswith("DRAFT-"))
    record["id"] = draft
    record["title"] = title
    record["workarounds"] = "Limit request bodies to 1 MiB until you upgrade."
    record.pop("cve_id", None)  # no CVE Services here: the plan has no CVE step
    path = os.path.join(it.data_dir, f"{draft}.json")
    with open(path, "w") as f:
        json.dump(record, f)
    it.run(["advisory", "edit", draft, path])
    it.run(["advisory", "submit", draft], user="alice")
    it.run(["advisory", "approve", draft], user="bob")
    return reference


def one_run(it, fakes, n, lead_seconds):
    reference = ready_report(it, f"Overflow number {n}", n)
    at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lead_seconds)).replace(microsecond=0)
    at_text = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    plan = it.run(["disclosure", "plan", reference, "--at", at_text, "--as", "alice@example.org"]).split()[0]
    status = json.loads(it.run(["disclosure", "status", plan, "--json"]))
    if status["problems"]:
        sys.exit(f"plan {plan}: {status['problems']}")
    it.run(["disclosure", "approve", plan, "--as", "bob@example.org", "--hash", status["content_hash"]])
    t0 = at.timestamp()
    deadline = time.time() + lead_seconds + 60
    while True:
        status = json.loads(it.run(["disclosure", "status", plan, "--json"]))
        if status["state"] in ("done", "stopped"):
            break
        if time.time() > deadline:
            sys.exit(f"plan {plan} did not finish: {status}")
        time.sleep(0.2)
    if status["state"] != "done":
        sys.exit(f"plan {plan} stopped: {status['stop_reason']}")
    steps = {s["name"]: s for s in status["steps"]}
    public = [s for s in status["steps"] if s["kind"] != "preflight" and s["state"] == "done"]
    first = min(s["started_after_instant_ms"] for s in public)
    end = max(s["started_after_instant_ms"] + s["duration_ms"] for s in public)
    calls = fakes.since(t0 - 1)
    per_channel = {}
    for channel, _method, _path, started, finished in calls:
        per_channel[channel] = per_channel.get(channel, 0.0) + (finished - started) * 1000
    critical = max(per_channel.values()) if per_channel else 0.0
    return {"first_ms": first, "total_ms": end, "critical_ms": critical, "overhead_ms": end - critical,
            "steps": {k: v["duration_ms"] for k, v in steps.items() if v["duration_ms"] is not None},
            "calls": len(calls)}


def describe_machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f", {round(kib / 1024 / 1024)} GiB RAM"
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores{mem}; Linux {platform.release()}; {rustc}"


def write_section(text):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        content = f.read()
    pattern = re.compile(r"## Disclosure runbook\n.*?(?=\n## |\Z)", re.S)
    if pattern.search(content):
        content = pattern.sub(text.rstrip("\n") + "\n", content)
    else:
        content = content.rstrip("\n") + "\n\n" + text
    with open(path, "w") as f:
        f.write(content)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=int, default=200, help="each fake request's latency, ms")
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "embargo"))
    parser.add_argument("--lead", type=int, default=4, help="seconds from planning to the instant")
    args = parser.parse_args()
    fakes = Fakes(args.latency / 1000)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_")}
        env.update({
            "EMBARGO_PUBLIC_URL": "https://security.example.org",
            "EMBARGO_HTTP": f"127.0.0.1:{port}",
            "EMBARGO_SMTP": "127.0.0.1:0",
            "EMBARGO_METRICS_LISTEN": "127.0.0.1:0",
            "EMBARGO_CVE_SERVICES__DRY_RUN": "true",
            "EMBARGO_ADVISORIES__CVE_ORG_ID": "b3476cb9-2e3d-41a6-98d0-0f47421a65b6",
            "EMBARGO_ADVISORIES__CVE_SHORT_NAME": "example",
            "EMBARGO_ANNOUNCE__MAILING_LISTS": LIST,
            "EMBARGO_ANNOUNCE__SLACK_WEBHOOK_URL": fakes.url() + "/slack/T000/B000/XXXX",
            "EMBARGO_ANNOUNCE__MASTODON_URL": fakes.url(),
            "EMBARGO_ANNOUNCE__MASTODON_TOKEN": "mastodon-token",
            "EMBARGO_ANNOUNCE__X_API_URL": fakes.url(),
            "EMBARGO_ANNOUNCE__X_TOKEN": "x-token",
        })
        it = Instance(args.binary, data, env)
        it.run(["migrate"])
        it.run(["product", "add", "app"])
        for email in ("alice@example.org", "bob@example.org"):
            it.run(["admin", "create-user", "--email", email, "--role", "admin", "--password-stdin"], user="root",
                   stdin=b"a long enough password 1\n")
        server = subprocess.Popen([args.binary, "serve", "--data-dir", data], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            results = [one_run(it, fakes, n, args.lead) for n in range(args.runs)]
        finally:
            server.terminate()
            server.wait(10)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()

    def row(name, key):
        values = [r[key] for r in results]
        return f"| {name} | {statistics.median(values):.0f} ms | {min(values):.0f} ms | {max(values):.0f} ms |"

    today = datetime.date.today().isoformat()
    text = f"""## Disclosure runbook

`python3 bench/disclosure.py --runs {args.runs} --latency {args.latency}` on {today} at commit {commit}.
Machine: {describe_machine()}.
Release build, `embargo serve` on SQLite (its job workers run the plans), one plan per run
planned {args.lead} s ahead and armed by a second person. Steps: pre-flight, the advisory's
publication (no CVE ID: no CVE step), Slack, Mastodon and X (local fakes answering after
{args.latency} ms each; Mastodon and X are first asked whether the post exists), the mailing
list (outbox), the close-out. Times are the server's, relative to the instant.

| measure | median | min | max |
|---|---|---|---|
{row("first public effect starts after the instant", "first_ms")}
{row("instant to the end of the close-out", "total_ms")}
{row("critical path: the slowest channel's calls, as the fakes timed them", "critical_ms")}
{row("runbook overhead (total minus critical path)", "overhead_ms")}

Targets from issue 16: the first public effect within 1 s after the instant; at most 1 s
over the critical path.
"""
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()

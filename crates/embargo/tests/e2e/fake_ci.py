#!/usr/bin/env python3
"""A fake external CI for the tests, following the webhook contract of ADR 19: it checks the
X-Embargo-Signature of each delivery (HMAC-SHA256 of "<t>.<body>" under the shared secret,
t within five minutes), then answers per delivery as told on the command line:

  refuse  answer 503 (nothing taken)
  accept  answer 202, then call back "running" and "passed" with a log, signed
  drop    read the request and close the connection without answering (answer lost)

Prints "port N" once listening; prints one line per delivery ("delivery run=N verdict").
"""
import hashlib, hmac, json, os, socket, sys, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["FAKE_CI_SECRET"].encode()
PLAN = sys.argv[1:]
count = 0
lock = threading.Lock()

def sign(body: bytes) -> str:
    t = int(time.time())
    mac = hmac.new(SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"

def verified(header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t = int(parts.get("t", "0"))
    expected = hmac.new(SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - t) <= 300 and hmac.compare_digest(expected, parts.get("v1", ""))

def call_back(url: str, payload: dict) -> None:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-Embargo-Signature": sign(body)})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()

def run(job: dict) -> None:
    time.sleep(0.3)
    call_back(job["callback_url"], {"run": job["run"], "commit": job["commit"], "state": "running",
                                    "log": f"fake CI: testing {job['commit']} of {job['line']}\n"})
    time.sleep(0.3)
    call_back(job["callback_url"], {"run": job["run"], "commit": job["commit"], "state": "passed",
                                    "log": "fake CI: all 3 tests passed\n"})

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verified(self.headers.get("X-Embargo-Signature", ""), body):
            print("delivery with a bad signature", flush=True)
            self.send_response(401)
            self.end_headers()
            return
        job = json.loads(body)
        with lock:
            verdict = PLAN[count] if count < len(PLAN) else "accept"
            count += 1
        print(f"delivery run={job['run']} {verdict}", flush=True)
        if verdict == "refuse":
            self.send_response(503)
            self.end_headers()
        elif verdict == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.send_response(202)
            self.end_headers()
            threading.Thread(target=run, args=(job,), daemon=True).start()

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()

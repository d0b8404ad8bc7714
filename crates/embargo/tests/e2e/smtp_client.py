#!/usr/bin/env python3
"""SMTP peer for Embargo's end-to-end tests, on Python's smtplib.

  smtp_client.py send HOST PORT FROM TO FILE
      Sends the raw message in FILE; prints the final reply code (or the error code).
  smtp_client.py load HOST PORT COUNT CLIENTS LOG
      Sends COUNT messages (Subject "durability N", Message-ID <durability-N@load.test>)
      from CLIENTS threads, one connection each, and appends N to LOG (flushed) for every
      message answered 250. Stops a thread when the server goes away.
  smtp_client.py steady HOST PORT FIRST COUNT CLIENTS LOG SECONDS
      Sends messages FIRST..FIRST+COUNT-1 (as load does) the way an MTA does: a message not
      answered 250 (connection refused or cut, 4xx) is sent again, with the same Message-ID,
      after 100 ms on a new connection, until SECONDS have passed. Appends "N T" to LOG for
      every message answered 250 (T: seconds since the start), and "N refused CODE" for a 5xx.
  smtp_client.py burst HOST PORT SOURCE COUNT TAG
      From local address SOURCE, sends COUNT messages (Subject "TAG N") over one connection;
      prints each message's reply code on a line.
  smtp_client.py raw HOST PORT SOURCE LINE
      From local address SOURCE, reads the greeting, sends LINE, prints both replies (or
      "closed" when the server closes without a greeting).
"""
import socket
import time
import smtplib
import sys
import threading


def send(host, port, sender, rcpt, path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        with smtplib.SMTP(host, int(port), timeout=30) as smtp:
            smtp.ehlo("client.test")
            refused = smtp.sendmail(sender, [rcpt], raw)
            print(250 if not refused else 550)
    except smtplib.SMTPResponseException as e:
        print(e.smtp_code)
    except smtplib.SMTPRecipientsRefused as e:
        print(list(e.recipients.values())[0][0])


def load(host, port, count, clients, log_path):
    count, clients = int(count), int(clients)
    lock = threading.Lock()
    log = open(log_path, "a")
    counter = iter(range(count))

    def worker():
        try:
            smtp = smtplib.SMTP(host, int(port), timeout=30)
            smtp.ehlo("load.test")
        except OSError:
            return
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            msg = (
                f"From: loader{n % 97}@load.test\r\nTo: security@example.org\r\n"
                f"Subject: durability {n}\r\nMessage-ID: <durability-{n}@load.test>\r\n\r\n"
                + ("payload line for the durability test\r\n" * 50)
            ).encode()
            try:
                smtp.sendmail(f"loader{n % 97}@load.test", ["security@example.org"], msg)
            except (smtplib.SMTPException, OSError):
                return
            with lock:
                log.write(f"{n}\n")
                log.flush()
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()


def steady(host, port, first, count, clients, log_path, seconds):
    first, count, clients, seconds = int(first), int(count), int(clients), float(seconds)
    lock = threading.Lock()
    log = open(log_path, "a")
    counter = iter(range(first, first + count))
    start = time.monotonic()

    def message(n):
        return (
            f"From: loader{n % 97}@load.test\r\nTo: security@example.org\r\n"
            f"Subject: durability {n}\r\nMessage-ID: <durability-{n}@load.test>\r\n\r\n"
            + ("payload line for the durability test\r\n" * 50)
        ).encode()

    def worker():
        smtp = None
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            while time.monotonic() - start < seconds:
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP(host, int(port), timeout=10)
                        smtp.ehlo("load.test")
                    smtp.sendmail(f"loader{n % 97}@load.test", ["security@example.org"], message(n))
                    line = f"{n} {time.monotonic() - start:.3f}"
                except smtplib.SMTPResponseException as e:
                    if e.smtp_code >= 500:
                        line = f"{n} refused {e.smtp_code}"
                    else:
                        line = None
                except smtplib.SMTPRecipientsRefused as e:
                    code = list(e.recipients.values())[0][0]
                    line = f"{n} refused {code}" if code >= 500 else None
                except (smtplib.SMTPException, OSError):
                    line = None
                if line is not None:
                    with lock:
                        log.write(line + "\n")
                        log.flush()
                    break
                try:
                    if smtp is not None:
                        smtp.close()
                except OSError:
                    pass
                smtp = None
                time.sleep(0.1)
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()


def burst(host, port, source, count, tag):
    with smtplib.SMTP(host, int(port), timeout=30, source_address=(source, 0)) as smtp:
        smtp.ehlo("burst.test")
        for n in range(int(count)):
            msg = (
                f"From: burst@load.test\r\nTo: security@example.org\r\nSubject: {tag} {n}\r\n"
                f"Message-ID: <{tag}-{n}@load.test>\r\n\r\nbody\r\n"
            ).encode()
            try:
                smtp.sendmail("burst@load.test", ["security@example.org"], msg)
                print(250, flush=True)
            except smtplib.SMTPResponseException as e:
                print(e.smtp_code, flush=True)
                smtp.rset()


def raw(host, port, source, line):
    s = socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))
    f = s.makefile("rb")
    greeting = f.readline()
    if not greeting:
        print("closed")
        return
    print(greeting.decode().strip())
    s.sendall(line.encode() + b"\r\n")
    print(f.readline().decode().strip())
    s.close()


if __name__ == "__main__":
    {"send": send, "load": load, "steady": steady, "burst": burst, "raw": raw}[sys.argv[1]](*sys.argv[2:])

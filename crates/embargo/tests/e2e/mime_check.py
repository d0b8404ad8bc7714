#!/usr/bin/env python3
"""Strict MIME check for Embargo's end-to-end tests, on Python's email package.

  mime_check.py FILE
      Parses the message in FILE with email.policy.strict (any defect raises), reads every
      header of every part, decodes every text part, and prints JSON: the top-level
      MIME-Version, Subject, content type and parameters, and per part its content type,
      parameters, headers and decoded text. Exits non-zero on any defect.
"""
import email
import email.policy
import json
import sys


def main(path):
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.strict)
    parts = []
    for part in msg.walk():
        if part.defects:
            raise SystemExit(f"defects in {part.get_content_type()}: {part.defects}")
        headers = {k: str(v) for k, v in part.items()}
        for value in part.values():
            if getattr(value, "defects", None):
                raise SystemExit(f"header defects: {value.defects}")
        entry = {
            "content_type": part.get_content_type(),
            "params": dict(part.get_params() or []),
            "headers": headers,
        }
        if part.get_content_maintype() == "text":
            entry["text"] = part.get_content()
        parts.append(entry)
    print(json.dumps({
        "mime_version": msg.get("MIME-Version"),
        "subject": str(msg.get("Subject")),
        "content_type": msg.get_content_type(),
        "params": dict(msg.get_params() or []),
        "parts": parts,
    }))


if __name__ == "__main__":
    main(sys.argv[1])

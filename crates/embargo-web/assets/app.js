// Embargo's only script. Pages work without it; it adds two conveniences:
// 1. The report form solves its anti-spam proof of work, so it can be sent at once
//    (without JavaScript the server asks for a short wait instead).
// 2. Keyboard navigation in the inbox: j/k move, Enter opens, / focuses the search.
// 3. The CVSS calculator on the report page shows the score as metrics are picked (scored
//    by the server, GET /cvss/score, with the same code that stores it).
// 4. The disclosure runbook's steps table follows the run live, from the plan's server-sent
//    events (GET /disclosure/{plan}/events; a reload shows the same without script).
// 5. Passkeys (WebAuthn), which need navigator.credentials: adding one on the account page,
//    signing in with one from /login, and one as the second factor after the password. The
//    server keeps each ceremony's challenge and verifies every answer (ADR 28).
"use strict";

async function sha256(text) {
  const data = new TextEncoder().encode(text);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

function leadingZeroBits(bytes, bits) {
  let left = bits;
  for (const byte of bytes) {
    if (left <= 0) return true;
    const take = Math.min(8, left);
    if (byte >> (8 - take) !== 0) return false;
    left -= take;
  }
  return left <= 0;
}

async function solve(form) {
  const challenge = form.querySelector('input[name="challenge"]');
  const nonceField = form.querySelector('input[name="nonce"]');
  const status = document.getElementById("pow-status");
  if (!challenge || !nonceField || !crypto.subtle) return;
  const bits = parseInt(challenge.dataset.bits || "0", 10);
  for (let nonce = 0; nonce < 50000000; nonce++) {
    if (leadingZeroBits(await sha256(challenge.value + ":" + nonce), bits)) {
      nonceField.value = String(nonce);
      if (status) status.textContent = "Anti-spam check done in your browser: the form can be sent now.";
      return;
    }
  }
}

function inboxKeys(table) {
  const rows = Array.from(table.querySelectorAll("tbody tr"));
  let index = -1;
  const select = (i) => {
    if (rows.length === 0) return;
    index = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => r.classList.toggle("selected", j === index));
    rows[index].scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    if (event.key === "j") select(index + 1);
    else if (event.key === "k") select(index - 1);
    else if (event.key === "Enter" && index >= 0) {
      const link = rows[index].querySelector("a");
      if (link) link.click();
    } else if (event.key === "/") {
      const search = document.getElementById("q");
      if (search) { event.preventDefault(); search.focus(); }
    }
  });
}

function cvssCalculator(form) {
  const version = form.dataset.version;
  const output = form.querySelector("output.cvss-score");
  const pasted = form.querySelector('input[name="vector"]');
  const extra = form.querySelector('input[name="extra"]');
  const update = async () => {
    let vector = pasted && pasted.value.trim();
    if (!vector) {
      const parts = ["CVSS:" + version];
      for (const fieldset of form.querySelectorAll("fieldset.metric")) {
        const checked = fieldset.querySelector("input:checked");
        if (!checked) { output.textContent = "pick every metric"; return; }
        parts.push(checked.name.slice(2) + ":" + checked.value);
      }
      if (extra && extra.value) parts.push(extra.value);
      vector = parts.join("/");
    }
    try {
      const response = await fetch("/cvss/score?vector=" + encodeURIComponent(vector), { credentials: "same-origin" });
      const result = await response.json();
      output.textContent = result.error ? "invalid: " + result.error : result.text;
    } catch (_) {
      output.textContent = "score unavailable";
    }
  };
  form.addEventListener("change", update);
  if (pasted) pasted.addEventListener("input", update);
}

function signedSeconds(ms) {
  return (ms >= 0 ? "+" : "-") + (Math.abs(ms) / 1000).toFixed(3) + " s";
}

function runbookLive(table) {
  if (!window.EventSource) return;
  const live = document.getElementById("live-status");
  const planState = document.getElementById("plan-state");
  const source = new EventSource(table.dataset.events);
  const set = (row, field, text) => {
    const cell = row.querySelector('[data-field="' + field + '"]');
    if (!cell) return;
    const target = cell.querySelector("code") || cell;
    if (target.textContent !== text) target.textContent = text;
  };
  source.addEventListener("status", (event) => {
    const plan = JSON.parse(event.data);
    if (planState) { planState.textContent = plan.state; planState.dataset.state = plan.state; }
    const body = table.tBodies[0];
    for (const step of plan.steps) {
      let row = Array.from(body.rows).find((r) => r.dataset.step === step.name);
      if (!row) {
        // A step the page did not know: a row like the others, built as text.
        row = body.insertRow();
        row.dataset.step = step.name;
        const head = document.createElement("th");
        head.scope = "row";
        head.textContent = step.name;
        row.appendChild(head);
        const kind = row.insertCell();
        kind.className = "kind";
        kind.textContent = step.kind;
        const state = row.insertCell();
        const pill = document.createElement("span");
        pill.className = "pill step-state";
        pill.dataset.field = "state";
        state.appendChild(pill);
        for (const field of ["external_id", "started", "took", "attempts", "detail"]) {
          const cell = row.insertCell();
          cell.dataset.field = field;
          if (field === "started" || field === "took" || field === "attempts") cell.className = "num";
          if (field === "external_id") cell.appendChild(document.createElement("code"));
        }
      }
      set(row, "state", step.state);
      set(row, "external_id", step.external_id || "");
      set(row, "started", step.started_after_instant_ms == null ? "" : signedSeconds(step.started_after_instant_ms));
      set(row, "took", step.duration_ms == null ? "" : (step.duration_ms / 1000).toFixed(3) + " s");
      set(row, "attempts", String(step.attempts));
      set(row, "detail", step.detail);
    }
    const waiting = plan.steps.filter((s) => s.state === "failed" || s.state === "needs-person").map((s) => s.name);
    let words = "Live: plan " + plan.state + ".";
    if (waiting.length > 0) words += " Waiting for a person: " + waiting.join(", ") + " (reload the page to decide).";
    else if (plan.state === "stopped") words += " Stopped: reload the page to resume it.";
    if (live) live.textContent = words;
  });
  source.addEventListener("end", () => {
    source.close();
    // The decisions and forms depend on the state: show the finished page.
    if (live) live.textContent = "The plan is finished; reload for the full page.";
  });
}

function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function toBase64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// The server's options with their binary members (base64url in JSON) as buffers.
function creationOptions(options) {
  const key = options.publicKey;
  key.challenge = fromBase64url(key.challenge);
  key.user.id = fromBase64url(key.user.id);
  for (const c of key.excludeCredentials || []) c.id = fromBase64url(c.id);
  return { publicKey: key };
}

function requestOptions(options) {
  const key = options.publicKey;
  key.challenge = fromBase64url(key.challenge);
  for (const c of key.allowCredentials || []) c.id = fromBase64url(c.id);
  return { publicKey: key };
}

// The browser's answer as JSON, binary members as base64url.
function answerJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
  }
  return { id: credential.id, rawId: toBase64url(credential.rawId), type: credential.type, response: response, extensions: {} };
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Accept": "application/json" },
    body: body === undefined ? "" : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error(data.message || "The server refused (" + response.status + ").");
  return data;
}

// A passkey block: a button, a status line, and its two endpoints in data attributes.
function passkeyBlock(block) {
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  block.hidden = false;
  const button = block.querySelector(".passkey-go");
  const status = block.querySelector(".passkey-status");
  const register = block.id === "passkey-register";
  const next = block.dataset.next ? "?next=" + encodeURIComponent(block.dataset.next) : "";
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Waiting for your passkey…";
    try {
      const options = await postJSON(block.dataset.options);
      let done;
      if (register) {
        const credential = await navigator.credentials.create(creationOptions(options));
        const name = block.querySelector("input[name=name]");
        done = await postJSON(block.dataset.answer, { name: name ? name.value : "", credential: answerJSON(credential) });
      } else {
        const credential = await navigator.credentials.get(requestOptions(options));
        done = await postJSON(block.dataset.answer + next, answerJSON(credential));
      }
      status.textContent = "Done.";
      window.location.assign(done.to);
    } catch (error) {
      status.textContent = error && error.name === "NotAllowedError"
        ? "The passkey was not used (cancelled or timed out). Try again."
        : (error && error.message) || "The passkey did not work.";
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const block of document.querySelectorAll(".passkey-only[data-options]")) passkeyBlock(block);
  const steps = document.querySelector("table#steps[data-events]");
  if (steps) runbookLive(steps);
  for (const form of document.querySelectorAll("form.cvss-calc")) cvssCalculator(form);
  const form = document.getElementById("report-form");
  if (form) solve(form);
  const table = document.getElementById("inbox-table");
  if (table) inboxKeys(table);
});

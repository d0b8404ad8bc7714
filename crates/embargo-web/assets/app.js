// Embargo's only script. Pages work without it; it adds two conveniences:
// 1. The report form solves its anti-spam proof of work, so it can be sent at once
//    (without JavaScript the server asks for a short wait instead).
// 2. Keyboard navigation in the inbox: j/k move, Enter opens, / focuses the search.
// 3. The CVSS calculator on the report page shows the score as metrics are picked (scored
//    by the server, GET /cvss/score, with the same code that stores it).
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

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.cvss-calc")) cvssCalculator(form);
  const form = document.getElementById("report-form");
  if (form) solve(form);
  const table = document.getElementById("inbox-table");
  if (table) inboxKeys(table);
});

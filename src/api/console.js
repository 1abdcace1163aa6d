"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("pw-token");
let me = null;
let lastQuery = null;
let pending = null;

async function api(path, opts = {}) {
  const headers = Object.assign({ "content-type": "application/json" }, opts.headers || {});
  if (token) headers["authorization"] = "Bearer " + token;
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  const ct = res.headers.get("content-type") || "";
  const body = ct.includes("json") ? await res.json() : await res.blob();
  if (res.status === 401 && token) { logout(false); throw new Error("session ended: log in again"); }
  if (!res.ok) { const e = new Error((body && body.error) || res.statusText); e.body = body; throw e; }
  return body;
}

// Plates, case numbers and purposes go in POST bodies, never in a URL (proxy and server logs keep URLs).
function post(path, body) { return api(path, { method: "POST", body: JSON.stringify(body) }); }

function text(s) { const d = document.createElement("span"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }

function show(user) {
  me = user;
  $("who").textContent = user.username + " (" + user.roles.join(", ") + ")";
  $("login-view").classList.add("hidden");
  $("change-view").classList.add("hidden");
  $("logout").classList.remove("hidden");
  if (user.permissions.includes("search")) $("search-view").classList.remove("hidden");
  if (user.permissions.includes("view_audit")) {
    $("audit-view").classList.remove("hidden");
    $("report-view").classList.remove("hidden");
    const today = new Date().toISOString().slice(0, 10);
    if (!$("report-to").value) $("report-to").value = today;
    if (!$("report-from").value) $("report-from").value = today.slice(0, 8) + "01";
  }
  $("purpose").innerHTML = user.purposes.map((p) => "<option>" + text(p) + "</option>").join("");
}

function logout(tell) {
  if (tell && token) fetch("/api/logout", { method: "POST", headers: { authorization: "Bearer " + token } });
  token = null; me = null; sessionStorage.removeItem("pw-token");
  for (const v of ["search-view", "read-view", "audit-view", "report-view", "change-view"]) $(v).classList.add("hidden");
  $("login-view").classList.remove("hidden");
  $("logout").classList.add("hidden");
  $("who").textContent = "";
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    const r = await post("/api/login", { username: $("username").value, password: $("password").value });
    token = r.token; sessionStorage.setItem("pw-token", token);
    $("password").value = "";
    show(r.user);
  } catch (err) {
    if (err.body && err.body.must_change_password) {
      pending = { username: $("username").value, password: $("password").value };
      $("password").value = "";
      $("login-view").classList.add("hidden");
      $("change-view").classList.remove("hidden");
    } else {
      $("login-error").textContent = err.message;
    }
  }
});

$("change-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("change-error").textContent = "";
  try {
    const r = await post("/api/password", { username: pending.username, password: pending.password, new_password: $("new-password").value });
    pending = null; $("new-password").value = "";
    token = r.token; sessionStorage.setItem("pw-token", token);
    show(r.user);
  } catch (err) { $("change-error").textContent = err.message; }
});

$("logout").addEventListener("click", (e) => { e.preventDefault(); logout(true); });

$("search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("search-error").textContent = "";
  const q = { plate: $("plate").value, purpose: $("purpose").value, case_number: $("case").value };
  if ($("from").value) q.from = new Date($("from").value + "Z").toISOString();
  if ($("to").value) q.to = new Date($("to").value + "Z").toISOString();
  lastQuery = { purpose: $("purpose").value, case_number: $("case").value };
  try {
    const r = await post("/api/search", q);
    $("search-count").textContent = r.total + " read(s)";
    $("results").querySelector("tbody").innerHTML = r.reads.map((x) =>
      "<tr class=\"read\" data-id=\"" + text(x.id) + "\"><td>" + text(x.captured_at) + "</td><td>" + text(x.plate) +
      "</td><td>" + text(x.camera_id) + "</td><td>" + text(x.confidence.toFixed(2)) + "</td></tr>").join("");
  } catch (err) { $("search-error").textContent = err.message; }
});

$("results").addEventListener("click", async (e) => {
  const row = e.target.closest("tr.read");
  if (!row) return;
  try {
    const r = await post("/api/reads/" + encodeURIComponent(row.dataset.id), lastQuery);
    $("read-id").textContent = r.id;
    $("read-detail").innerHTML = "<p>Plate <strong id=\"read-plate\">" + text(r.plate) + "</strong>, camera " + text(r.camera_id) +
      ", " + text(r.captured_at) + ", confidence " + text(r.confidence.toFixed(2)) + "</p>";
    $("read-view").classList.remove("hidden");
    $("read-crop").removeAttribute("src");
    const img = await post("/api/reads/" + encodeURIComponent(r.id) + "/crop", lastQuery);
    $("read-crop").src = URL.createObjectURL(img);
  } catch (err) { $("read-msg").textContent = err.message; }
});

$("hold-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await post("/api/holds", { read_id: $("read-id").textContent, case_number: lastQuery.case_number, reason: $("hold-reason").value });
    $("read-msg").textContent = "Evidence hold placed.";
  } catch (err) { $("read-msg").textContent = err.message; }
});

$("audit-load").addEventListener("click", async () => {
  const r = await api("/api/audit?limit=50");
  $("audit").querySelector("tbody").innerHTML = r.entries.map((x) =>
    "<tr><td>" + text(x.seq) + "</td><td class=\"at\">" + text(new Date(x.at_ms).toISOString()) + "</td><td>" + text(x.user) + "</td><td>" + text(x.action) + "</td><td>" + text(x.query) +
    "</td><td>" + text(x.purpose) + " / " + text(x.case_number) + "</td><td>" + text(x.result_count) + "</td><td>" + text(x.outcome) + "</td></tr>").join("");
});

// The same checks as `polewatch audit verify`, run by the daemon while it keeps working.
$("audit-verify").addEventListener("click", async () => {
  $("verify-result").textContent = "Verifying…";
  try {
    const r = await post("/api/audit/verify", {});
    $("verify-result").textContent = (r.ok ? "" : "BROKEN: ") + r.message;
    $("verify-result").className = r.ok ? "note ok" : "error";
  } catch (err) { $("verify-result").textContent = err.message; $("verify-result").className = "error"; }
});

function reportQuery(format) {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  return "/api/audit/report?from=" + encodeURIComponent($("report-from").value) + "&to=" + encodeURIComponent($("report-to").value) +
    "&tz=" + encodeURIComponent(tz) + "&format=" + format;
}

// The daemon renders the printable page (every value escaped, no script); its body is shown here.
$("report-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("report-error").textContent = "";
  try {
    const page = await (await api(reportQuery("html"))).text();
    const doc = new DOMParser().parseFromString(page, "text/html");
    $("report").innerHTML = doc.body.innerHTML;
  } catch (err) { $("report-error").textContent = err.message; }
});

$("report-print").addEventListener("click", () => window.print());

$("report-json").addEventListener("click", async () => {
  $("report-error").textContent = "";
  try {
    const r = await api(reportQuery("json"));
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([JSON.stringify(r, null, 2)], { type: "application/json" }));
    a.download = "compliance-" + $("report-from").value + "-" + $("report-to").value + ".json";
    document.body.appendChild(a); a.click(); a.remove();
  } catch (err) { $("report-error").textContent = err.message; }
});

if (token) api("/api/me").then(show).catch(() => logout(false));

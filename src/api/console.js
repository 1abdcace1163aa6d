"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("pw-token");
let me = null;
let lastQuery = null;
let pending = null;
let stream = null;         // the live alert stream's AbortController
let camStream = null;      // the Cameras page's stream
let aimStream = null;      // the aiming snapshot's stream
let aimCam = null, aimSize = null, roiPts = [];
let alerts = [];           // the pending queue as last read
let current = null;        // the alert shown

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

// A screen's status line shows its latest action's outcome: an earlier request that answers late (a quick
// second click) must not overwrite it. Each action takes a `say` from its screen's line.
function statusLine(id) {
  let seq = 0;
  return () => { const mine = ++seq; return (m) => { if (mine === seq) $(id).textContent = m; }; };
}

function show(user) {
  me = user;
  $("who").textContent = user.username + " (" + user.roles.join(", ") + ")";
  $("login-view").classList.add("hidden");
  $("change-view").classList.add("hidden");
  $("logout").classList.remove("hidden");
  if (user.permissions.includes("search")) $("search-view").classList.remove("hidden");
  if (user.permissions.includes("verify_alert")) { $("alerts-view").classList.remove("hidden"); loadAlerts(false); listen(); }
  if (user.permissions.includes("request_release") || user.permissions.includes("approve_release")) {
    $("releases-view").classList.remove("hidden");
    $("release-form").classList.toggle("hidden", !user.permissions.includes("request_release"));
  }
  if (user.permissions.includes("place_hold") || user.permissions.includes("release_hold")) $("holds-view").classList.remove("hidden");
  if (user.permissions.includes("verify_alert") || user.permissions.includes("manage_hotlists")) $("hotlists-view").classList.remove("hidden");
  for (const f of ["local-add-form", "local-remove-form"]) $(f).classList.toggle("hidden", !user.permissions.includes("manage_hotlists"));
  if (user.permissions.includes("view_cameras")) { $("cameras-view").classList.remove("hidden"); watchCameras(); }
  if (user.permissions.includes("manage_users")) $("users-view").classList.remove("hidden");
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
  if (stream) { stream.abort(); stream = null; }
  if (camStream) { camStream.abort(); camStream = null; }
  stopAiming();
  for (const v of ["search-view", "read-view", "audit-view", "report-view", "change-view", "alerts-view", "releases-view", "users-view", "holds-view", "hotlists-view", "cameras-view"]) $(v).classList.add("hidden");
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

// ---- Alerts: the queue, live by server-sent events (the daemon pushes; nothing polls) ----

function beep() {
  if (!$("alert-sound").checked) return;
  document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const o = ctx.createOscillator(); const g = ctx.createGain();
    o.frequency.value = 880; g.gain.value = 0.2; o.connect(g); g.connect(ctx.destination);
    o.start(); o.stop(ctx.currentTime + 0.25); o.onended = () => ctx.close();
  } catch (e) { /* no audio device: the visual queue still updates */ }
}

// An alert's stage (alert.v1): raised on an early read (provisional), then confirmed, changed or withdrawn
// by the vote over the vehicle's whole pass. Older records carry no stage: they were confirmed.
function stageOf(a) { return (a.hit && a.hit.stage) || "confirmed"; }

const STAGE_TEXT = {
  provisional: "Provisional: raised on an early read while the vehicle is still in view; the vote over its whole pass will confirm, change or withdraw it.",
  confirmed: "Confirmed by the vote over the vehicle's pass.",
  changed: "Changed: the vote over the pass read the plate differently, and that reading still hits this entry.",
  withdrawn: "Withdrawn: the vote over the pass no longer hits this entry. Do not act on it; reject it with a reason to clear it.",
};

function stageBadge(a) {
  const st = stageOf(a);
  return "<span class=\"stage stage-" + text(st) + "\">" + text(st) + "</span> ";
}

function alertLine(a) {
  const h = a.hit || {};
  return stageBadge(a) + "<strong>" + text(a.plate) + "</strong> · " + text(h.list) + ": " + text(h.entry) + " (" + text(h.match_kind) + ", " +
    text(h.category) + ", priority " + text(h.priority) + ") · " + text(a.camera) + " · " + text(a.captured_at);
}

async function loadAlerts(announce) {
  const before = new Set(alerts.map((a) => a.id));
  const r = await api("/api/alerts?pending=true");
  alerts = r.alerts;
  $("alerts-count").textContent = alerts.length + " alert(s) waiting";
  $("alert-list").innerHTML = alerts.map((a, i) => "<li role=\"option\" id=\"alert-" + text(a.id) + "\" data-i=\"" + i + "\" aria-selected=\"" +
    String(!!(current && current.id === a.id)) + "\">" + alertLine(a) + "</li>").join("");
  if (announce && alerts.some((a) => !before.has(a.id))) beep();
  if (current && !alerts.some((a) => a.id === current.id)) { current = null; $("alert-detail").classList.add("hidden"); }
  // The alert on screen moved on (confirmed, changed, withdrawn): show what it is now.
  const now = current && alerts.find((a) => a.id === current.id);
  if (now && (stageOf(now) !== stageOf(current) || (now.hit || {}).revision !== (current.hit || {}).revision)) { current = now; showStage(now); }
}

function showStage(a) {
  const st = stageOf(a);
  $("alert-stage").innerHTML = stageBadge(a) + text(STAGE_TEXT[st] || st) + (a.hit && a.hit.revision ? " (revision " + text(a.hit.revision) + ")" : "");
  // A withdrawn hit is not there to be confirmed; it can only be cleared.
  $("alert-confirm").disabled = st === "withdrawn";
}

async function choose(i) {
  const a = alerts[i];
  if (!a) return;
  current = a;
  for (const li of $("alert-list").children) li.setAttribute("aria-selected", String(li.dataset.i === String(i)));
  $("alert-list").setAttribute("aria-activedescendant", "alert-" + a.id);
  $("alert-info").innerHTML = "<p>Read <strong id=\"alert-plate\">" + text(a.plate) + "</strong> on " + text(a.camera) + " at " + text(a.captured_at) +
    "</p><p>Matched entry <strong>" + text(a.hit.entry) + "</strong> of list " + text(a.hit.list) + " (" + text(a.hit.source) + "): match kind <strong id=\"alert-kind\">" +
    text(a.hit.match_kind) + "</strong>, score " + text(Number(a.hit.score).toFixed(2)) + ", category " + text(a.hit.category) + "</p>";
  showStage(a);
  $("alert-detail").classList.remove("hidden");
  $("alert-msg").textContent = "";
  $("alert-crop").removeAttribute("src");
  if (a.has_crop) {
    // Choices can overtake each other (arrow keys held down): a crop that arrives after another alert
    // was chosen is dropped, never shown under the wrong plate.
    try {
      const crop = await api("/api/alerts/" + encodeURIComponent(a.id) + "/crop");
      if (current && current.id === a.id) $("alert-crop").src = URL.createObjectURL(crop);
    } catch (err) { if (current && current.id === a.id) $("alert-msg").textContent = err.message; }
  }
}

$("alert-list").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) choose(Number(li.dataset.i)); });
$("alert-list").addEventListener("keydown", (e) => {
  const i = current ? alerts.findIndex((a) => a.id === current.id) : -1;
  if (e.key === "ArrowDown" || e.key === "j") { e.preventDefault(); choose(Math.min(i + 1, alerts.length - 1)); }
  else if (e.key === "ArrowUp" || e.key === "k") { e.preventDefault(); choose(Math.max(i - 1, 0)); }
  else if (e.key === "Enter" && current) { e.preventDefault(); $("alert-reason").focus(); }
});

async function decide(decision) {
  if (!current) return;
  const reason = $("alert-reason").value.trim();
  if (!reason) { $("alert-msg").textContent = "Give the reason (what you checked) first."; $("alert-reason").focus(); return; }
  try {
    await post("/api/alerts/" + encodeURIComponent(current.id) + "/decision", { decision, note: reason });
    $("alert-msg").textContent = (decision === "verified" ? "Confirmed: " : "Rejected: ") + current.plate;
    $("alert-reason").value = "";
    current = null;
    await loadAlerts(false);
    $("alert-detail").classList.add("hidden");
    $("alert-list").focus();
  } catch (err) { $("alert-msg").textContent = err.message; }
}
$("alert-confirm").addEventListener("click", () => decide("verified"));
$("alert-reject").addEventListener("click", () => decide("rejected"));
$("alert-form").addEventListener("submit", (e) => e.preventDefault());

// fetch (not EventSource) so the token goes in a header, never in a URL; the body is read as it comes.
async function listen() {
  if (stream || !token) return;
  const ctl = new AbortController(); stream = ctl;
  try {
    const res = await fetch("/api/alerts/stream", { headers: { authorization: "Bearer " + token }, signal: ctl.signal });
    if (!res.ok) throw new Error(res.statusText);
    const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        if (/^event: ready/m.test(block)) $("alerts-live").textContent = "live";
        if (/^event: alert/m.test(block)) await loadAlerts(true);
      }
    }
  } catch (e) { /* aborted at logout, or the connection dropped */ }
  $("alerts-live").textContent = "";
  if (stream === ctl) { stream = null; if (token) setTimeout(listen, 3000); }
}

// Reads a server-sent-event stream with fetch (the token in a header); calls on(event, data) per event.
async function readEvents(path, ctl, on) {
  const res = await fetch(path, { headers: { authorization: "Bearer " + token }, signal: ctl.signal });
  if (!res.ok) throw new Error(res.statusText);
  const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
      const ev = (block.match(/^event: (.*)$/m) || [])[1];
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (ev) await on(ev, data);
    }
  }
}

// ---- Cameras (installer) ----

async function watchCameras() {
  if (camStream || !token) return;
  const ctl = new AbortController(); camStream = ctl;
  try {
    await readEvents("/api/cameras/stream", ctl, (ev, data) => {
      if (ev !== "cameras") return;
      $("cameras-live").textContent = "live";
      const cams = JSON.parse(data);
      const f = (r, k) => r ? r[k].toFixed(1) : "…";
      $("cameras").querySelector("tbody").innerHTML = cams.map((c) => "<tr data-id=\"" + text(c.id) + "\"><td>" + text(c.id) + (c.decoder ? "<br><span class=\"note\">" + text(c.decoder) + "</span>" : "") +
        "<br><button type=\"button\" class=\"aim\" data-id=\"" + text(c.id) + "\" aria-label=\"Aim camera " + text(c.id) + "\">Aim</button>" +
        "</td><td class=\"state\">" + text(c.state) + "</td><td>" + f(c.rates, "decoded_fps") + "</td><td>" + f(c.rates, "analysed_fps") + "</td><td>" + f(c.rates, "gated_fps") +
        "</td><td>" + (c.rates ? text(c.rates.since_frame_s.toFixed(0)) + " s ago" : "…") + "</td><td>" + text(c.reconnects) + "</td><td class=\"verdict\">" + text(c.verdict) + "</td></tr>").join("") ||
        "<tr><td colspan=\"8\">No camera is configured.</td></tr>";
    });
  } catch (e) { /* aborted at logout, or dropped */ }
  $("cameras-live").textContent = "";
  if (camStream === ctl) { camStream = null; if (token) setTimeout(watchCameras, 3000); }
}

// ---- Aiming a camera: live snapshot, verdict, region of interest ----

$("cameras").addEventListener("click", (e) => { const b = e.target.closest("button.aim"); if (b) aimAt(b.dataset.id); });

function stopAiming() {
  if (aimStream) { aimStream.abort(); aimStream = null; }
  aimCam = null; $("aim").classList.add("hidden"); $("aim-live").textContent = "";
}

async function aimAt(id) {
  stopAiming();
  aimCam = id; roiPts = []; aimSize = null;
  $("aim-camera").textContent = id; $("aim").classList.remove("hidden");
  $("roi-toml").value = ""; $("roi-error").textContent = ""; $("aim-verdict").textContent = "waiting for the first snapshot…";
  drawRoi([]);
  const ctl = new AbortController(); aimStream = ctl;
  try {
    await readEvents("/api/cameras/" + encodeURIComponent(id) + "/snapshot", ctl, (ev, data) => {
      if (ev !== "snapshot") return;
      const d = JSON.parse(data);
      $("aim-live").textContent = "live";
      if (d.image) showJpeg($("aim-img"), d.image);
      if (d.size) { aimSize = d.size; $("aim-svg").setAttribute("viewBox", "0 0 " + d.size[0] + " " + d.size[1]); }
      $("aim-verdict").textContent = d.verdict.text; $("aim-verdict").className = d.verdict.level;
      $("aim-meta").textContent = (d.size ? "frame " + d.size[0] + " × " + d.size[1] + ", " + d.age_s + " s old, brightness " + d.brightness + " of 255; " : "") +
        d.recent_plates + " plates read in the last 10 minutes; recommended plate height " + d.band[0] + "–" + d.band[1] + " px, tilt up to " + d.max_tilt_deg + "°.";
      $("aim-plates").querySelector("tbody").innerHTML = d.plates.map((p) => "<tr class=\"fit-" + text(p.fit.replace(/ /g, "-")) + "\"><td>" + (p.text == null ? "<em>not read</em>" : text(p.text)) +
        "</td><td class=\"height\">" + text(p.height_px.toFixed(0)) + " px</td><td>" + (p.tilt_deg == null ? "…" : text(p.tilt_deg.toFixed(0)) + "°") + "</td><td class=\"fit\">" + text(p.fit) + "</td></tr>").join("") ||
        "<tr><td colspan=\"4\">No plate on this snapshot.</td></tr>";
      drawRoi(d.roi || []);
    });
  } catch (e) { /* aborted, or dropped */ }
  $("aim-live").textContent = "";
  if (aimStream === ctl) { aimStream = null; if (token && aimCam === id) setTimeout(() => { if (aimCam === id && !aimStream) aimAt(id); }, 3000); }
}

// The page's policy allows images from the box and blob: URLs only: the snapshot's base64 becomes a blob.
function showJpeg(img, dataUrl) {
  const bin = atob(dataUrl.slice(dataUrl.indexOf(",") + 1));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const old = img.src;
  img.src = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
}

function drawRoi(configured) {
  const pts = (a) => a.map((p) => p[0] + "," + p[1]).join(" ");
  if (configured) $("roi-now").setAttribute("points", pts(configured));
  $("roi-new").setAttribute("points", pts(roiPts.length > 2 ? roiPts.concat([roiPts[0]]) : roiPts));
  const r = aimSize ? Math.max(aimSize[0], aimSize[1]) / 150 : 6;
  $("roi-dots").innerHTML = roiPts.map((p) => "<circle cx=\"" + p[0] + "\" cy=\"" + p[1] + "\" r=\"" + r + "\"></circle>").join("");
}

// A click on the snapshot adds a point, in the frame's own pixels.
$("aim-svg").addEventListener("click", (e) => {
  if (!aimSize) return;
  const box = $("aim-svg").getBoundingClientRect();
  roiPts.push([Math.round((e.clientX - box.left) / box.width * aimSize[0]), Math.round((e.clientY - box.top) / box.height * aimSize[1])]);
  drawRoi(null);
});
$("roi-undo").addEventListener("click", () => { roiPts.pop(); drawRoi(null); });
$("roi-clear").addEventListener("click", () => { roiPts = []; $("roi-toml").value = ""; drawRoi(null); });
$("roi-get").addEventListener("click", async () => {
  $("roi-error").textContent = ""; $("roi-toml").value = "";
  if (!aimSize) { $("roi-error").textContent = "wait for the snapshot"; return; }
  try {
    const r = await post("/api/cameras/" + encodeURIComponent(aimCam) + "/roi", { points: roiPts, width: aimSize[0], height: aimSize[1] });
    $("roi-toml").value = r.toml;
  } catch (e) { $("roi-error").textContent = e.message; }
});
$("aim-stop").addEventListener("click", stopAiming);

// ---- Release requests ----

const releaseStatus = statusLine("release-msg");

function day(ms) { return ms == null ? "" : new Date(ms).toISOString().slice(0, 16).replace("T", " "); }

$("release-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const say = releaseStatus();
  say("");
  const kind = $("rel-scope").value;
  const scope = kind === "held_for_case" ? { kind, case_number: $("rel-case").value }
    : { kind, plates: $("rel-plates").value.split(/[\s,]+/).filter(Boolean),
        from_ms: $("rel-from").value ? Date.parse($("rel-from").value + "T00:00:00Z") : 0,
        to_ms: $("rel-to").value ? Date.parse($("rel-to").value + "T23:59:59Z") : Date.now() };
  try {
    const r = await post("/api/releases", { agency: $("rel-agency").value, jurisdiction: $("rel-jurisdiction").value,
      requester_name: $("rel-requester").value, purpose: $("rel-purpose").value, case_number: $("rel-case").value, scope });
    say("Request entered (" + r.id + "): a second person must approve it.");
    await loadReleases();
  } catch (err) { say(err.message); }
});

async function loadReleases() {
  const r = await api("/api/releases");
  const can = (p) => me && me.permissions.includes(p);
  $("releases").querySelector("tbody").innerHTML = r.requests.slice().reverse().map((q) => {
    const sc = q.scope.kind === "held_for_case" ? "reads held for " + text(q.scope.case_number)
      : text((q.scope.plates || []).join(", ")) + " " + day(q.scope.from_ms) + " – " + day(q.scope.to_ms) + (q.scope.whole_store ? " <strong>WHOLE STORE</strong>" : "");
    const d = q.decision;
    const decided = d ? (d.approved ? "approved" : "denied") + " by " + text(d.reviewer) + " " + day(d.at_ms) + (d.note ? ": " + text(d.note) : "") : "waiting";
    let acts = "";
    const id = text(q.id);
    if (!d && can("approve_release")) {
      acts = "<label>Note <input class=\"rel-note\" data-id=\"" + id + "\"></label> <button type=\"button\" class=\"rel-approve\" data-id=\"" + id +
        "\">Approve</button> <button type=\"button\" class=\"rel-deny\" data-id=\"" + id + "\">Deny</button>";
    }
    if (d && d.approved && can("export")) {
      acts = "<button type=\"button\" class=\"rel-export\" data-id=\"" + id + "\">Export</button>";
      if (q.exports.length) acts += " <button type=\"button\" class=\"rel-download\" data-id=\"" + id + "\">Download bundle</button> <span class=\"note\">" + q.exports.length + " export(s)</span>";
    }
    return "<tr data-id=\"" + id + "\"><td>" + day(q.entered_at_ms) + "</td><td>" + text(q.agency) + " (" + text(q.jurisdiction) + "), " + text(q.requester_name) +
      "</td><td>" + text(q.case_number) + " / " + text(q.purpose) + "</td><td>" + sc + "</td><td>" + text(q.entered_by) + "</td><td class=\"decision\">" + decided +
      "</td><td>" + acts + "</td></tr>";
  }).join("");
}

$("releases-load").addEventListener("click", () => loadReleases().catch((err) => { $("release-msg").textContent = err.message; }));

$("releases").addEventListener("click", async (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  const id = b.dataset.id;
  const say = releaseStatus();
  say("");
  try {
    if (b.classList.contains("rel-approve") || b.classList.contains("rel-deny")) {
      const note = document.querySelector(".rel-note[data-id=\"" + CSS.escape(id) + "\"]").value;
      await post("/api/releases/" + encodeURIComponent(id) + "/decision", { approved: b.classList.contains("rel-approve"), note });
      say("Decision recorded.");
    } else if (b.classList.contains("rel-export")) {
      const r = await post("/api/releases/" + encodeURIComponent(id) + "/export", {});
      say("Exported: " + r.manifest.reads + " read(s), signed.");
    } else if (b.classList.contains("rel-download")) {
      const blob = await api("/api/releases/" + encodeURIComponent(id) + "/bundle");
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob); a.download = "polewatch-export-" + id + ".tar";
      document.body.appendChild(a); a.click(); a.remove();
      say("Bundle downloaded.");
      return;
    }
    await loadReleases();
  } catch (err) { say(err.message); }
});

// ---- Users (administrators) ----

async function loadUsers() {
  const r = await api("/api/users");
  $("users").querySelector("tbody").innerHTML = r.users.map((u) => {
    const until = (u.training || []).map((t) => text(t.course) + " " + day(t.expires_ms).slice(0, 10)).join("<br>");
    const status = [u.locked ? "locked" : "active", u.pending_roles ? "roles " + text(u.pending_roles.roles.join(",")) + " wait for approval (granted by " + text(u.pending_roles.granted_by) + ")" : "",
      u.must_change_password ? "must change password" : ""].filter(Boolean).join("; ");
    return "<tr class=\"user\" data-name=\"" + text(u.username) + "\"><td>" + text(u.username) + "</td><td>" + text(u.display_name) + ", " + text(u.job_title) +
      "</td><td>" + text(u.roles.join(", ")) + "</td><td>" + (u.last_login_ms ? day(u.last_login_ms) : "never") + "</td><td>" + until + "</td><td class=\"status\">" + status + "</td></tr>";
  }).join("");
}

const usersStatus = statusLine("users-msg");
async function usersDo(f, done) {
  const say = usersStatus();
  say("");
  try { await f(); say(done); await loadUsers(); } catch (err) { say(err.message); }
}

$("users-load").addEventListener("click", () => usersDo(async () => {}, ""));
$("users").addEventListener("click", (e) => { const tr = e.target.closest("tr.user"); if (tr) $("ua-username").value = tr.dataset.name; });
$("user-add-form").addEventListener("submit", (e) => {
  e.preventDefault();
  usersDo(() => post("/api/users", { username: $("nu-username").value, display_name: $("nu-name").value, job_title: $("nu-title").value,
    roles: [$("nu-role").value], password: $("nu-password").value }).then(() => { $("nu-password").value = ""; }),
    "User added: a second administrator must approve the roles.");
});
const target = () => "/api/users/" + encodeURIComponent($("ua-username").value);
$("ua-train").addEventListener("click", () => usersDo(() => post(target() + "/training", { course: $("ua-course").value,
  completed: new Date($("ua-completed").value + "T00:00:00Z").toISOString(), expires: new Date($("ua-expires").value + "T23:59:59Z").toISOString() }), "Training recorded."));
$("ua-lock").addEventListener("click", () => usersDo(() => post(target() + "/lock", { reason: $("ua-reason").value }), "Locked."));
$("ua-unlock").addEventListener("click", () => usersDo(() => post(target() + "/unlock", {}), "Unlocked."));
$("ua-approve").addEventListener("click", () => usersDo(() => post(target() + "/approve", {}), "Roles approved."));
$("ua-reset").addEventListener("click", () => usersDo(() => post(target() + "/password", { password: $("ua-password").value }).then(() => { $("ua-password").value = ""; }),
  "Temporary password set: the user must replace it at the next login."));

// ---- Retention and holds ----

function bytes(n) { return n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + " GiB" : (n / (1 << 20)).toFixed(1) + " MiB"; }

async function loadHolds() {
  const r = await api("/api/holds");
  const t = r.retention; const d = r.disk;
  const cases = Object.entries(r.by_case).map(([c, n]) => text(c) + " (" + n + ")").join(", ") || "none";
  const last = t.last_sweep ? day(t.last_sweep.at_ms) + " (" + text(t.last_sweep.outcome) + ": " + text(t.last_sweep.detail) + ")" : "none recorded yet";
  const oldest = t.oldest_read_ms ? ((Date.now() - t.oldest_read_ms) / 86400000).toFixed(1) + " days old" : "no reads";
  let disk = "unknown";
  if (d) {
    const warn = d.used_pct >= d.full_watermark_pct ? " <strong class=\"flag\">past the full watermark</strong>" : d.used_pct >= d.high_watermark_pct ? " <strong class=\"flag\">past the high watermark</strong>" : "";
    disk = d.used_pct + " % of " + bytes(d.total_bytes) + " (high " + d.high_watermark_pct + " %, full " + d.full_watermark_pct + " %)" + warn;
  }
  $("retention-summary").innerHTML = "<p><strong id=\"holds-in-force\">" + r.in_force + " hold(s) in force</strong> by case: " + cases + "</p>" +
    "<p>Reads kept " + t.min_days + " to " + t.max_days + " days; " + t.reads + " read(s), oldest " + oldest + "; store " + bytes(t.store_bytes) + ".</p>" +
    "<p>Last sweep: " + last + ". <span id=\"next-sweep\">Next sweep: " + (t.next_sweep_ms ? day(t.next_sweep_ms) : "after start-up, every " + t.sweep_interval_s + " s") + "</span>.</p>" +
    "<p id=\"disk-use\">Disk: " + disk + "</p>";
  const canRelease = me.permissions.includes("release_hold");
  $("holds").querySelector("tbody").innerHTML = r.holds.map((h) => {
    const state = h.released ? "released by " + text(h.released.by) + " " + day(h.released.at_ms) : h.in_force ? "in force" : "expired";
    const act = h.in_force && canRelease ? "<label>Reason <input class=\"hold-reason\" data-id=\"" + text(h.id) + "\"></label> <button type=\"button\" class=\"hold-release\" data-id=\"" +
      text(h.id) + "\" data-read=\"" + text(h.read_id) + "\">Release</button>" : "";
    return "<tr><td>" + text(h.case_number) + "</td><td>" + text(h.read_id) + "</td><td>" + text(h.placed_by) + " " + day(h.placed_at_ms) + "</td><td>" + text(h.reason) +
      "</td><td>" + (h.expires_at_ms ? day(h.expires_at_ms) : "never") + "</td><td class=\"state\">" + state + "</td><td>" + act + "</td></tr>";
  }).join("");
}

const holdsStatus = statusLine("holds-msg");
$("holds-load").addEventListener("click", () => loadHolds().catch((err) => { $("holds-msg").textContent = err.message; }));
$("holds").addEventListener("click", async (e) => {
  const b = e.target.closest("button.hold-release");
  if (!b) return;
  const reason = document.querySelector(".hold-reason[data-id=\"" + CSS.escape(b.dataset.id) + "\"]").value;
  const say = holdsStatus();
  say("");
  try {
    await post("/api/holds/release", { read_id: b.dataset.read, hold_id: b.dataset.id, reason });
    say("Hold released.");
    await loadHolds();
  } catch (err) { say(err.message); }
});

// ---- Hotlists (read-only) ----

$("hotlists-load").addEventListener("click", () => loadHotlists());

$("local-add-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const r = await post("/api/hotlists/local", { plate: $("local-plate").value, region: $("local-region").value, category: $("local-category").value,
      priority: Number($("local-priority").value), expiry: $("local-expiry").value, notes: $("local-notes").value, reason: $("local-reason").value });
    $("hotlists-msg").textContent = "Entry " + r.added + " added; " + r.retroactive_alerts + " alert(s) from recent reads.";
    await loadHotlists(true);
  } catch (err) { $("hotlists-msg").textContent = err.message; }
});

$("local-remove-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const r = await post("/api/hotlists/local/remove", { plate: $("local-remove-plate").value, reason: $("local-remove-reason").value });
    $("hotlists-msg").textContent = r.removed + " entry removed.";
    await loadHotlists(true);
  } catch (err) { $("hotlists-msg").textContent = err.message; }
});

async function loadHotlists(keepMsg) {
  if (!keepMsg) $("hotlists-msg").textContent = "";
  try {
    const r = await api("/api/hotlists");
    $("hotlists").querySelector("tbody").innerHTML = r.lists.map((l) => "<tr><td>" + text(l.name) + "</td><td>" + text(l.origin) + "</td><td>" + day(l.loaded_at_ms) +
      "</td><td>" + text(l.entries) + "</td><td>" + text(l.active) + "</td></tr>").join("");
  } catch (err) { $("hotlists-msg").textContent = err.message; }
}

$("hotlist-search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("hotlists-msg").textContent = "";
  try {
    const r = await post("/api/hotlists/search", { query: $("hotlist-query").value });
    $("hotlists-msg").textContent = r.entries.length + " entr" + (r.entries.length === 1 ? "y" : "ies");
    $("hotlist-entries").querySelector("tbody").innerHTML = r.entries.map((x) => "<tr><td>" + text(x.entry) + "</td><td>" + text(x.list) + "</td><td>" + text(x.category) +
      "</td><td>" + text(x.priority) + "</td><td>" + text(x.source) + "</td><td>" + (x.expires_at_ms ? day(x.expires_at_ms) : "never") + (x.active ? "" : " (expired)") +
      "</td><td>" + text(x.notes) + "</td></tr>").join("");
  } catch (err) { $("hotlists-msg").textContent = err.message; }
});

if (token) api("/api/me").then(show).catch(() => logout(false));

// headroom dashboard: one server-sent event stream (/v1/dashboard/stream) drives the whole page.
// Every value from the server is put on the page as text (textContent, setAttribute), never as
// markup, so a job or model name with HTML in it shows as what it is.
"use strict";

const WINDOW_MS = 5 * 60 * 1000;   // the timeline shows at most the last five minutes, at least one
const MIN_WINDOW_MS = 60 * 1000;
const MAX_SAMPLES = 4000;
const SVGNS = "http://www.w3.org/2000/svg";
const HEADERS = { "X-Requested-With": "headroom" };   // the server asks for it on every change made with the session cookie

const samples = new Map();   // device -> [{t, bytes}]
const markers = [];          // {t, device, kind, label}
let state = null;
let watching = null;         // {id, before (object URL), events (EventSource)}

// ---- small helpers ------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function bytes(n) {
  if (n == null) return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)) + " " + u[i];
}

function secs(s) {
  if (s == null) return "";
  s = Math.round(s);
  return s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
}

function shortId(id) { return id.slice(0, 8); }

function ext(format) { return format === "jpeg" ? "jpg" : format || "png"; }

function ago(iso) {
  const d = (Date.now() - Date.parse(iso)) / 1000;
  return secs(Math.max(0, d)) + " ago";
}

async function call(method, url) {
  const r = await fetch(url, { method, headers: HEADERS, credentials: "same-origin" });
  if (!r.ok) {
    let detail = r.status + " " + r.statusText;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return r.status === 204 ? null : r.json();
}

// Skips re-drawing a part whose data did not change (so images do not reload and buttons stay put).
const drawn = new Map();
function unchanged(part, data) {
  const key = JSON.stringify(data);
  if (drawn.get(part) === key) return true;
  drawn.set(part, key);
  return false;
}

function replaceRows(tbody, rows, cols, empty) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: cols, text: empty }))]));
}

// ---- the memory timeline ------------------------------------------------------------------

// Bands stack bottom-up: each model's weights, each job's activations, workspace, cache, reserved.
function bandOrder(name) {
  if (name.startsWith("weights/")) return 0;
  if (name.startsWith("activations/")) return 1;
  return { workspace: 2, cache: 3, reserved: 4 }[name] ?? 5;
}

function hash(s) { let h = 7; for (const c of s) h = (h * 31 + c.charCodeAt(0)) >>> 0; return h; }

function bandColor(name) {
  const h = hash(name);
  if (name.startsWith("weights/")) return `hsl(${205 + h % 30}, 55%, ${42 + h % 16}%)`;
  if (name.startsWith("activations/")) return `hsl(${120 + h % 40}, 40%, ${45 + h % 18}%)`;
  return { workspace: "#dd8452", cache: "#b9bec6", reserved: "#e3e6ea" }[name] || "#999";
}

function bandLabel(name) {
  if (name.startsWith("weights/")) return "weights: " + name.slice(8);
  if (name.startsWith("activations/")) return "activations: job " + shortId(name.slice(12));
  if (name === "cache") return "cache (reserved, unused)";
  if (name === "reserved") return "reserved for jobs, not yet allocated";
  return name;
}

const MARK = { admitted: "#1f6fbf", finished: "#2e8b57", failed: "#c62828", cancelled: "#777", requeued: "#777",
               load: "#6a4fb3", unload: "#b3559d", rung: "#e08a00", oom: "#c62828", alert: "#c62828" };

function drawDevice(card, d) {
  const W = 1000, H = 240, L = 64, R = 10, T = 10, B = 22;
  const list = samples.get(d.name) || [];
  const now = state.now;
  const span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, list.length ? now - list[0].t : 0));
  const t0 = now - span;
  const shown = list.filter(s => s.t >= t0);
  // the step before the window starts holds until the first sample inside it
  const before = list.filter(s => s.t < t0).pop();
  if (before) shown.unshift({ t: t0, bytes: before.bytes });
  const names = [...new Set(shown.flatMap(s => Object.keys(s.bytes)))].sort((a, b) => bandOrder(a) - bandOrder(b) || a.localeCompare(b));
  let peak = 0;
  for (const s of shown) peak = Math.max(peak, Object.values(s.bytes).reduce((a, b) => a + b, 0));
  card.dataset.maxUsed = String(peak);
  const top = Math.max(d.budget_bytes, peak) * 1.06;
  const x = t => L + (W - L - R) * (t - t0) / span;
  const y = b => H - B - (H - T - B) * b / top;
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  g.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fbfcfd", stroke: "#dde3ea" }));
  // stacked steps: each band's top edge forward, then the band below's top edge back
  const base = shown.map(() => 0);
  for (const n of names) {
    if (!shown.length) break;
    const upper = shown.map((s, i) => base[i] + (s.bytes[n] || 0));
    let d1 = "", d2 = "";
    for (let i = 0; i < shown.length; i++) {
      const xi = x(shown[i].t), xn = i + 1 < shown.length ? x(shown[i + 1].t) : x(now);
      d1 += `${i ? "L" : "M"}${xi.toFixed(1)},${y(upper[i]).toFixed(1)} L${xn.toFixed(1)},${y(upper[i]).toFixed(1)} `;
    }
    for (let i = shown.length - 1; i >= 0; i--) {
      const xi = x(shown[i].t), xn = i + 1 < shown.length ? x(shown[i + 1].t) : x(now);
      d2 += `L${xn.toFixed(1)},${y(base[i]).toFixed(1)} L${xi.toFixed(1)},${y(base[i]).toFixed(1)} `;
    }
    const p = svg("path", { d: d1 + d2 + "Z", fill: bandColor(n) });
    const title = svg("title");
    title.textContent = bandLabel(n);
    p.append(title);
    g.append(p);
    for (let i = 0; i < shown.length; i++) base[i] = upper[i];
  }
  // the budget and the pressure lines
  const lines = [[1, "budget", "#1d2733", ""], ...d.thresholds.map((f, i) => [f, Math.round(f * 100) + "%", ["#9aa600", "#c98500", "#c62828"][i], "5 4"])];
  for (const [f, label, color, dash] of lines) {
    const yy = y(d.budget_bytes * f);
    g.append(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, stroke: color, "stroke-dasharray": dash, "stroke-width": f === 1 ? 1.5 : 1 }));
    const t = svg("text", { x: L - 4, y: yy + 3, "text-anchor": "end" });
    t.textContent = label === "budget" ? bytes(d.budget_bytes) : label;
    g.append(t);
  }
  // events
  for (const m of markers) {
    if (m.t < t0 || (m.device !== d.name && m.device !== "*")) continue;
    const xx = x(m.t);
    const line = svg("line", { x1: xx, x2: xx, y1: T, y2: H - B, stroke: MARK[m.kind] || "#555", "stroke-width": 1.2,
                               "stroke-dasharray": m.kind === "admitted" || m.kind === "finished" ? "2 2" : "" });
    const c = svg("circle", { cx: xx, cy: T + 4, r: 3.5, fill: MARK[m.kind] || "#555" });
    for (const e of [line, c]) {
      const title = svg("title");
      title.textContent = new Date(m.t).toLocaleTimeString() + " " + m.label;
      e.append(title);
      e.setAttribute("class", "marker " + m.kind);
      g.append(e);
    }
  }
  for (const [t, label] of [[t0, "-" + secs(span / 1000)], [t0 + span / 2, "-" + secs(span / 2000)], [now, "now"]]) {
    const tx = svg("text", { x: x(t), y: H - 6, "text-anchor": t === t0 ? "start" : t === now ? "end" : "middle" });
    tx.textContent = label;
    g.append(tx);
  }
  card.querySelector(".chart").replaceChildren(g);
  const legend = card.querySelector(".legend");
  legend.replaceChildren(...names.map(n => el("span", {}, el("i", { class: "swatch" }), bandLabel(n))));
  legend.querySelectorAll("i").forEach((i, k) => { i.style.background = bandColor(names[k]); });
  const keys = el("div", { class: "legend marks" }, "events:",
    ...["admitted", "finished", "failed", "rung", "oom", "load", "unload"].map(k => el("span", { "data-kind": k }, el("i"), k === "oom" ? "out of memory" : k === "rung" ? "ladder rung" : k)));
  keys.querySelectorAll("span").forEach(s => { s.firstChild.style.background = MARK[s.dataset.kind]; s.firstChild.style.borderRadius = "50%"; });
  legend.append(keys);
}

function renderDevices() {
  const box = document.getElementById("devices");
  for (const d of state.devices) {
    let card = box.querySelector(`[data-device="${CSS.escape(d.name)}"]`);
    if (!card) {
      card = el("div", { class: "card device", "data-device": d.name },
        el("h3", {}, el("span", { class: "name", text: d.name }), el("span", { class: "badge pressure" }), el("span", { class: "kind muted" })),
        el("div", { class: "figures" }), el("div", { class: "chart" }), el("div", { class: "legend" }));
      box.append(card);
    }
    const b = card.querySelector(".pressure");
    b.textContent = "pressure: " + d.pressure;
    b.className = "badge pressure " + d.pressure;
    card.querySelector(".kind").textContent = d.kind + ", " + d.precision;
    const running = Object.keys(d.running_jobs).length;
    const used = Object.values(d.bytes_by_category).reduce((a, c) => a + c, 0);
    card.querySelector(".figures").textContent = `budget ${bytes(d.budget_bytes)} · reserved by jobs ${bytes(d.reserved_bytes)} `
      + `(${Math.round(100 * d.reserved_bytes / d.budget_bytes)}%) · held by the allocators ${bytes(used)} · peak reserved ${bytes(d.reserved_peak_bytes)} · `
      + `${running} of ${d.max_running} running`;
    card.dataset.reserved = String(d.reserved_bytes);
    drawDevice(card, d);
  }
}

// ---- tables -------------------------------------------------------------------------------

function cancelButton(id) {
  return el("button", { type: "button", class: "cancel", text: "Cancel", onclick: () => call("DELETE", "/v1/jobs/" + encodeURIComponent(id)).catch(showError) });
}

function renderQueue() {
  if (unchanged("queue", state.queue.map(j => [j.id, j.priority, j.effective_priority, j.why, Math.round(j.waited_s)]))) return;
  const rows = state.queue.map(j => el("tr", { "data-job": j.id },
    el("td", { class: "id", title: j.id, text: shortId(j.id) }), el("td", { text: j.model }),
    el("td", { class: "num", text: j.priority + (j.effective_priority !== j.priority ? " (" + j.effective_priority + ")" : "") }),
    el("td", { class: "num", text: bytes(j.predicted_peak_bytes) }), el("td", { class: "num", text: secs(j.waited_s) }),
    el("td", { class: "why", text: j.why }), el("td", {}, cancelButton(j.id))));
  replaceRows(document.querySelector("#queue tbody"), rows, 7, "nothing waiting");
}

function renderRunning() {
  if (unchanged("running", state.running.map(j => [j.id, j.progress, j.device, Math.round(j.eta_s || -1)]))) return;
  const rows = state.running.map(j => el("tr", { "data-job": j.id },
    el("td", { class: "id", title: j.id, text: shortId(j.id) }), el("td", { text: j.model }), el("td", { text: j.device }),
    el("td", {}, el("progress", { max: Math.max(1, j.progress.total), value: j.progress.done }), " " + j.progress.done + "/" + j.progress.total),
    el("td", { class: "num", text: j.eta_s == null ? "…" : secs(j.eta_s) }), el("td", {}, cancelButton(j.id))));
  replaceRows(document.querySelector("#running tbody"), rows, 6, "nothing running");
}

function renderFinished() {
  // the time since each finished is redrawn at most every ten seconds
  if (unchanged("finished", [state.finished, Math.floor(state.now / 10000)])) return;
  const box = document.getElementById("finished");
  box.replaceChildren(...state.finished.map(j => {
    const thumb = j.result ? el("a", { href: j.result, target: "_blank", rel: "noopener" }, el("img", { src: j.result, alt: "result of " + shortId(j.id), loading: "lazy" }))
                           : el("div", { class: "thumb-none", text: j.state });
    return el("div", { class: "card job " + j.state, "data-job": j.id }, thumb,
      el("div", { class: "row" }, el("span", { class: "badge " + j.state, text: j.state + (j.cached ? " (cached)" : "") }), el("span", { class: "id", text: shortId(j.id) })),
      el("div", { text: j.model + " · " + j.width + "×" + j.height + (j.ran_s != null && !j.cached ? " · ran " + j.ran_s.toFixed(1) + " s" : "") }),
      j.error ? el("div", { class: "error", text: j.error }) : null,
      el("div", { class: "row" }, j.result ? el("a", { href: j.result, download: shortId(j.id) + "." + ext(j.format), text: "download" }) : null,
        j.memory_report ? el("a", { href: j.memory_report, target: "_blank", rel: "noopener", class: "report", text: "memory report" }) : null,
        el("span", { class: "muted", text: j.finished_at ? ago(j.finished_at) : "" })));
  }));
}

function renderModels() {
  const select = document.getElementById("model");
  const chosen = select.value;
  const names = state.models.map(m => m.name);
  if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
    select.replaceChildren(...names.map(n => el("option", { value: n, text: n })));
    if (names.includes(chosen)) select.value = chosen;
  }
  if (unchanged("models", [state.models, Math.floor(state.now / 10000)])) return;
  const rows = state.models.map(m => el("tr", { "data-model": m.name },
    el("td", { class: "name", text: m.name }), el("td", {}, el("span", { class: "badge " + (m.loaded ? "live" : ""), text: m.loaded ? "loaded" : "on disk" })),
    el("td", { class: "num", text: String(m.priority) }), el("td", { class: "num", text: m.loaded ? bytes(m.size_bytes) : "" }),
    el("td", { text: m.last_used_at ? ago(m.last_used_at) : "" }),
    el("td", {}, el("button", { type: "button", class: m.loaded ? "unload" : "load", text: m.loaded ? "Unload" : "Load",
      onclick: () => call("POST", "/v1/models/" + encodeURIComponent(m.name) + (m.loaded ? "/unload" : "/load")).catch(showError) }))));
  replaceRows(document.querySelector("#models tbody"), rows, 6, "no models");
}

function renderAlerts() {
  if (unchanged("alerts", state.alerts)) return;
  const box = document.getElementById("alerts");
  box.replaceChildren(...state.alerts.firing.map(a => el("div", { class: "alert " + a.severity, role: "alert", "data-rule": a.rule },
    el("strong", { text: a.severity + ": " + a.rule.replace("_", " ") }), " " + a.summary)));
  const log = document.getElementById("alert-log");
  log.replaceChildren(...(state.alerts.recent.length ? state.alerts.recent.map(a => el("li", { "data-rule": a.rule },
    new Date(a.at).toLocaleTimeString() + " " + a.state + " " + a.rule + ": " + a.summary)) : [el("li", { class: "muted", text: "no alerts yet" })]));
}

function render() {
  const c = state.counts;
  document.getElementById("counts").textContent = `${c.queued || 0} queued · ${c.running || 0} running · ${c.succeeded || 0} succeeded · ${c.failed || 0} failed`;
  const pause = document.getElementById("pause");
  pause.textContent = state.paused ? "Resume queue" : "Pause queue";
  pause.dataset.paused = String(state.paused);
  renderDevices();
  renderAlerts();
  renderQueue();
  renderRunning();
  renderFinished();
  renderModels();
}

// ---- the stream ---------------------------------------------------------------------------

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/v1/dashboard/stream");
  es.addEventListener("state", ev => {
    const s = JSON.parse(ev.data);
    for (const x of s.samples) {
      if (!samples.has(x.device)) samples.set(x.device, []);
      const l = samples.get(x.device);
      l.push({ t: x.t, bytes: x.bytes });
      if (l.length > MAX_SAMPLES) l.splice(0, l.length - MAX_SAMPLES);
    }
    markers.push(...s.markers);
    if (markers.length > 1000) markers.splice(0, markers.length - 1000);
    state = s;
    conn.textContent = "live";
    conn.className = "badge live";
    render();
  });
  es.onerror = () => {
    conn.textContent = "reconnecting";
    conn.className = "badge down";
    // a restarted server has forgotten the session: back to the sign-in form
    fetch("/v1/dashboard/state", { credentials: "same-origin" }).then(r => { if (r.status === 401) location.reload(); }, () => {});
    // a new stream sends the whole history again
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    samples.clear();
    markers.length = 0;
    drawn.clear();
  };
}

// ---- submit and watch ---------------------------------------------------------------------

function showError(e) {
  document.getElementById("submit-error").textContent = e.message || String(e);
}

function setupSubmit() {
  const form = document.getElementById("submit-form"), drop = document.getElementById("drop"), file = document.getElementById("file");
  const text = document.getElementById("drop-text");
  file.addEventListener("change", () => { text.textContent = file.files.length ? file.files[0].name : "Drop an image here, or choose one"; });
  for (const t of ["dragenter", "dragover"]) drop.addEventListener(t, e => { e.preventDefault(); drop.classList.add("over"); });
  for (const t of ["dragleave", "drop"]) drop.addEventListener(t, () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => {
    e.preventDefault();
    if (e.dataTransfer.files.length) { file.files = e.dataTransfer.files; file.dispatchEvent(new Event("change")); }
  });
  form.addEventListener("submit", async e => {
    e.preventDefault();
    showError("");
    if (!file.files.length) { showError("choose an image first"); return; }
    const priority = Number(document.getElementById("priority").value || 0);
    if (!Number.isInteger(priority)) { showError("the priority is a whole number"); return; }
    const body = new FormData();
    body.append("params", JSON.stringify({ task: "upscale", model: document.getElementById("model").value, priority,
                                          format: document.getElementById("format").value }));
    body.append("image", file.files[0]);
    try {
      const r = await fetch("/v1/jobs", { method: "POST", body, headers: HEADERS, credentials: "same-origin" });
      const j = await r.json();
      if (!r.ok) throw new Error(j.detail || r.statusText);
      watch(j, file.files[0]);
    } catch (err) {
      showError(err);
    }
  });
  const slider = document.getElementById("compare-slider");
  slider.addEventListener("input", () => { document.getElementById("before-clip").style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`; });
  document.getElementById("pause").addEventListener("click", e => {
    call("POST", e.target.dataset.paused === "true" ? "/v1/queue/resume" : "/v1/queue/pause").catch(showError);
  });
}

function watch(job, file) {
  if (watching) { watching.events.close(); URL.revokeObjectURL(watching.before); }
  const box = document.getElementById("watch");
  box.hidden = false;
  document.getElementById("compare").hidden = true;
  document.getElementById("watch-id").textContent = shortId(job.id);
  box.dataset.job = job.id;
  const st = document.getElementById("watch-state"), prog = document.getElementById("watch-progress"), note = document.getElementById("watch-note");
  const set = (s, text) => { st.textContent = s; st.className = "badge " + s; box.dataset.state = s; note.textContent = text || ""; };
  set(job.state, job.cached ? "answered from the result cache" : "predicted peak " + bytes(job.predicted_peak_bytes));
  const events = new EventSource("/v1/jobs/" + encodeURIComponent(job.id) + "/events");
  watching = { id: job.id, before: URL.createObjectURL(file), events, format: job.format };
  events.addEventListener("admitted", ev => { const d = JSON.parse(ev.data); set("running", "on " + d.device + ", reserved " + bytes(d.reserved_bytes)); });
  events.addEventListener("tile", ev => { const d = JSON.parse(ev.data); prog.max = d.total; prog.value = d.done; box.dataset.tiles = String(d.done); note.textContent = "tile " + d.done + " of " + d.total; });
  const end = (s, ev) => {
    events.close();
    const d = ev.data ? JSON.parse(ev.data) : {};
    set(s, d.error || "");
    if (s === "succeeded") showResult(job.id);
  };
  for (const s of ["succeeded", "failed", "cancelled"]) events.addEventListener(s, ev => end(s, ev));
  // a cached job, or one the server restarted under, ends in its stored state
  events.addEventListener("queued", ev => { const d = JSON.parse(ev.data); if (d.state && d.state !== "queued") end(d.state, { data: "{}" }); });
}

function showResult(id) {
  prog().value = prog().max;
  const url = "/v1/jobs/" + encodeURIComponent(id) + "/result";
  document.getElementById("after").src = url;
  document.getElementById("before").src = watching.before;
  document.getElementById("download").href = url;
  document.getElementById("download").setAttribute("download", shortId(id) + "-upscaled." + ext(watching.format));
  document.getElementById("compare").hidden = false;
  document.getElementById("compare-slider").dispatchEvent(new Event("input"));
}

function prog() { return document.getElementById("watch-progress"); }

setupSubmit();
connect();

// rtdecode monitor page: one websocket of JSON updates, canvas traces, no third-party code.
"use strict";

const WINDOW_S = 10;  // seconds of history drawn per topic
const FLAG_BITS = [["WARMUP", 1, "#fde68a"], ["DEGRADED", 2, "#fca5a5"], ["STALE", 4, "#d1d5db"],
  ["HOLD", 8, "#bfdbfe"], ["GAP", 16, "#fdba74"], ["BAD_INPUT", 32, "#d8b4fe"], ["CLAMPED", 64, "#f9a8d4"]];
const COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];

const state = { now: 0, topics: {}, truth: { t: [], y: [], names: [] }, status: null, updates: 0,
  outputs: {}, events: [] };

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v, digits) {
  return v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits);
}

// -- traces ------------------------------------------------------------------
function topicCard(name) {
  const card = el("section", { class: "card topic", "data-topic": name });
  card.append(el("h2", {}, name));
  const canvas = el("canvas", { width: 900, height: 220 });
  card.append(canvas);
  const meta = el("div", { class: "meta" });
  card.append(meta);
  document.getElementById("traces").append(card);
  return { t: [], y: [], flags: [], canvas, meta, info: {} };
}

function addTrace(name, tr) {
  const tp = state.topics[name] || (state.topics[name] = topicCard(name));
  for (let i = 0; i < tr.t.length; i++) { tp.t.push(tr.t[i]); tp.y.push(tr.y[i]); tp.flags.push(tr.flags[i]); }
  const cut = state.now - WINDOW_S;
  let k = 0;
  while (k < tp.t.length && tp.t[k] < cut) k++;
  if (k) { tp.t.splice(0, k); tp.y.splice(0, k); tp.flags.splice(0, k); }
  tp.info = tr;
}

function truthColumn(name) {
  const i = state.truth.names.indexOf(name);
  return i;
}

function drawTopic(name, tp) {
  const c = tp.canvas, g = c.getContext("2d");
  const W = c.width, H = c.height, L = 44, R = 8, T = 8, B = 18;
  g.clearRect(0, 0, W, H);
  const x = (t) => L + (W - L - R) * (1 - (state.now - t) / WINDOW_S);
  // flag shading: one band per flagged stretch, colored by its lowest set bit
  for (let i = 0; i < tp.t.length; i++) {
    const f = tp.flags[i];
    if (!f) continue;
    const bit = FLAG_BITS.find((b) => f & b[1]);
    g.fillStyle = bit ? bit[2] : "#e5e7eb";
    const x0 = x(tp.t[i]), x1 = i + 1 < tp.t.length ? x(tp.t[i + 1]) : x0 + 2;
    g.fillRect(x0, T, Math.max(1, x1 - x0), H - T - B);
  }
  const outs = state.outputs[name] || (tp.y.length ? tp.y[0].map((_, j) => "y" + j) : []);
  const tcols = outs.map(truthColumn);
  let lo = Infinity, hi = -Infinity;
  for (const row of tp.y) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  state.truth.t.forEach((t, i) => { if (t >= state.now - WINDOW_S) tcols.forEach((k) => { if (k >= 0) { lo = Math.min(lo, state.truth.y[i][k]); hi = Math.max(hi, state.truth.y[i][k]); } }); });
  if (!Number.isFinite(lo)) { lo = -1; hi = 1; }
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  const pad = 0.05 * (hi - lo); lo -= pad; hi += pad;
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  g.strokeStyle = "#d9dde5"; g.fillStyle = "#6b7280"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (const v of [lo + pad, (lo + hi) / 2, hi - pad]) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(W - R, y(v)); g.stroke();
    g.fillText(v.toPrecision(3), 2, y(v) + 4);
  }
  for (let s = 0; s <= WINDOW_S; s += 2) g.fillText(`-${s} s`, x(state.now - s) - 14, H - 4);
  outs.forEach((_, j) => {
    g.strokeStyle = COLORS[j % COLORS.length]; g.lineWidth = 1.6; g.setLineDash([]);
    g.beginPath();
    tp.t.forEach((t, i) => { const px = x(t), py = y(tp.y[i][j]); if (i) g.lineTo(px, py); else g.moveTo(px, py); });
    g.stroke();
    const k = tcols[j];
    if (k >= 0 && state.truth.t.length) {  // the ground truth of this output, dashed
      g.setLineDash([5, 4]); g.lineWidth = 1.2; g.beginPath();
      let first = true;
      state.truth.t.forEach((t, i) => { if (t < state.now - WINDOW_S) return; const px = x(t), py = y(state.truth.y[i][k]); if (first) { g.moveTo(px, py); first = false; } else g.lineTo(px, py); });
      g.stroke(); g.setLineDash([]);
    }
  });
}

function renderMeta(name, tp) {
  const info = tp.info, last = info.last || {};
  const outs = state.outputs[name] || (last.values || []).map((_, j) => "y" + j);
  tp.meta.replaceChildren();
  outs.forEach((o, j) => {
    const s = el("span", {}, "");
    s.append(el("span", { style: `color:${COLORS[j % COLORS.length]}` }, `${o} `));
    s.append(el("span", { class: "value", "data-topic": name, "data-output": o },
      last.values ? fmt(last.values[j], 3) : "–"));
    tp.meta.append(s);
  });
  const age = info.age_ms || {};
  tp.meta.append(el("span", {}, `age p50 ${fmt(age.p50, 2)} / p99 ${fmt(age.p99, 2)} ms`));
  tp.meta.append(el("span", {}, `msgs ${info.received || 0}, lost ${info.lost || 0}`));
  const flags = el("span", {}, "flags ");
  for (const f of last.flag_names || []) flags.append(el("span", { class: `flag ${f}` }, f), " ");
  tp.meta.append(flags);
}

// -- side panels ---------------------------------------------------------------
function rows(tbody, entries) {
  tbody.replaceChildren();
  for (const cells of entries) {
    const tr = el("tr");
    cells.forEach((c) => tr.append(el("td", {}, String(c))));
    tbody.append(tr);
  }
}

function renderStatus(st) {
  const s = document.getElementById("state");
  s.textContent = `daemon: ${st.state}`;
  s.className = `pill ${st.state}`;
  document.getElementById("reason").textContent = st.reason || "";
  for (const d of st.decoders || []) state.outputs[d.topic] = d.outputs;
  if (st.fusion && st.fusion.topic && st.fusion.outputs) state.outputs[st.fusion.topic] = st.fusion.outputs;
  const stages = Object.entries(st.stages_ms || {}).map(([k, v]) => [k, fmt(v.p50, 3), fmt(v.p99, 3), fmt(v.max, 3)]);
  rows(document.querySelector("#stages tbody"), stages);
  const inp = st.input || {}, lat = st.latency_ms || {};
  const entries = [["state", st.state], ["uptime", `${fmt(st.uptime_s, 1)} s`], ["samples in", inp.samples_in],
    ["gaps / missing", `${inp.gaps} / ${inp.missing_samples}`], ["index lost / dup", `${inp.index_lost} / ${inp.index_dup}`],
    ["bad input samples", st.bad_input_samples], ["messages out", st.messages_out], ["stale messages", st.stale_messages],
    ["stale episodes", st.stale_episodes], ["send dropped", st.send_dropped],
    ["daemon age p50 / p99", `${fmt(lat.p50, 3)} / ${fmt(lat.p99, 3)} ms`], ["rss", `${st.rss_mb} MB`]];
  if (st.record) {
    const r = st.record, d = r.dropped || {};
    entries.push(["recording", r.error ? `FAILED: ${r.error}` : (r.file || "–").split("/").pop()]);
    entries.push(["record queue / dropped", `${r.queued_items} / ${d.chunks || 0} chunks, ${d.frames || 0} frames`]);
  }
  for (const d of st.decoders || []) entries.push([`decoder ${d.name}`, `${d.provider}, ${fmt(d.rate_hz, 1)} Hz, fail ${d.failures}`]);
  rows(document.querySelector("#counters tbody"), entries);
}

function renderAges() {
  const entries = Object.entries(state.topics).map(([k, tp]) => {
    const a = tp.info.age_ms || {};
    return [k, `p50 ${fmt(a.p50, 2)}`, `p99 ${fmt(a.p99, 2)}`, `last ${fmt(a.last, 2)} ms`];
  });
  rows(document.querySelector("#age tbody"), entries);
}

function drawBars(canvas, values, color) {
  const g = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  g.clearRect(0, 0, W, H);
  const hi = Math.max(1e-9, ...values.map(Math.abs)), w = W / Math.max(1, values.length);
  g.fillStyle = color;
  values.forEach((v, i) => { const h = (H - 4) * Math.abs(v) / hi; g.fillRect(i * w + 1, H - h, w - 2, h); });
}

function renderEvents() {
  const box = document.getElementById("events");
  if (!state.events.length) return;
  box.replaceChildren();
  // newest first; an event with measures per channel (MEPs) gets a bar chart of its first measure
  for (const ev of state.events.slice(-6).reverse()) {
    const d = el("div", { class: "event", "data-topic": ev.topic });
    const pulse = ev.pulse_id !== undefined ? `pulse ${ev.pulse_id}` : `kind ${ev.kind}`;
    d.append(el("div", {}, `${ev.topic} · ${pulse} · seq ${ev.seq} · ${(ev.flag_names || []).join(" ")}`));
    if (Array.isArray(ev.values) && ev.values.length) {
      const c = el("canvas", { width: 320, height: 70 });
      d.append(c);
      drawBars(c, ev.values.map((row) => (Array.isArray(row) ? row[0] : row)), ev.prediction || /pred/i.test(ev.topic) ? "#7c3aed" : "#059669");
      d.append(el("div", { class: "muted" }, `${(ev.measures || ["value"])[0]} per channel` + (ev.window_ms ? `, window ${ev.window_ms[0]}–${ev.window_ms[1]} ms` : "")));
    } else {
      d.append(el("div", { class: "muted" }, `${ev.size} payload bytes`));
    }
    box.append(d);
  }
}

// -- updates -------------------------------------------------------------------
function onMessage(msg) {
  if (msg.type === "hello") {
    if (msg.info) document.getElementById("endpoint").textContent = `${msg.info.endpoint}` + (msg.info.truth ? ` · truth: ${msg.info.truth}` : "");
    if (msg.truth_names) state.truth.names = msg.truth_names;
    if (msg.status) renderStatus(msg.status);
    state.events = msg.events || [];
    renderEvents();
    return;
  }
  state.now = Math.max(state.now, msg.now);
  if (msg.status) { state.status = msg.status; renderStatus(msg.status); }
  for (const [name, tr] of Object.entries(msg.traces || {})) addTrace(name, tr);
  if (msg.truth) {
    state.truth.names = msg.truth.names;
    msg.truth.t.forEach((t, i) => { state.truth.t.push(t); state.truth.y.push(msg.truth.y[i]); });
    let k = 0;
    while (k < state.truth.t.length && state.truth.t[k] < state.now - WINDOW_S) k++;
    state.truth.t.splice(0, k); state.truth.y.splice(0, k);
  }
  if (msg.events && msg.events.length) { state.events.push(...msg.events); state.events = state.events.slice(-50); renderEvents(); }
  state.updates++;
  document.getElementById("updates").textContent = String(state.updates);
}

function frame() {
  for (const [name, tp] of Object.entries(state.topics)) { drawTopic(name, tp); renderMeta(name, tp); }
  renderAges();
  requestAnimationFrame(frame);
}

function connect() {
  const conn = document.getElementById("conn");
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => { conn.textContent = "live"; conn.className = "pill on"; };
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = () => { conn.textContent = "disconnected, retrying"; conn.className = "pill off"; setTimeout(connect, 1000); };
}

// for tests and the curious: what the page holds
window.rtdMonitor = {
  stats: () => ({ updates: state.updates, topics: Object.fromEntries(Object.entries(state.topics).map(([k, tp]) => [k, tp.t.length])),
    truth: state.truth.t.length, truthNames: state.truth.names, outputs: state.outputs, events: state.events.length }),
};

connect();
requestAnimationFrame(frame);

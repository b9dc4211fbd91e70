/* app.js - the sluice console: one page, hash routes, no framework.
 * Every value from the server goes into the page as text (textContent),
 * never as HTML.  The JSON API is described in docs/console.md; state-
 * changing requests carry the session's CSRF token in X-CSRF-Token.
 * Pages refresh by polling every poll_ms (from /api/me). */
"use strict";

const S = { me: null, timer: null, page: "fleet", status: null,
  queueNode: "", queueState: "", queueList: null, queueListAt: 0,
  traceId: "", logQuery: null, diffA: "", diffB: "" };

/* ---------------------------------------------------------- helpers */

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function table(id, head, rows) {
  return h("div", { class: "box" }, h("table", { id },
    h("thead", {}, h("tr", {}, head.map((c) =>
      h("th", { class: /^[#≥<]|\/min|age|size|msgs|deferred|held|conn|fail|delivered/i.test(c) ? "num" : "" }, c)))),
    h("tbody", {}, rows.length ? rows :
      h("tr", {}, h("td", { colspan: head.length, class: "muted" }, "none")))));
}

function td(v, cls) { return h("td", { class: cls }, v); }
function num(v) { return h("td", { class: "num" }, v === undefined ? "" : String(v)); }

function pill(text, kind) { return h("span", { class: "pill " + (kind || "") }, text); }

function ago(unixS) {
  if (!unixS) return "never";
  return dur(Date.now() / 1000 - unixS) + " ago";
}

function dur(s) {
  s = Math.max(0, Math.round(s));
  if (s < 120) return s + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

function when(unixS) {
  if (!unixS) return "";
  return new Date(unixS * 1000).toISOString().replace("T", " ").slice(0, 19);
}

function bytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

async function api(method, path, form) {
  const opt = { method, headers: {}, credentials: "same-origin" };
  if (method === "POST") {
    opt.headers["Content-Type"] = "application/x-www-form-urlencoded";
    opt.headers["X-Requested-With"] = "sluice-console";
    if (S.me) opt.headers["X-CSRF-Token"] = S.me.csrf;
    opt.body = new URLSearchParams(form || {}).toString();
  }
  const r = await fetch(path, opt);
  let body = {};
  try { body = await r.json(); } catch (e) { body = {}; }
  if (r.status === 401 && path !== "/api/login") { showLogin(); }
  if (!r.ok) {
    const err = new Error((body.error && body.error.message) || r.statusText);
    err.status = r.status;
    err.code = body.error && body.error.code;
    throw err;
  }
  return body;
}

function setStatus(text, isError) {
  const f = document.getElementById("status-line");
  f.textContent = text;
  f.className = isError ? "error" : "";
}

function confirmAction(text) {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"),
      { once: true });
    d.returnValue = "cancel";
    d.showModal();
  });
}

const isOperator = () => S.me && S.me.role === "operator";

/* ------------------------------------------------------------ login */

function showLogin() {
  S.me = null;
  clearInterval(S.timer);
  document.getElementById("top").hidden = true;
  document.getElementById("page").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-name").focus();
}

async function login(ev) {
  ev.preventDefault();
  const err = document.getElementById("login-error");
  err.textContent = "";
  try {
    S.me = await api("POST", "/api/login", {
      name: document.getElementById("login-name").value,
      password: document.getElementById("login-password").value });
    document.getElementById("login-password").value = "";
    start();
  } catch (e) {
    err.textContent = e.message;
  }
}

async function logout() {
  try { await api("POST", "/api/logout", {}); } catch (e) { /* gone */ }
  showLogin();
}

function start() {
  document.getElementById("login").hidden = true;
  document.getElementById("top").hidden = false;
  document.getElementById("page").hidden = false;
  document.getElementById("who").textContent = S.me.name + " (" + S.me.role + ")";
  document.body.dataset.role = S.me.role;
  clearInterval(S.timer);
  S.timer = setInterval(() => refresh(false), S.me.poll_ms || 5000);
  route();
}

/* ----------------------------------------------------------- routes */

const PAGES = { fleet: pageFleet, hops: pageHops, queues: pageQueues,
  trace: pageTrace, policy: pagePolicy, alerts: pageAlerts };

function route() {
  const name = (location.hash || "#fleet").slice(1).split("?")[0];
  S.page = PAGES[name] ? name : "fleet";
  for (const a of document.querySelectorAll("#nav a"))
    a.classList.toggle("active", a.getAttribute("href") === "#" + S.page);
  refresh(true);
}

let busy = false;
async function refresh(isNav) {
  if (!S.me || busy) return;
  busy = true;
  try {
    await PAGES[S.page](isNav);
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (e) {
    if (e.status !== 401) setStatus(e.message, true);
  } finally {
    busy = false;
  }
}

function render(...kids) {
  const p = document.getElementById("page");
  p.dataset.page = S.page;
  p.replaceChildren(...kids.flat());
}

async function loadStatus() {
  S.status = (await api("GET", "/api/status")).status;
  return S.status;
}

function nodesOf(st) { return (st.nodes && st.nodes.nodes) || []; }

/* The hops of every node: name -> [{node, hop metrics}]. */
function hopsOf(st) {
  const m = new Map();
  for (const n of nodesOf(st))
    for (const hp of (n.metrics && n.metrics.hops) || []) {
      if (!m.has(hp.name)) m.set(hp.name, []);
      m.get(hp.name).push({ node: n.name, h: hp });
    }
  return m;
}

function circuit(hp) {
  if (hp.circuit_open && hp.half_open) return pill("half-open", "warn");
  if (hp.circuit_open) return pill("open", "bad");
  if (hp.throttled) return pill("throttled " + dur(hp.throttled_for_s), "warn");
  return pill("closed", "ok");
}

function stateKind(s) {
  return s === "up" ? "ok" : s === "silent" ? "bad" : "warn";
}

/* ------------------------------------------------------------ fleet */

async function pageFleet() {
  const st = await loadStatus();
  const nodes = nodesOf(st);
  const latest = st.nodes ? st.nodes.latest_policy_version : 0;
  const sum = (f) => nodes.reduce((a, n) => a + (n.metrics ? f(n.metrics) : 0), 0);
  const inMin = nodes.reduce((a, n) => a + n.accepted_per_min, 0);
  const outMin = nodes.reduce((a, n) => a + n.delivered_per_min, 0);
  const up = nodes.filter((n) => n.state === "up").length;
  const drift = nodes.filter((n) => n.state !== "new" && n.policy_version !== latest).length;
  const card = (n, l, id) => h("div", { class: "card", id }, h("div", { class: "n" }, n), h("div", { class: "l" }, l));
  const hops = hopsOf(st);
  render(
    h("h1", {}, "Fleet"),
    h("div", { class: "cards" },
      card(up + " / " + nodes.length, "nodes up", "card-nodes"),
      card(sum((m) => m.messages), "messages queued", "card-queued"),
      card(sum((m) => m.deferred), "deferred", "card-deferred"),
      card(sum((m) => m.held), "held", "card-held"),
      card(inMin, "in / min", "card-in"),
      card(outMin, "out / min", "card-out"),
      card("v" + latest + (drift ? " (" + drift + " drift)" : ""), "policy", "card-policy"),
      card((st.alerts || []).length, "open alerts", "card-alerts")),
    h("h2", {}, "Nodes"),
    table("nodes", ["node", "state", "policy", "msgs", "deferred", "held",
      "oldest age", "in/min", "out/min", "heartbeat", "address", "version"],
    nodes.map((n) => {
      const m = n.metrics || {};
      const pv = n.policy_version === latest ? pill("v" + n.policy_version, "ok")
        : pill("v" + n.policy_version + " ≠ v" + latest, "warn");
      return h("tr", { "data-node": n.name },
        td(n.name), td(pill(n.state, stateKind(n.state))),
        h("td", {}, pv, n.policy_from_cache ? " cached" : ""),
        num(m.messages || 0), num(m.deferred || 0), num(m.held || 0),
        num(dur(m.oldest_age_s || 0)), num(n.accepted_per_min),
        num(n.delivered_per_min),
        td(n.heartbeat_age_ms < 0 ? "never" : dur(n.heartbeat_age_ms / 1000) + " ago"),
        td(n.address), td(n.software_version));
    })),
    h("h2", {}, "Hops"),
    table("fleet-hops", ["hop", "circuit", "nodes", "connections", "delivered", "failed"],
      [...hops.entries()].map(([name, list]) => {
        const open = list.filter((x) => x.h.circuit_open).length;
        const thr = list.filter((x) => x.h.throttled).length;
        return h("tr", {},
          h("td", {}, h("a", { href: "#hops?" + encodeURIComponent(name) }, name)),
          td(open ? pill(open + " open", "bad") : thr ? pill(thr + " throttled", "warn") : pill("closed", "ok")),
          num(list.length), num(list.reduce((a, x) => a + x.h.connections, 0)),
          num(list.reduce((a, x) => a + x.h.delivered, 0)),
          num(list.reduce((a, x) => a + x.h.failed, 0)));
      })),
    h("h2", {}, "Open alerts"),
    alertTable("fleet-alerts", st.alerts || []));
}

function alertTable(id, alerts) {
  return table(id, ["raised", "kind", "subject", "message", "cleared"],
    alerts.map((a) => h("tr", {},
      td(ago(a.raised_at)), td(pill(a.kind, a.cleared_at ? "" : "bad")),
      td(a.subject), td(a.message, "wrap"),
      td(a.cleared_at ? when(a.cleared_at) : "open"))));
}

/* ------------------------------------------------------------- hops */

async function pageHops() {
  const st = await loadStatus();
  const [pol, log] = await Promise.all([
    api("GET", "/api/policy"),
    api("GET", "/api/log?since=1h&limit=500")]);
  const policyHops = (pol.policy_get.policy.hops || []);
  const hops = hopsOf(st);
  for (const ph of policyHops) if (!hops.has(ph.name)) hops.set(ph.name, []);
  const want = decodeURIComponent((location.hash.split("?")[1] || ""));
  const events = (log.events.events || []).filter((r) => r.event.hop);
  const out = [h("h1", {}, "Hops")];
  for (const [name, list] of hops) {
    if (want && name !== want) continue;
    const cfg = policyHops.find((p) => p.name === name);
    out.push(h("h2", { id: "hop-" + name }, name,
      cfg ? h("span", { class: "muted" }, "  " + (cfg.host || "MX lookup") +
        (cfg.port ? ":" + cfg.port : "") + " · tls " + String(cfg.tls).replace("TLS_", "").toLowerCase() +
        " · max conn " + (cfg.max_conn || 10) + " · rate " +
        (cfg.rate_per_minute ? cfg.rate_per_minute + "/min" : "unlimited") +
        " · weight " + (cfg.weight || 1) + (cfg.preset ? " · preset " + cfg.preset : "") +
        (cfg.has_secret ? " · AUTH " + cfg.auth_user : "")) : ""));
    out.push(table("hop-nodes-" + name, ["node", "circuit", "connections",
      "recent failures", "delivered", "failed", "throttle window", "last config/account reply"],
    list.map((x) => h("tr", {}, td(x.node), td(circuit(x.h)), num(x.h.connections),
      num(x.h.recent_failures), num(x.h.delivered), num(x.h.failed),
      num(x.h.throttle_window_s ? x.h.throttle_window_s + "s" : ""),
      td(x.h.alert_reply ? x.h.alert_scope + ": " + x.h.alert_reply : "", "wrap")))));
    const recent = events.filter((r) => r.event.hop === name).slice(-15).reverse();
    out.push(h("h2", {}, "Recent replies from " + name));
    out.push(eventTable("hop-events-" + name, recent));
  }
  render(out);
}

/* ----------------------------------------------------------- queues */

const AGE_BUCKETS = ["<5m", "<10m", "<20m", "<40m", "<80m", "<160m", "≥160m"];

async function pageQueues(isNav) {
  const st = await loadStatus();
  const nodes = nodesOf(st);
  const shape = new Map();
  for (const n of nodes) {
    if (S.queueNode && n.name !== S.queueNode) continue;
    for (const q of (n.metrics && n.metrics.shape) || []) {
      const k = q.domain + "\u0000" + q.hop;
      const a = shape.get(k) || { domain: q.domain, hop: q.hop, messages: 0,
        deferred: 0, held: 0, ages: [0, 0, 0, 0, 0, 0, 0], nodes: new Set() };
      a.messages += q.messages; a.deferred += q.deferred; a.held += q.held;
      (q.age_buckets || []).forEach((v, i) => { a.ages[i] += v; });
      a.nodes.add(n.name);
      shape.set(k, a);
    }
  }
  if (isNav || S.queueList === null ||
      (!S.queueList.pending && Date.now() - S.queueListAt > Math.max(10000, 4 * S.me.poll_ms))) loadQueueList();
  const nodeSel = h("select", { id: "queue-node", onchange: (e) => { S.queueNode = e.target.value; S.queueList = null; refresh(false); } },
    h("option", { value: "" }, "all nodes"),
    nodes.map((n) => h("option", { value: n.name, selected: n.name === S.queueNode }, n.name)));
  const stateSel = h("select", { id: "queue-state", onchange: (e) => { S.queueState = e.target.value; S.queueList = null; refresh(false); } },
    ["deferred", "held", "active", ""].map((s) => h("option", { value: s, selected: s === S.queueState }, s || "any state")));
  render(
    h("h1", {}, "Queues"),
    h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); loadQueueList(); } },
      h("label", {}, "Node", nodeSel), h("label", {}, "State", stateSel),
      h("button", { type: "submit", id: "queue-refresh" }, "Refresh list")),
    h("h2", {}, "Queue shape by domain (qshape)"),
    table("qshape", ["domain", "first hop", "nodes", "msgs", "deferred", "held", ...AGE_BUCKETS],
      [...shape.values()].sort((a, b) => b.messages - a.messages).map((a) => h("tr", {},
        td(a.domain), td(a.hop || "?"), td([...a.nodes].join(", ")), num(a.messages),
        num(a.deferred), num(a.held), a.ages.map((v) => num(v || ""))))),
    h("h2", {}, "Messages"),
    queueListView());
}

async function loadQueueList() {
  const form = { state: S.queueState, node: S.queueNode, limit: "200" };
  S.queueListAt = Date.now();
  try {
    const r = await api("POST", "/api/queue/list", form);
    const ids = r.commands.commands.map((c) => c.id).join(",");
    S.queueList = { pending: true, ids };
    for (let i = 0; i < 100 && S.page === "queues"; i++) {
      const s = await api("GET", "/api/commands?ids=" + ids);
      const cmds = s.commands.commands || [];
      if (cmds.every((c) => c.done)) {
        S.queueList = { pending: false, cmds, replies: s.last_replies || {} };
        break;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  } catch (e) {
    S.queueList = { pending: false, error: e.message, cmds: [] };
  }
  if (S.page === "queues") {
    const box = document.getElementById("queue-list");
    if (box) box.replaceWith(queueListView());
  }
}

function queueListView() {
  const q = S.queueList;
  if (!q || q.pending) return h("div", { id: "queue-list", class: "muted" }, "asking the nodes…");
  if (q.error) return h("div", { id: "queue-list", class: "error" }, q.error);
  const rows = [];
  let total = 0;
  for (const c of q.cmds) {
    const res = c.result || {};
    total += res.total || 0;
    if (!res.ok && res.text) rows.push(h("tr", {}, td(c.node), h("td", { colspan: 9, class: "error" }, res.text)));
    for (const m of res.messages || []) {
      const last = q.replies[m.queue_id];
      rows.push(h("tr", { "data-qid": m.queue_id, "data-node": c.node },
        td(c.node), td(h("a", { href: "#trace", onclick: () => { S.traceId = m.queue_id; } }, m.queue_id)),
        td(pill(m.state, m.state === "held" ? "warn" : m.state === "deferred" ? "bad" : "")),
        td(m.sender || "<>"), td((m.recipients || []).join(", "), "wrap"), num(bytes(m.size)),
        num(ago(m.committed_at)), td(m.next_attempt_at ? when(m.next_attempt_at) : "now"),
        td(last ? last.reply : "", "wrap last-reply"),
        isOperator() ? h("td", { class: "actions" }, actionButtons(c.node, m)) : null));
    }
  }
  const head = ["node", "queue id", "state", "sender", "recipients", "size", "age", "next attempt", "last reply"];
  if (isOperator()) head.push("actions");
  return h("div", { id: "queue-list" }, h("p", { class: "muted" }, total + " matching"), table("messages", head, rows));
}

function actionButtons(node, m) {
  const b = (act, label, cls) => h("button", { type: "button", class: "small act-" + act + " " + (cls || ""),
    "data-qid": m.queue_id, onclick: () => queueAction(act, node, m.queue_id) }, label);
  return [m.state === "held" ? b("release", "Release") : b("hold", "Hold"),
    b("retry", "Retry"), b("delete", "Delete", "danger")];
}

async function queueAction(act, node, qid) {
  const ok = await confirmAction(act[0].toUpperCase() + act.slice(1) + " message " + qid + " on " + node + "?");
  if (!ok) return;
  try {
    const r = await api("POST", "/api/queue/action", { action: act, node, queue_id: qid });
    const ids = r.commands.commands.map((c) => c.id).join(",");
    for (let i = 0; i < 100; i++) {
      const s = await api("GET", "/api/commands?ids=" + ids);
      const cmds = s.commands.commands || [];
      if (cmds.every((c) => c.done)) {
        const res = cmds[0] && cmds[0].result;
        setStatus(act + " " + qid + ": " + (res ? res.text || (res.ok ? "done" : "failed") : "done"), res && !res.ok);
        break;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  } catch (e) {
    setStatus(act + " " + qid + ": " + e.message, true);
  }
  loadQueueList();
}

/* ------------------------------------------------------ trace & log */

function eventTable(id, recs) {
  return table(id, ["time", "node", "kind", "queue id", "from", "to", "hop", "host", "code", "reply", "delay"],
    recs.map((r) => {
      const e = r.event;
      return h("tr", { "data-kind": e.kind },
        td(new Date(e.at_ms).toISOString().replace("T", " ").slice(0, 23)), td(r.node),
        td(pill(e.kind, e.kind === "delivered" ? "ok" : e.kind === "deferred" || e.kind === "held" ? "warn" : e.kind === "bounced" || e.kind === "expired" ? "bad" : "")),
        td(e.queue_id), td(e.sender), td(e.recipient || (e.recipients || []).join(", "), "wrap"),
        td(e.hop), td(e.host), num(e.code || ""), td([e.enhanced, e.reply].filter(Boolean).join(" "), "wrap"),
        num(e.duration_ms ? e.duration_ms + " ms" : ""));
    }));
}

async function pageTrace(isNav) {
  let traced = null;
  let logged = null;
  if (S.traceId) traced = (await api("GET", "/api/trace?id=" + encodeURIComponent(S.traceId))).events.events || [];
  if (S.logQuery) logged = (await api("GET", "/api/log?" + new URLSearchParams(S.logQuery))).events.events || [];
  if (!isNav && document.activeElement && document.activeElement.closest && document.activeElement.closest("#page form")) return;
  const q = S.logQuery || {};
  const inp = (name, label, ph) => h("label", {}, label, h("input", { name, id: "log-" + name, value: q[name] || "", placeholder: ph || "" }));
  render(
    h("h1", {}, "Trace & log"),
    h("form", { class: "row", id: "trace-form", onsubmit: (e) => {
      e.preventDefault(); S.traceId = e.target.elements.id.value.trim(); document.activeElement.blur(); refresh(false); } },
    h("label", {}, "Queue id or Message-ID", h("input", { name: "id", id: "trace-id", value: S.traceId, size: 40 })),
    h("button", { type: "submit", class: "primary", id: "trace-submit" }, "Trace")),
    traced ? [h("h2", {}, "Trace of " + S.traceId), eventTable("trace", traced)] : null,
    h("h2", {}, "Log search"),
    h("form", { class: "row", id: "log-form", onsubmit: (e) => {
      e.preventDefault();
      const f = e.target.elements;
      S.logQuery = {};
      for (const k of ["sender", "recipient", "status", "node", "since", "limit"]) if (f[k].value) S.logQuery[k] = f[k].value;
      document.activeElement.blur();
      refresh(false);
    } },
    inp("sender", "Sender contains"), inp("recipient", "Recipient contains"),
    h("label", {}, "Status", h("select", { name: "status", id: "log-status" },
      ["", "received", "delivered", "deferred", "bounced", "expired", "held", "released", "deleted"].map((s) =>
        h("option", { value: s, selected: s === (q.status || "") }, s || "any")))),
    inp("node", "Node"), inp("since", "Since", "1h, 30m, 2d"), inp("limit", "Limit", "100"),
    h("button", { type: "submit", class: "primary", id: "log-submit" }, "Search")),
    logged ? eventTable("log", logged) : null);
}

/* ----------------------------------------------------------- policy */

/* A policy as "path = value" lines; list items keyed by their name. */
function flatten(p) {
  const out = new Map();
  const key = (o, i) => o && typeof o === "object" ? (o.name || o.pattern || o.cidr || o.key ||
    (o.domain ? o.domain + "/" + (o.selector || "") : i)) : i;
  const walk = (v, path) => {
    if (Array.isArray(v)) {
      if (v.every((x) => typeof x !== "object")) { out.set(path, JSON.stringify(v)); return; }
      v.forEach((x, i) => walk(x, path + "[" + key(x, i) + "]"));
    } else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) if (k !== "version" && k !== "content_hash") walk(x, path ? path + "." + k : k);
    } else out.set(path, JSON.stringify(v));
  };
  walk(p, "");
  return out;
}

async function pagePolicy(isNav) {
  if (!isNav && document.getElementById("policy-diff-a") === document.activeElement) return;
  const [hist, cur, audit] = await Promise.all([api("GET", "/api/history"), api("GET", "/api/policy"),
    api("GET", "/api/audit?limit=50")]);
  const versions = hist.policy_history.versions || [];
  const p = cur.policy_get.policy;
  if (!S.diffB && versions.length) S.diffB = String(versions[0].version);
  if (!S.diffA && versions.length > 1) S.diffA = String(versions[1].version);
  let diffRows = [];
  if (S.diffA && S.diffB) {
    const [a, b] = await Promise.all([api("GET", "/api/policy?version=" + S.diffA), api("GET", "/api/policy?version=" + S.diffB)]);
    const fa = flatten(a.policy_get.policy), fb = flatten(b.policy_get.policy);
    for (const k of new Set([...fa.keys(), ...fb.keys()])) {
      if (fa.get(k) === fb.get(k)) continue;
      if (fa.has(k)) diffRows.push(h("tr", { class: "diff-del" }, td("−"), td(k), td(fa.get(k), "wrap")));
      if (fb.has(k)) diffRows.push(h("tr", { class: "diff-add" }, td("+"), td(k), td(fb.get(k), "wrap")));
    }
  }
  const vsel = (id, val, set) => h("select", { id, onchange: (e) => { set(e.target.value); refresh(false); } },
    versions.map((v) => h("option", { value: v.version, selected: String(v.version) === val }, "v" + v.version)));
  const sections = ["networks", "users", "hops", "routes", "limits", "dkim"];
  render(
    h("h1", {}, "Policy v" + p.version),
    h("div", { class: "cards" }, sections.map((s) => h("div", { class: "card" },
      h("div", { class: "n" }, (p[s] || []).length), h("div", { class: "l" }, s)))),
    h("h2", {}, "Routes"),
    table("routes", ["pattern", "hop groups (failover order)"], (p.routes || []).map((r) => h("tr", {},
      td(r.pattern), td((r.groups || []).map((g) => (g.hops || []).join(" + ")).join("  →  "))))),
    h("h2", {}, "History"),
    table("history", ["version", "when", "who", "what"], versions.map((v) => h("tr", {},
      td("v" + v.version), td(when(v.created_at)), td(v.identity), td(v.summary, "wrap")))),
    h("h2", {}, "Diff"),
    h("form", { class: "row" }, h("label", {}, "From", vsel("policy-diff-a", S.diffA, (v) => { S.diffA = v; })),
      h("label", {}, "To", vsel("policy-diff-b", S.diffB, (v) => { S.diffB = v; }))),
    table("policy-diff", ["", "setting", "value"], diffRows),
    h("h2", {}, "Audit history"),
    table("audit", ["when", "who", "action", "detail"], (audit.console.audit || []).map((a) => h("tr", {},
      td(when(a.at)), td(a.identity), td(a.action), td(a.detail, "wrap")))));
}

/* ----------------------------------------------------------- alerts */

async function pageAlerts() {
  const r = await api("GET", "/api/alerts?limit=100");
  const all = r.alerts.alerts || [];
  render(h("h1", {}, "Alerts"),
    h("h2", {}, "Open"), alertTable("alerts-open", all.filter((a) => !a.cleared_at)),
    h("h2", {}, "Recently cleared"), alertTable("alerts-cleared", all.filter((a) => a.cleared_at)));
}

/* ------------------------------------------------------------- boot */

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  try {
    S.me = await api("GET", "/api/me");
    start();
  } catch (e) {
    showLogin();
  }
});

"use strict";
// History and search: alarms, signals, the audit trail and the shift report, over the same REST
// routes scripts use (GET /api/alarms|signals|audit with filters, format=csv; /api/shifts/report).
// Times are entered and shown in the post's time zone. Server text goes in as textContent only.
(() => {
  const I18N = window.KUZET_I18N || {};
  const LANGS = window.KUZET_LANGS || ["kk", "ru", "en"];
  const LOCALES = { kk: "kk-KZ", ru: "ru-RU", en: "en-GB" };
  const PAGE = 100;
  const CSV_ROWS = 100000;
  const CLASSES = ["alarm", "panic", "fire", "trouble", "tamper", "supervisory", "other"];
  const OUTCOMES = ["real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other"];

  const S = { me: null, lang: "kk", tz: "Asia/Almaty", tab: "alarms", objects: [], operators: [], shifts: [],
              next: null, rows: [], query: null };
  const $ = (id) => document.getElementById(id);

  function T(key, vars) {
    let s = (I18N[S.lang] || {})[key] ?? (I18N.kk || {})[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace("{" + k + "}", String(v));
    return s;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function api(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    if (r.status === 401) { location.replace("/login?next=/history"); throw new Error("not logged in"); }
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new Error((body && body.detail) || r.statusText);
    return { body, next: r.headers.get("x-next-before") };
  }

  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    setTimeout(() => { t.hidden = true; }, 6000);
  }

  // ---------- time in the post's zone ----------

  let fmtCache = {};
  function fmt(iso) {
    if (!iso) return "";
    const key = S.lang;
    if (!fmtCache[key]) {
      fmtCache[key] = new Intl.DateTimeFormat(LOCALES[S.lang] || "en-GB", { timeZone: S.tz, year: "numeric", month: "2-digit",
        day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    }
    return fmtCache[key].format(new Date(iso));
  }

  // the zone's offset (ms) at an instant, from Intl (no library)
  function offsetAt(ms) {
    const parts = new Intl.DateTimeFormat("en-GB", { timeZone: S.tz, hourCycle: "h23", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(new Date(ms));
    const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
  }

  // "2026-01-31T08:00" typed in the post's zone -> an ISO instant
  function toIso(local) {
    if (!local) return "";
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
    if (!m) return "";
    const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    const first = guess - offsetAt(guess);
    return new Date(guess - offsetAt(first)).toISOString();
  }

  function toLocalInput(ms) {
    const d = new Date(ms + offsetAt(ms));
    return d.toISOString().slice(0, 16);
  }

  function secs(v) {
    if (v === null || v === undefined || v === "") return "—";
    const n = Math.round(Number(v));
    if (n < 120) return `${n} ${T("shift.s")}`;
    return `${Math.floor(n / 60)}:${String(n % 60).padStart(2, "0")}`;
  }

  // ---------- filters per tab ----------

  function field(name, labelKey, input) {
    input.name = name;
    input.dataset.testid = "filter-" + name;
    input.setAttribute("data-testid", "filter-" + name);
    return el("label", {}, el("span", {}, T(labelKey)), input);
  }
  const text = (attrs) => el("input", { type: "text", ...(attrs || {}) });
  function select(options, anyLabel) {
    return el("select", {}, el("option", { value: "" }, anyLabel || T("history.any")),
      ...options.map(([v, label]) => el("option", { value: v }, label)));
  }

  function buildFilters() {
    const f = $("filters");
    const now = Date.now();
    const from = el("input", { type: "datetime-local", value: toLocalInput(now - 24 * 3600 * 1000) });
    const to = el("input", { type: "datetime-local" });
    const objects = select(S.objects.map((o) => [o.id, o.name]));
    const parts = [];
    if (S.tab === "alarms") {
      parts.push(field("from", "history.from", from), field("to", "history.to", to), field("object_id", "history.object", objects),
        field("account", "history.account", text({ maxlength: 16, pattern: "[0-9A-Za-z]*" })),
        field("klass", "history.klass", select(CLASSES.map((c) => [c, T("klass." + c)]))),
        field("outcome", "history.outcome", select(OUTCOMES.map((o) => [o, T("outcome." + o)]))),
        field("operator", "history.operator", select(S.operators.map((o) => [o.username, o.full_name || o.username]))));
    } else if (S.tab === "signals") {
      parts.push(field("from", "history.from", from), field("to", "history.to", to), field("object_id", "history.object", objects),
        field("account", "history.account", text({ maxlength: 16 })), field("code", "history.code", text({ maxlength: 8 })));
    } else if (S.tab === "audit") {
      parts.push(field("from", "history.from", from), field("to", "history.to", to),
        field("actor", "history.actor", text({ maxlength: 150 })), field("action", "history.action", text({ maxlength: 80, placeholder: "alarm." })),
        field("entity", "history.entity", text({ maxlength: 80 })), field("entity_id", "history.entity", text({ maxlength: 80, placeholder: "id" })));
    } else {
      const today = toLocalInput(now).slice(0, 10);
      parts.push(field("day", "shift.day", el("input", { type: "date", value: today })),
        field("shift", "shift.which", select(S.shifts.map((s, i) => [i, s]), "—")));
    }
    parts.push(el("button", { type: "submit", class: "primary", "data-testid": "search-button" }, T("history.search")));
    f.replaceChildren(...parts);
    if (S.tab === "shift") {
      const sel = f.elements.namedItem("shift");
      sel.value = String(S.currentShiftIndex || 0);
      const cur = S.currentShift;
      if (cur) f.elements.namedItem("day").value = toLocalInput(Date.parse(cur.from)).slice(0, 10);
    }
  }

  function query() {
    const f = $("filters");
    const q = new URLSearchParams();
    for (const e of f.elements) {
      if (!e.name || !e.value) continue;
      if (e.type === "datetime-local") { const iso = toIso(e.value); if (iso) q.set(e.name, iso); }
      else q.set(e.name, e.value.trim());
    }
    return q;
  }

  const PATHS = { alarms: "/api/alarms", signals: "/api/signals", audit: "/api/audit", shift: "/api/shifts/report" };

  // ---------- searching ----------

  async function search(ev) {
    if (ev) ev.preventDefault();
    $("error").hidden = true;
    const q = query();
    if (S.tab === "alarms" && ![...q.keys()].length) q.set("closed", "1"); // all alarms, newest first
    S.query = q;
    S.rows = [];
    S.loads = (S.loads || 0) + 1; // a page still loading for the previous search is dropped
    S.next = null;
    const csv = new URLSearchParams(q);
    csv.set("format", "csv");
    if (S.tab !== "shift") csv.set("limit", String(CSV_ROWS));
    $("export").href = PATHS[S.tab] + "?" + csv.toString();
    await load();
  }

  async function load() {
    const gen = S.loads;
    const q = new URLSearchParams(S.query);
    if (S.tab !== "shift") {
      q.set("limit", String(PAGE));
      if (S.next) q.set("before", S.next);
    }
    try {
      const r = await api(PATHS[S.tab] + "?" + q.toString());
      if (gen !== S.loads) return; // answers an older search: its rows would be appended twice
      if (S.tab === "shift") { renderShift(r.body); return; }
      S.rows.push(...r.body);
      S.next = r.next;
      render();
    } catch (e) {
      if (e.message === "not logged in") return;
      $("error").textContent = e.message;
      $("error").hidden = false;
    }
  }

  function title(a) {
    const t = a.title || {};
    return t[S.lang] || t.ru || t.en || a.klass;
  }

  const COLUMNS = {
    alarms: [["history.opened_at", (a) => fmt(a.opened_at)], ["col.priority", (a) => "P" + a.priority],
      ["col.object", (a) => a.object_name || T("unknown_object")], ["col.account", (a) => "#" + a.account],
      ["col.event", title], ["col.state", (a) => T("state." + a.state)], ["history.outcome", (a) => (a.outcome ? T("outcome." + a.outcome) : "")],
      ["col.signals", (a) => a.signal_count], ["shift.col.ack_time", (a) => secs(a.seconds_to_ack)],
      ["shift.col.close_time", (a) => secs(a.seconds_to_close)], ["history.operator", (a) => a.closed_by || a.acknowledged_by || ""]],
    signals: [["history.time", (s) => fmt(s.received_at)], ["col.account", (s) => "#" + s.account],
      ["col.object", (s) => s.object_name || T("unknown_object")], ["col.code", (s) => s.code + (s.qualifier ? "/" + s.qualifier : "")],
      ["col.event", (s) => (s.description && (s.description[S.lang] || s.description.en)) || ""],
      ["col.zone", (s) => (s.zone_name ? `${s.zone} · ${s.zone_name}` : s.zone)], ["col.receiver", (s) => `${s.receiver} · ${s.protocol}`]],
    audit: [["history.time", (e) => fmt(e.at)], ["history.actor", (e) => e.actor], ["history.action", (e) => e.action],
      ["history.entity", (e) => `${e.entity} ${e.entity_id}`], ["history.detail", (e) => JSON.stringify(e.detail)]],
  };

  function render() {
    const cols = COLUMNS[S.tab];
    $("result-head").replaceChildren(el("tr", {}, cols.map(([k]) => el("th", {}, T(k)))));
    $("result-rows").replaceChildren(...S.rows.map((r) => el("tr", {
      "data-testid": "history-row", "data-id": r.id, class: S.tab === "alarms" ? `clickable p${r.priority}` : "",
      tabindex: S.tab === "alarms" ? 0 : null,
      onclick: S.tab === "alarms" ? () => openTimeline(r.id) : null,
      onkeydown: S.tab === "alarms" ? (ev) => { if (ev.key === "Enter") openTimeline(r.id); } : null,
    }, cols.map(([, f]) => el("td", {}, f(r))))));
    $("no-results").hidden = S.rows.length > 0;
    $("more").hidden = !S.next;
    $("result-count").textContent = T("history.rows", { n: S.rows.length }) + (S.next ? " +" : "");
  }

  function renderShift(rep) {
    const head = el("tr", {}, ["shift.col.operator", "shift.col.login", "shift.col.logout", "shift.acked", "p50", "p90", "max",
      "shift.closed", "p50", "p90", "max"].map((k) => el("th", {}, k.includes(".") ? T(k) : k)));
    const line = (name, o, extra) => el("tr", { "data-testid": "shift-row", class: extra || "" },
      el("td", {}, name), el("td", {}, fmt(o.first_login)), el("td", {}, fmt(o.last_logout)),
      el("td", { class: "num" }, o.acknowledged.count), el("td", { class: "num" }, secs(o.acknowledged.p50)),
      el("td", { class: "num" }, secs(o.acknowledged.p90)), el("td", { class: "num" }, secs(o.acknowledged.max)),
      el("td", { class: "num" }, o.closed.count), el("td", { class: "num" }, secs(o.closed.p50)),
      el("td", { class: "num" }, secs(o.closed.p90)), el("td", { class: "num" }, secs(o.closed.max)));
    $("result-head").replaceChildren(head);
    $("result-rows").replaceChildren(
      ...rep.operators.map((o) => line(`${o.full_name || o.username} (${o.username})`, o)),
      line(T("shift.all"), { ...rep.totals, first_login: null, last_logout: null }, "total"));
    $("no-results").hidden = true;
    $("more").hidden = true;
    $("result-count").textContent = `${T("shift.report")} ${rep.shift || ""} · ${fmt(rep.from)} — ${fmt(rep.to)} · ` +
      `${T("shift.opened")}: ${rep.opened} · ${T("shift.still_open")}: ${rep.still_open}`;
  }

  // ---------- an old alarm's whole timeline ----------

  function eventText(h) {
    const d = h.detail || {};
    const bits = [];
    if (h.code) bits.push(`${h.code}${h.zone ? " / " + h.zone : ""}`);
    if (d.outcome) bits.push(T("outcome." + d.outcome));
    if (h.kind === "call") bits.push(`${d.called} ${d.phone || ""} — ${T("call.answer." + d.answer)}` +
      (d.password_ok === true ? " · " + T("call.password_ok") : d.password_ok === false ? " · " + T("call.password_bad") : ""));
    if (h.kind === "hold") bits.push(`${d.reason} (${T("shift.until")} ${fmt(d.until)})`);
    if (h.kind === "check") bits.push((d.done ? "✓ " : "✗ ") + d.item);
    if (h.kind === "handed-over") bits.push(d.to ? "→ " + d.to : T("shift.pool"));
    if (h.kind === "taken-over" && d.from) bits.push("← " + d.from);
    if (d.reason && h.kind !== "hold") bits.push(d.reason);
    if (d.note) bits.push(d.note);
    return bits.join(" · ");
  }

  async function openTimeline(id) {
    try {
      const { body: a } = await api(`/api/alarms/${id}`);
      const items = a.timeline || a.history || [];
      $("timeline-body").replaceChildren(
        el("h3", { "data-testid": "timeline-title" }, `${T("card.alarm", { id: a.id })} · ${a.object_name || T("unknown_object")}`),
        el("p", {}, title(a), " · ", T("state." + a.state), a.outcome ? " · " + T("outcome." + a.outcome) : ""),
        el("ol", { class: "timeline-list", "data-testid": "timeline" }, items.map((h) => el("li", { "data-kind": h.kind },
          el("time", {}, fmt(h.at)),
          el("b", {}, T("event." + h.kind) !== "event." + h.kind ? T("event." + h.kind) : h.kind),
          h.username ? el("span", { class: "muted" }, " · " + h.username) : null,
          el("div", {}, eventText(h))))));
      $("timeline").hidden = false;
    } catch (e) { toast(e.message); }
  }

  // ---------- page ----------

  function applyStaticText() {
    document.documentElement.lang = S.lang;
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = T(e.dataset.i18n);
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === S.lang));
    for (const b of document.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === S.tab));
    if (S.me) {
      $("user-name").textContent = S.me.full_name || S.me.username;
      $("user-role").textContent = T("role." + S.me.role) + " · " + S.me.username;
    }
  }

  function setTab(tab) {
    S.tab = tab;
    $("print").hidden = tab !== "shift";
    $("timeline").hidden = true;
    applyStaticText();
    buildFilters();
    search();
  }

  async function init() {
    try { S.me = (await api("/api/me")).body; } catch (_e) { return; }
    S.tz = S.me.timezone || "Asia/Almaty";
    const saved = localStorage.getItem("kuzet.lang." + S.me.username);
    S.lang = LANGS.includes(saved) ? saved : (LANGS.includes(S.me.lang) ? S.me.lang : "kk");
    const [objects, operators, shifts] = await Promise.all([
      api("/api/objects").then((r) => r.body).catch(() => []),
      api("/api/operators").then((r) => r.body).catch(() => []),
      api("/api/shifts/current").then((r) => r.body).catch(() => null),
    ]);
    S.objects = objects;
    S.operators = operators;
    if (shifts) {
      S.shifts = shifts.shifts;
      S.currentShift = shifts.current;
      S.currentShiftIndex = Math.max(0, shifts.shifts.indexOf(shifts.current.name));
    }
    $("tab-audit").hidden = !(S.me.role === "admin" || S.me.role === "auditor");
    for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => setTab(b.dataset.tab));
    for (const b of document.querySelectorAll("[data-lang]")) b.addEventListener("click", () => {
      S.lang = b.dataset.lang;
      fmtCache = {};
      localStorage.setItem("kuzet.lang." + S.me.username, S.lang);
      applyStaticText();
      buildFilters();
      if (S.tab !== "shift") render(); else search();
    });
    $("filters").addEventListener("submit", search);
    $("more").addEventListener("click", load);
    $("print").addEventListener("click", () => window.print());
    $("timeline-close").addEventListener("click", () => { $("timeline").hidden = true; });
    const params = new URLSearchParams(location.search);
    setTab(["alarms", "signals", "audit", "shift"].includes(params.get("tab")) ? params.get("tab") : "alarms");
    if (params.get("alarm")) openTimeline(Number(params.get("alarm")));
  }

  init();
})();

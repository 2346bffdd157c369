"use strict";
// The crews' phone view. Plain JS, no build step. Assignments arrive on /ws/crew (only this crew's
// group's); steps go to POST /api/assignments/{id}/status, positions to POST /api/crew/position.
// A step pressed while the connection is down waits in localStorage and is sent once when the phone
// is back (same request id on every retry; the server treats a repeat of a step already made as done).
// Everything from the server is put in the page as text (textContent), never as HTML.
(() => {
  const I18N = window.KUZET_I18N || {};
  const LANGS = window.KUZET_LANGS || ["kk", "ru", "en"];
  const LOCALES = { kk: "kk-KZ", ru: "ru-RU", en: "en-GB" };
  const STEPS = ["new", "accepted", "en-route", "on-site", "finished"]; // "new": dispatched, not yet accepted
  const ENDED = new Set(["finished", "recalled", "cancelled"]);
  const NEXT = { new: "accepted", accepted: "en-route", "en-route": "on-site", "on-site": "finished" };
  const COLUMN = { new: "dispatched_at", accepted: "accepted_at", "en-route": "en_route_at", "on-site": "on_site_at", finished: "finished_at" };
  const SILENCE_LIMIT = 60000; // nothing from the server (not even a ping) this long: reconnect
  const GPS_EVERY = 15000; // send the position at least this often while it changes...
  const GPS_METRES = 50; // ...or at once when the phone has moved this far (but not more than every 3 s)
  const GPS_MIN_GAP = 3000;
  const RING_EVERY = 6000; // a new assignment rings again until it is accepted...
  const RING_FOR = 180000; // ...for at most this long

  const S = {
    me: null,
    lang: "kk",
    tz: "Asia/Almaty",
    mapUrl: "",
    group: null,
    assignments: new Map(), // id -> assignment as the server last said
    seen: new Set(), // assignment ids already rung for
    ringing: new Map(), // id -> time it started ringing
    queue: [], // steps waiting to be sent (mirrored in localStorage)
    flushing: false,
    ws: null,
    attempts: 0,
    retryAt: 0,
    lastMessage: 0,
    connState: "connecting",
    audio: null,
    finishing: new Set(), // assignment ids whose finish form is open
    drafts: new Map(), // id -> {outcome, report} typed into the finish form
    errors: new Map(), // id -> {field, text} shown next to a field of the finish form
    geo: { watch: null, state: "off", fix: null, sent: null, sentAt: 0, failed: false },
  };

  const $ = (id) => document.getElementById(id);
  const queueKey = () => "kuzet.crew.queue." + (S.me ? S.me.username : "");

  // ---------- text ----------

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
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  let formats = {};
  function fmt(kind) {
    if (!formats[kind]) {
      const opts = {
        time: { hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
        full: { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" },
      }[kind];
      try {
        formats[kind] = new Intl.DateTimeFormat(LOCALES[S.lang] || "en-GB", { timeZone: S.tz, ...opts });
      } catch (_e) {
        formats[kind] = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Almaty", ...opts });
      }
    }
    return formats[kind];
  }
  function timeNode(iso) {
    if (!iso) return el("span", { class: "muted" }, "—");
    const d = new Date(iso);
    return el("time", { datetime: iso, title: fmt("full").format(d) }, fmt("time").format(d));
  }

  function applyStaticText() {
    document.documentElement.lang = S.lang;
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = T(e.dataset.i18n);
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === S.lang));
    document.title = "Kuzet · " + T("crew.title");
  }

  function setLang(lang) {
    if (!LANGS.includes(lang)) return;
    S.lang = lang;
    formats = {};
    if (S.me) localStorage.setItem("kuzet.lang." + S.me.username, lang);
    localStorage.setItem("kuzet.lang", lang);
    applyStaticText();
    render();
  }

  let toastTimer = null;
  function toast(text) {
    const t = $("crew-toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
  }

  // ---------- API ----------

  class HttpError extends Error {
    constructor(status, detail, body) { super(detail); this.status = status; this.body = body; }
  }

  async function api(path, options) {
    const r = await fetch(path, { credentials: "same-origin", ...(options || {}) });
    if (r.status === 401) {
      location.replace("/login?next=/crew");
      throw new HttpError(401, "not logged in", null);
    }
    let body = null;
    try { body = await r.json(); } catch (_e) { body = null; }
    if (!r.ok) {
      const detail = body && body.detail ? body.detail : r.statusText;
      throw new HttpError(r.status, typeof detail === "string" ? detail : JSON.stringify(detail), body);
    }
    return body;
  }

  const post = (path, body) => api(path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}),
  });

  // ---------- assignments as the server sends them ----------

  const stepAt = (a, step) => a[COLUMN[step]] || null;

  const rank = (status) => STEPS.indexOf(status);

  // The status the crew sees: the server's, or further along when a step is waiting to be sent.
  function shownStatus(a) {
    let status = a.status;
    for (const q of S.queue) {
      if (q.assignment_id === a.id && rank(q.status) > rank(status)) status = q.status;
    }
    return status;
  }

  function applyAssignment(a, live) {
    if (!a || a.id === undefined) return;
    const before = S.assignments.get(a.id);
    if (before && before.updated_at && a.updated_at && Date.parse(a.updated_at) < Date.parse(before.updated_at)) return;
    // a step's answer is the bare assignment; the socket's copy also has the object card: keep both
    a = before ? { ...before, ...a } : a;
    S.assignments.set(a.id, a);
    // steps the server already has are no longer waiting
    const kept = S.queue.filter((q) => !(q.assignment_id === a.id && (rank(a.status) >= rank(q.status) || ENDED.has(a.status))));
    if (kept.length !== S.queue.length) saveQueue(kept);
    if (a.status === "new" && !S.seen.has(a.id)) {
      if (live) ring(a.id);
      S.seen.add(a.id);
    }
    if (a.status !== "new") S.ringing.delete(a.id);
    if (before && !ENDED.has(before.status) && a.status === "recalled") {
      showNotice(T("crew.recalled", { object: objectOf(a).name || "" }) + (a.recall_reason ? " — " + a.recall_reason : ""));
    }
    if (ENDED.has(a.status)) { S.finishing.delete(a.id); S.drafts.delete(a.id); }
  }

  function objectOf(a) {
    const o = a.object || {};
    return {
      name: o.name || a.object_name || "",
      address: o.address || a.address || "",
      lat: o.lat ?? o.latitude ?? a.lat ?? null,
      lon: o.lon ?? o.longitude ?? a.lon ?? null,
      instructions: o.instructions || a.object_instructions || "",
      zones: o.zones || a.zones || [],
      contacts: o.contacts || o.keyholders || a.contacts || a.keyholders || [],
    };
  }

  function alarmOf(a) {
    const al = a.alarm || {};
    const title = al.title || a.alarm_title || null;
    return {
      id: al.id ?? a.alarm_id,
      title: title && typeof title === "object" ? (title[S.lang] || title.ru || title.en || "") : (title || al.kind || ""),
      zone: al.zone || al.last_zone || "",
      priority: al.priority ?? a.priority ?? null,
    };
  }

  // the operators' notes on the alarm: what they want the crew to know
  const notesOf = (a) => (a.notes || []).filter((n) => n && n.note);

  // ---------- the queue of steps waiting to be sent ----------

  function loadQueue() {
    try {
      const q = JSON.parse(localStorage.getItem(queueKey()) || "[]");
      S.queue = Array.isArray(q) ? q.filter((x) => x && x.assignment_id && x.status && x.request_id) : [];
    } catch (_e) { S.queue = []; }
  }

  function saveQueue(q) {
    S.queue = q;
    localStorage.setItem(queueKey(), JSON.stringify(q));
  }

  function requestId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b); // works on plain http too, unlike crypto.randomUUID
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function step(a, status, extra) {
    if (S.queue.some((q) => q.assignment_id === a.id && q.status === status)) return; // pressed twice
    const entry = { assignment_id: a.id, status, request_id: requestId(), queued_at: new Date().toISOString(), ...(extra || {}) };
    saveQueue([...S.queue, entry]);
    if (status === "finished") S.finishing.delete(a.id);
    render();
    flush();
  }

  // Sends the waiting steps in order, one at a time. A network failure keeps the step (it goes
  // again, with the same request id, on the next chance); an answer from the server settles it.
  async function flush() {
    if (S.flushing) return;
    S.flushing = true;
    try {
      while (S.queue.length) {
        const q = S.queue[0];
        const body = { status: q.status, request_id: q.request_id };
        if (q.status === "finished") { body.outcome = q.outcome; body.report = q.report || ""; }
        let settled = true;
        try {
          const a = await post(`/api/assignments/${q.assignment_id}/status`, body);
          drop(q);
          applyAssignment(a, false);
        } catch (e) {
          if (!(e instanceof HttpError) || e.status >= 500 || e.status === 429) {
            settled = false; // no answer: keep it for later
          } else if (e.status === 422 && q.status === "finished") {
            drop(q);
            S.finishing.add(q.assignment_id);
            S.drafts.set(q.assignment_id, { outcome: q.outcome, report: q.report });
            S.errors.set(q.assignment_id, fieldError(e));
          } else {
            drop(q);
            if (e.status !== 401) toast(T("crew.step.refused", { step: T("crew.status." + q.status) }) + ": " + e.message);
            refresh(q.assignment_id);
          }
        }
        render();
        if (!settled) break;
      }
    } finally {
      S.flushing = false;
    }
  }

  function drop(q) { saveQueue(S.queue.filter((x) => x.request_id !== q.request_id)); }

  function fieldError(e) {
    const errs = (e.body && e.body.errors) || [];
    const first = errs[0];
    const loc = first ? first.loc.filter((p) => p !== "body").join(".") : "";
    return { field: loc === "report" ? "report" : "outcome", text: first ? first.msg : e.message };
  }

  async function refresh(id) {
    try { applyAssignment(await api(`/api/assignments/${id}`), false); render(); } catch (_e) { /* the snapshot will tell */ }
  }

  // ---------- sound and vibration ----------

  function ensureAudio() {
    try {
      S.audio = S.audio || new AudioContext();
      if (S.audio.state === "suspended") S.audio.resume();
    } catch (_e) { S.audio = null; }
    renderSoundBanner();
  }

  function beep() {
    if (!S.audio || S.audio.state !== "running") return false;
    for (let i = 0; i < 3; i++) {
      const o = S.audio.createOscillator();
      const g = S.audio.createGain();
      o.frequency.value = i === 1 ? 1320 : 988;
      g.gain.value = 0.2;
      o.connect(g).connect(S.audio.destination);
      const t0 = S.audio.currentTime + i * 0.25;
      o.start(t0);
      o.stop(t0 + 0.18);
    }
    return true;
  }

  function ring(id) {
    S.ringing.set(id, Date.now());
    alertOnce();
  }

  function alertOnce() {
    beep();
    try { if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]); } catch (_e) { /* not allowed */ }
  }

  function renderSoundBanner() {
    $("crew-sound").hidden = !!(S.audio && S.audio.state === "running") || typeof AudioContext === "undefined";
  }

  function showNotice(text) {
    const n = $("crew-notice");
    n.replaceChildren(el("span", {}, text), el("button", { type: "button", "data-testid": "crew-notice-ok", onclick: () => { n.hidden = true; } }, "OK"));
    n.hidden = false;
    alertOnce();
  }

  // ---------- rendering ----------

  function render() {
    renderHeader();
    renderPending();
    const active = [...S.assignments.values()].filter((a) => !ENDED.has(a.status) || S.queue.some((q) => q.assignment_id === a.id));
    active.sort((x, y) => x.id - y.id);
    $("crew-idle").hidden = active.length > 0;
    const box = $("crew-assignments");
    // keep what is being typed in an open finish form across re-renders
    for (const f of box.querySelectorAll("form.finish")) {
      const id = Number(f.dataset.assignmentId);
      S.drafts.set(id, { outcome: f.querySelector("select").value, report: f.querySelector("textarea").value });
    }
    const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    box.replaceChildren(...active.map(card));
    if (focused) { const f = box.querySelector(`[data-testid="${focused}"]`); if (f) f.focus(); }
  }

  function renderHeader() {
    const g = S.group;
    $("crew-group").textContent = g ? (g.call_sign ? `${g.call_sign} · ${g.name}` : g.name) : "KUZET";
    const vehicles = g && g.vehicles ? g.vehicles.map((v) => v.plate).join(", ") : "";
    $("crew-user").textContent = [S.me ? (S.me.full_name || S.me.username) : "", vehicles].filter(Boolean).join(" · ");
    $("crew-duty").textContent = !g ? T("crew.no_group") : (g.on_duty === false ? T("crew.off_duty") : T("crew.on_duty"));
    renderConn();
    renderGps();
  }

  function renderPending() {
    const n = S.queue.length;
    const b = $("crew-pending");
    b.hidden = n === 0;
    b.textContent = n ? T("crew.pending", { n }) : "";
  }

  function renderConn() {
    const c = $("crew-conn");
    c.dataset.state = S.connState;
    let label = T("conn." + S.connState);
    if (S.connState === "offline" && S.retryAt > Date.now()) label += " · " + T("conn.retry", { s: Math.ceil((S.retryAt - Date.now()) / 1000) });
    $("crew-conn-label").textContent = label;
    document.body.classList.toggle("stale", S.connState !== "online");
  }

  function renderGps() {
    const g = $("crew-gps");
    const st = S.geo.state;
    g.dataset.state = st;
    let text = T("crew.gps." + st);
    if (st === "on" && S.geo.sentAt) text += " · " + T("crew.gps.age", { s: Math.max(0, Math.round((Date.now() - S.geo.sentAt) / 1000)) });
    g.textContent = text;
  }

  function navLinks(o) {
    if (o.lat === null || o.lon === null) return [];
    const lat = Number(o.lat).toFixed(6);
    const lon = Number(o.lon).toFixed(6);
    const links = [el("a", { class: "btn nav", "data-testid": "crew-navigate", href: `geo:${lat},${lon}?q=${lat},${lon}(${encodeURIComponent(o.name)})` }, T("crew.navigate"))];
    if (S.mapUrl) {
      const href = S.mapUrl.replaceAll("{lat}", lat).replaceAll("{lon}", lon);
      if (/^https?:\/\//.test(href)) links.push(el("a", { class: "btn nav", "data-testid": "crew-map", href, target: "_blank", rel: "noopener noreferrer" }, T("crew.map")));
    }
    return links;
  }

  function card(a) {
    const status = shownStatus(a);
    const o = objectOf(a);
    const al = alarmOf(a);
    const waiting = S.queue.filter((q) => q.assignment_id === a.id);
    const parts = [];
    parts.push(el("div", { class: "a-head" },
      al.priority ? el("span", { class: `prio p${al.priority}` }, "P" + al.priority) : null,
      el("span", { class: "a-title", "data-testid": "crew-alarm-title" }, al.title || T("crew.assignment")),
      el("span", { class: `status st-${status}`, "data-testid": "crew-status" }, T("crew.status." + status))));
    parts.push(el("h1", { class: "obj", "data-testid": "crew-object-name" }, o.name || "—"));
    if (o.address) parts.push(el("p", { class: "addr", "data-testid": "crew-object-address" }, o.address));
    const nav = navLinks(o);
    if (nav.length) parts.push(el("div", { class: "navs" }, nav));

    const notes = notesOf(a);
    if (notes.length) {
      parts.push(el("h2", {}, T("crew.instructions")));
      for (const n of notes) parts.push(el("div", { class: "note op", "data-testid": "crew-operator-note" }, timeNode(n.at), " ", n.note));
    }
    if (o.instructions) {
      parts.push(el("h2", {}, T("crew.object_instructions")));
      parts.push(el("div", { class: "note", "data-testid": "crew-instructions" }, o.instructions));
    }
    if (o.zones.length || al.zone) {
      parts.push(el("h2", {}, T("card.zones")));
      parts.push(el("ul", { class: "zones", "data-testid": "crew-zones" },
        (o.zones.length ? o.zones : [{ number: al.zone, name: "" }]).map((z) => el("li", { class: z.number === al.zone ? "hit" : "" },
          el("span", { class: "mono" }, z.number), el("span", {}, z.name || ""),
          z.number === al.zone ? el("b", {}, T("crew.zone.alarm")) : null))));
    }
    if (o.contacts.length) {
      parts.push(el("h2", {}, T("crew.keyholders")));
      parts.push(el("ul", { class: "contacts", "data-testid": "crew-keyholders" }, o.contacts.map((c) => el("li", {},
        el("span", { class: "cname" }, (c.call_order ? c.call_order + ". " : "") + (c.name || "")),
        c.phone ? el("a", { class: "btn call", href: "tel:" + String(c.phone).replace(/[^0-9+]/g, ""), "data-testid": "crew-call" }, "☎ " + c.phone) : null))));
    }

    parts.push(el("h2", {}, T("crew.steps")));
    parts.push(el("ol", { class: "steps", "data-testid": "crew-steps" }, STEPS.map((s) => {
      const at = stepAt(a, s);
      const queued = waiting.find((q) => q.status === s);
      const done = rank(status) >= rank(s);
      return el("li", { class: (done ? "done" : "") + (queued ? " queued" : ""), "data-step": s },
        el("span", {}, T("crew.status." + s)),
        queued ? el("small", { class: "wait" }, T("crew.waiting")) : timeNode(at));
    })));

    if (a.outcome || a.report) {
      parts.push(el("p", { class: "muted" }, [a.outcome ? T("outcome." + a.outcome) : "", a.report || ""].filter(Boolean).join(" — ")));
    }
    parts.push(actions(a, status));
    return el("article", { class: "assignment", "data-testid": "crew-assignment", "data-assignment-id": a.id, "data-status": status }, parts);
  }

  function actions(a, status) {
    const next = NEXT[status];
    if (!next) return el("div", { class: "actions" });
    if (next === "finished" && S.finishing.has(a.id)) return finishForm(a);
    const label = T("crew.do." + next);
    return el("div", { class: "actions" },
      el("button", {
        type: "button", class: `big go-${next}`, "data-testid": "crew-step-button", "data-next": next,
        onclick: (ev) => {
          ensureAudio();
          S.ringing.delete(a.id);
          if (next === "finished") { S.finishing.add(a.id); render(); const s = document.querySelector(`form.finish[data-assignment-id="${a.id}"] select`); if (s) s.focus(); return; }
          ev.currentTarget.disabled = true;
          step(a, next);
        },
      }, label));
  }

  function finishForm(a) {
    const draft = S.drafts.get(a.id) || { outcome: "", report: "" };
    const err = S.errors.get(a.id);
    const outcomes = (S.me && S.me.outcomes) || ["real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other"];
    const select = el("select", { id: `outcome-${a.id}`, "data-testid": "crew-outcome", required: true,
                                  onchange: () => { const e = S.errors.get(a.id); if (e && e.field === "outcome") { S.errors.delete(a.id); const p = select.parentNode.querySelector("[data-testid=crew-outcome-error]"); if (p) p.remove(); } } },
      el("option", { value: "" }, "—"), outcomes.map((o) => el("option", { value: o }, T("outcome." + o))));
    select.value = draft.outcome || "";
    const report = el("textarea", { id: `report-${a.id}`, "data-testid": "crew-report", rows: 3, maxlength: 2000, placeholder: T("crew.report.placeholder") });
    report.value = draft.report || "";
    const errorFor = (field) => err && err.field === field ? el("p", { class: "error", "data-testid": `crew-${field}-error` }, err.text) : null;
    return el("form", {
      class: "finish actions", "data-assignment-id": a.id, novalidate: true,
      onsubmit: (ev) => {
        ev.preventDefault();
        if (!select.value) {
          S.errors.set(a.id, { field: "outcome", text: T("crew.outcome.required") });
          S.drafts.set(a.id, { outcome: "", report: report.value });
          render();
          return;
        }
        S.errors.delete(a.id);
        S.drafts.delete(a.id);
        step(a, "finished", { outcome: select.value, report: report.value.trim() });
      },
    },
      el("label", { for: `outcome-${a.id}` }, T("close.outcome")), select, errorFor("outcome"),
      el("label", { for: `report-${a.id}` }, T("crew.report")), report, errorFor("report"),
      el("div", { class: "row" },
        el("button", { type: "button", class: "big secondary", "data-testid": "crew-finish-cancel", onclick: () => { S.finishing.delete(a.id); S.errors.delete(a.id); S.drafts.delete(a.id); render(); } }, T("action.cancel")),
        el("button", { type: "submit", class: "big go-finished", "data-testid": "crew-finish-submit" }, T("crew.do.send"))));
  }

  // ---------- position ----------

  function onDuty() {
    if (S.group && S.group.on_duty) return true;
    return [...S.assignments.values()].some((a) => !ENDED.has(a.status));
  }

  function metres(a, b) {
    const R = 6371000;
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * R * Math.asin(Math.sqrt(h));
  }

  function watchPosition() {
    const want = onDuty();
    if (!navigator.geolocation) { S.geo.state = "none"; return; }
    if (want && S.geo.watch === null) {
      S.geo.state = "waiting";
      S.geo.watch = navigator.geolocation.watchPosition((p) => {
        S.geo.fix = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy, t: Date.now() };
        if (S.geo.state !== "on" && S.geo.state !== "refused") S.geo.state = "on";
        maybeSendPosition();
      }, (err) => {
        S.geo.state = err.code === 1 ? "denied" : "waiting";
        renderGps();
      }, { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
    } else if (!want && S.geo.watch !== null) {
      navigator.geolocation.clearWatch(S.geo.watch);
      S.geo.watch = null;
      S.geo.state = "off";
    }
  }

  let sending = false;
  async function maybeSendPosition(force) {
    const fix = S.geo.fix;
    if (!fix || sending || !onDuty()) return;
    const since = Date.now() - S.geo.sentAt;
    const moved = S.geo.sent ? metres(S.geo.sent, fix) : Infinity;
    const due = S.geo.failed || since >= GPS_EVERY || (moved >= GPS_METRES && since >= GPS_MIN_GAP) || force;
    if (!due || (S.geo.sent && S.geo.sent.t === fix.t)) return; // nothing new since the last send
    sending = true;
    try {
      await post("/api/crew/position", { lat: fix.lat, lon: fix.lon, accuracy: fix.accuracy ?? null });
      S.geo.sent = fix;
      S.geo.sentAt = Date.now();
      S.geo.failed = false;
      S.geo.state = "on";
    } catch (e) {
      S.geo.failed = true; // sent again with the next fix or tick
      if (e instanceof HttpError && e.status < 500) S.geo.state = "refused";
    } finally {
      sending = false;
      renderGps();
    }
  }

  // ---------- the websocket ----------

  function connect() {
    if (S.ws) return;
    S.connState = S.attempts ? "offline" : "connecting";
    renderConn();
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/crew");
    S.ws = ws;
    S.lastMessage = Date.now();
    ws.onmessage = (ev) => {
      S.lastMessage = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_e) { return; }
      handle(msg);
    };
    ws.onclose = (ev) => {
      if (S.ws !== ws) return;
      S.ws = null;
      if (ev.code === 4401) { location.replace("/login?next=/crew"); return; }
      if (ev.code === 4403) { S.connState = "offline"; S.group = null; render(); return; } // not in a group: nothing to wait for
      retryLater();
    };
  }

  let retryTimer = null;
  function retryLater() {
    S.attempts += 1;
    const base = Math.min(15000, 500 * 2 ** Math.min(S.attempts - 1, 5));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    S.retryAt = Date.now() + delay;
    S.connState = "offline";
    renderConn();
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }

  function handle(msg) {
    switch (msg.type) {
      case "snapshot": { // on every (re)connect: the group and its current assignment, if any
        S.group = msg.group || null;
        const list = msg.assignment ? [msg.assignment] : [];
        const ids = new Set();
        for (const a of list) { applyAssignment(a, true); ids.add(a.id); }
        for (const id of [...S.assignments.keys()]) {
          if (!ids.has(id) && !S.queue.some((q) => q.assignment_id === id)) S.assignments.delete(id);
        }
        S.attempts = 0;
        S.retryAt = 0;
        S.connState = "online";
        watchPosition();
        render();
        flush();
        maybeSendPosition(true);
        break;
      }
      case "assignment":
        applyAssignment(msg.assignment, true);
        watchPosition();
        render();
        break;
      case "group":
        S.group = msg.group;
        watchPosition();
        render();
        break;
      case "ping":
        if (S.ws) S.ws.send('{"type":"pong"}');
        break;
      default:
        break;
    }
  }

  // ---------- clock: reconnect watchdog, GPS age, ringing ----------

  function tick() {
    if (S.connState === "offline") renderConn();
    renderGps();
    if (S.ws && S.ws.readyState === WebSocket.OPEN && Date.now() - S.lastMessage > SILENCE_LIMIT) S.ws.close();
    if (S.geo.fix) maybeSendPosition();
    if (S.queue.length && !S.flushing && S.connState === "online" && Math.floor(Date.now() / 1000) % 5 === 0) flush();
    if (S.connState === "online" && Math.floor(Date.now() / 1000) % 30 === 0) refreshCurrent();
    const now = Date.now();
    for (const [id, since] of S.ringing) {
      const a = S.assignments.get(id);
      if (!a || shownStatus(a) !== "new" || now - since > RING_FOR) S.ringing.delete(id);
    }
    if (S.ringing.size && Math.floor(now / 1000) % Math.round(RING_EVERY / 1000) === 0) alertOnce();
  }

  // The socket tells of every change of the assignment itself; an operator's note added later is
  // picked up here, every 30 s while there is work.
  async function refreshCurrent() {
    if (![...S.assignments.values()].some((a) => !ENDED.has(a.status))) return;
    try {
      const r = await api("/api/crew/assignment");
      if (r.group) S.group = r.group;
      if (r.assignment) applyAssignment(r.assignment, true);
      render();
    } catch (_e) { /* the socket's next snapshot will tell */ }
  }

  function goneOffline() {
    S.connState = "offline";
    renderConn();
    if (S.ws) { const ws = S.ws; S.ws = null; try { ws.close(); } catch (_e) { /* gone */ } retryLater(); }
  }

  function backOnline() {
    clearTimeout(retryTimer);
    S.attempts = Math.max(S.attempts, 1);
    if (!S.ws) connect();
    flush();
  }

  // ---------- start ----------

  async function init() {
    let me;
    try { me = await api("/api/me"); } catch (_e) { return; }
    S.me = me;
    S.tz = me.timezone || "Asia/Almaty";
    S.mapUrl = me.map_url || "";
    const saved = localStorage.getItem("kuzet.lang." + me.username);
    S.lang = LANGS.includes(saved) ? saved : (LANGS.includes(me.lang) ? me.lang : "kk");
    loadQueue();
    for (const b of document.querySelectorAll("[data-lang]")) b.addEventListener("click", () => setLang(b.dataset.lang));
    $("crew-sound").addEventListener("click", ensureAudio);
    document.addEventListener("click", ensureAudio, { passive: true });
    $("crew-logout").addEventListener("click", async () => {
      try { await post("/api/logout"); } catch (_e) { /* gone anyway */ }
      location.replace("/login");
    });
    window.addEventListener("offline", goneOffline);
    window.addEventListener("online", backOnline);
    applyStaticText();
    renderSoundBanner();
    render();
    setInterval(tick, 1000);
    connect();
  }

  init();
})();

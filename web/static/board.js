"use strict";
// The operators' live alarm board. Plain JS, no build step. Data arrives on /ws/board (see
// web/feed.py for the protocol); actions go to the REST API. Everything shown from the server is
// put in the page as text (textContent), never as HTML.
(() => {
  const I18N = window.KUZET_I18N || {};
  const LANGS = window.KUZET_LANGS || ["kk", "ru", "en"];
  const LOCALES = { kk: "kk-KZ", ru: "ru-RU", en: "en-GB" };
  const MAX_SIGNALS = 100;
  const MAX_ROWS = 300; // alarm rows in the page at once: a storm of thousands stays responsive
  const SILENCE_LIMIT = 60000; // no message (not even a ping) for this long: reconnect

  const S = {
    me: null,
    lang: "kk",
    tz: "Asia/Almaty",
    alarms: new Map(), // id -> alarm (open ones)
    gone: new Map(), // id -> stamp of the closing update, so a late older update cannot revive it
    seen: new Set(), // alarm ids already known (no sound for them)
    signals: [], // newest first
    signalIds: new Set(),
    selected: null, // alarm id
    selectedAlarm: null, // last known state of the selected alarm (kept after it closes)
    card: null,
    history: null,
    ws: null,
    attempts: 0,
    retryAt: 0,
    lastMessage: 0,
    connState: "connecting",
    sound: true,
    audio: null,
    renderQueued: false,
    dirty: new Set(),
    detailsTimer: null,
    fresh: new Set(),
    counts: null, // true counts from the server: {open, new, held, unhandled, by_priority}
    shown: 0, // how many alarms the last snapshot held
    checklist: null, // {alarm, items} of the selected alarm
  };

  const $ = (id) => document.getElementById(id);

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

  function applyStaticText() {
    document.documentElement.lang = S.lang;
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = T(e.dataset.i18n);
    for (const e of document.querySelectorAll("[data-i18n-title]")) e.title = T(e.dataset.i18nTitle);
    for (const e of document.querySelectorAll("[data-i18n-placeholder]")) e.placeholder = T(e.dataset.i18nPlaceholder);
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === S.lang));
    if (S.me) {
      $("user-name").textContent = S.me.full_name || S.me.username;
      $("user-role").textContent = T("role." + S.me.role) + " · " + S.me.username;
    }
  }

  function setLang(lang) {
    if (!LANGS.includes(lang)) return;
    S.lang = lang;
    formats = {};
    if (S.me) localStorage.setItem("kuzet.lang." + S.me.username, lang);
    localStorage.setItem("kuzet.lang", lang);
    applyStaticText();
    fillOutcomes();
    renderAll();
    emit("lang", lang);
  }

  // ---------- time (shown in the post's time zone) ----------

  let formats = {};
  function fmt(kind) {
    const key = kind;
    if (!formats[key]) {
      const opts = {
        time: { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" },
        date: { day: "2-digit", month: "2-digit" },
        day: { year: "numeric", month: "2-digit", day: "2-digit" },
        full: { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" },
      }[kind];
      const locale = LOCALES[S.lang] || "en-GB";
      try {
        formats[key] = new Intl.DateTimeFormat(locale, { timeZone: S.tz, ...opts });
      } catch (_e) {
        formats[key] = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Almaty", ...opts });
      }
    }
    return formats[key];
  }
  const fmtTime = (d) => fmt("time").format(d);
  const isToday = (d) => fmt("day").format(d) === fmt("day").format(new Date());

  function timeNode(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    const node = el("time", { datetime: iso, title: fmt("full").format(d) }, fmtTime(d));
    if (!isToday(d)) node.append(el("small", {}, fmt("date").format(d)));
    return node;
  }

  // microsecond-exact comparison of the server's ISO stamps
  function stamp(iso) {
    if (!iso) return 0;
    const m = /\.(\d+)/.exec(iso);
    const micro = m ? Number((m[1] + "000000").slice(0, 6)) % 1000 : 0;
    return Date.parse(iso) * 1000 + micro;
  }

  // ---------- API ----------

  async function api(path, options) {
    const r = await fetch(path, { credentials: "same-origin", ...(options || {}) });
    if (r.status === 401) {
      location.replace("/login?next=/board");
      throw new Error("not logged in");
    }
    let body = null;
    try { body = await r.json(); } catch (_e) { body = null; }
    if (!r.ok) {
      const detail = body && body.detail ? body.detail : r.statusText;
      const err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      err.status = r.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  function post(path, body) {
    return api(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body || {}),
    });
  }

  let toastTimer = null;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
  }

  // ---------- alarm state ----------

  function applyAlarm(a, live) {
    const current = S.alarms.get(a.id);
    const known = current ? stamp(current.updated_at) : S.gone.get(a.id);
    if (known !== undefined && stamp(a.updated_at) < known) return; // an older copy: ignore
    if (a.state === "closed") {
      S.alarms.delete(a.id);
      S.gone.set(a.id, stamp(a.updated_at));
    } else {
      S.alarms.set(a.id, a);
      S.gone.delete(a.id);
    }
    if (live && a.state === "new" && !S.seen.has(a.id)) beep(a.priority);
    S.seen.add(a.id);
    if (S.selected === a.id) {
      S.selectedAlarm = a;
      scheduleDetails();
      scheduleRender("card");
    }
    scheduleRender("alarms");
  }

  const onHold = (a) => !!(a.hold_until && Date.parse(a.hold_until) > Date.now());
  // the same order as the server's (console/alarm.py OPEN_ORDER): held last, most urgent first,
  // a hold that ran out on top of its priority, new before taken, oldest first
  function order(a, b) {
    const ah = onHold(a) ? 1 : 0;
    const bh = onHold(b) ? 1 : 0;
    if (ah !== bh) return ah - bh;
    if (a.priority !== b.priority) return a.priority - b.priority;
    const ar = a.recalled_at ? 0 : 1;
    const br = b.recalled_at ? 0 : 1;
    if (ar !== br) return ar - br;
    const an = a.state === "new" ? 0 : 1;
    const bn = b.state === "new" ? 0 : 1;
    if (an !== bn) return an - bn;
    return stamp(a.opened_at) - stamp(b.opened_at);
  }

  function canAct() { return !!(S.me && S.me.can_act); }

  function actionButtons(a, prefix) {
    if (!canAct() || a.state === "closed") return [];
    const out = [];
    if (a.state === "new") {
      out.push(el("button", {
        type: "button", class: "ack" + (prefix ? "" : " small"), "data-testid": prefix + "ack-button",
        onclick: (ev) => { ev.stopPropagation(); acknowledge(a.id, ev.currentTarget); },
      }, T("action.ack")));
    } else {
      out.push(el("button", {
        type: "button", class: "close" + (prefix ? "" : " small"), "data-testid": prefix + "close-button",
        onclick: (ev) => { ev.stopPropagation(); openClose(a.id); },
      }, T("action.close")));
    }
    return out;
  }

  function alarmRow(a) {
    const title = (a.title && (a.title[S.lang] || a.title.ru || a.title.en)) || a.klass || a.kind;
    const objectName = a.object_name || T("unknown_object");
    const tr = el("tr", {
      "data-testid": "alarm-row", "data-alarm-id": a.id, "data-state": a.state, "data-priority": a.priority,
      "data-handled-by": a.handled_by_name || "", "data-held": String(onHold(a)),
      class: `p${a.priority} state-${a.state}` + (S.selected === a.id ? " selected" : "") + (onHold(a) ? " held" : ""),
      tabindex: 0, "aria-selected": String(S.selected === a.id),
      onclick: () => select(a.id),
      onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(a.id); } },
    },
      el("td", { class: "prio", title: T("col.priority") }, el("span", {}, "P" + a.priority)),
      el("td", { class: "time", "data-testid": "alarm-time" }, timeNode(a.opened_at),
        el("span", { class: "wait", "data-since": a.opened_at, "data-testid": "alarm-wait", title: T("shift.waiting") }, waitText(a.opened_at))),
      el("td", { class: "object", "data-testid": "alarm-object" },
        el("b", {}, objectName),
        a.terror_vulnerable ? el("span", { class: "badge tv", title: T("terror_vulnerable") }, T("terror_vulnerable.short")) : null,
        el("small", {}, "#" + a.account),
        a.handled_by ? el("span", { class: "handler" + (isMine(a) ? " mine" : ""), "data-testid": "alarm-handler",
                                    title: T("shift.handled_by") }, a.handled_by_full_name || a.handled_by_name) : null),
      el("td", { class: "address" }, a.address || ""),
      el("td", { class: "event", "data-testid": "alarm-title" }, title,
        a.last_code ? el("small", {}, a.last_code) : null),
      el("td", { class: "zone", "data-testid": "alarm-zone" }, a.last_zone || "—"),
      el("td", { class: "state-cell" },
        el("span", { class: `state s-${a.state}`, "data-testid": "alarm-state" }, T("state." + a.state)),
        a.restored ? el("span", { class: "restored", "data-testid": "restored-marker" }, T("restored")) : null,
        onHold(a) ? el("span", { class: "hold", "data-testid": "hold-marker", title: a.hold_reason || "" },
                       T("shift.on_hold_until", { t: fmtTime(new Date(a.hold_until)) })) : null,
        a.recalled_at && !onHold(a) ? el("span", { class: "recalled", "data-testid": "recalled-marker" }, T("shift.recalled")) : null),
      el("td", { class: "count", "data-testid": "alarm-count", title: T("col.signals.full") },
        a.signal_count > 1 ? "×" + a.signal_count : a.signal_count,
        a.signal_count > 1 && a.last_signal_at ? el("small", { "data-testid": "alarm-last-signal" }, fmtTime(new Date(a.last_signal_at))) : null),
      el("td", { class: "actions" }, actionButtons(a, "")),
    );
    emit("alarm-row", a, tr);
    return tr;
  }

  // ---------- rendering ----------

  const RENDERERS = { alarms: () => renderAlarms(), signals: () => renderSignals(), card: () => renderCard() };
  function scheduleRender(...parts) {
    for (const p of parts) S.dirty.add(p);
    if (S.renderQueued) return;
    S.renderQueued = true;
    requestAnimationFrame(() => {
      S.renderQueued = false;
      const dirty = [...S.dirty];
      S.dirty.clear();
      for (const p of dirty) RENDERERS[p]();
    });
  }

  function renderAll() {
    renderAlarms();
    renderSignals();
    renderCard();
    renderConn();
  }

  let rowCache = new Map(); // id -> {key, tr}
  function renderAlarms() {
    const all = [...S.alarms.values()].sort(order);
    // only the first MAX_ROWS go into the page (most urgent first); the rest wait their turn
    const list = all.length > MAX_ROWS ? all.slice(0, MAX_ROWS) : all;
    const tbody = $("alarm-rows");
    const next = new Map();
    const rows = list.map((a) => {
      const key = [a.updated_at, a.state, a.priority, a.signal_count, a.restored, S.lang, S.selected === a.id, canAct(),
        a.handled_by, a.hold_until, onHold(a), a.recalled_at].join("|");
      const cached = rowCache.get(a.id);
      const tr = cached && cached.key === key ? cached.tr : alarmRow(a);
      next.set(a.id, { key, tr });
      return tr;
    });
    rowCache = next;
    const same = rows.length === tbody.children.length && rows.every((r, i) => tbody.children[i] === r);
    if (!same) tbody.replaceChildren(...rows);
    $("no-alarms").hidden = list.length > 0;

    // true counts come from the server (the board may hold only part of the open alarms);
    // until the first snapshot, count what the board holds
    const counts = [0, 0, 0, 0, 0];
    let fresh = 0;
    for (const a of all) {
      counts[Math.min(Math.max(a.priority, 1), 5) - 1] += 1;
      if (a.state === "new") fresh += 1;
    }
    let open = all.length;
    if (S.counts) {
      open = S.counts.open;
      fresh = S.counts.new;
      for (let i = 0; i < 5; i++) counts[i] = S.counts.by_priority[String(i + 1)] || 0;
    }
    const countBox = $("alarm-count");
    countBox.dataset.open = String(open);
    countBox.dataset.shown = String(list.length);
    countBox.textContent = open ? `${open} ${T("alarms.open")}` + (list.length < open ? " · " + T("shift.shown", { n: list.length }) : "") : "";
    countBox.title = T("shift.held_count", { n: all.length });
    $("counters").replaceChildren(
      ...counts.map((n, i) => el("span", {
        class: `counter p${i + 1}` + (n ? " on" : ""), "data-testid": `counter-p${i + 1}`, title: T("col.priority") + " " + (i + 1),
      }, `P${i + 1} ${n}`)),
    );
    document.title = (fresh ? `(${fresh}) ` : "") + "Kuzet · " + T("alarms.heading");
  }

  function renderSignals() {
    const tbody = $("signal-rows");
    const rows = S.signals.map((s) => {
      const desc = (s.description && (s.description[S.lang] || s.description.en)) || s.code;
      const tr = el("tr", {
        "data-testid": "signal-row", "data-signal-id": s.id, "data-account": s.account,
        class: (S.fresh.has(s.id) ? "fresh" : "") + (s.object_id ? "" : " unknown"),
      },
        el("td", { class: "t" }, timeNode(s.received_at)),
        el("td", { class: "acct" }, "#" + s.account),
        el("td", { class: "obj" }, s.object_name || T("unknown_object")),
        el("td", { class: "code" }, el("b", {}, s.code), s.qualifier ? "/" + s.qualifier : ""),
        el("td", { class: "desc" }, desc),
        el("td", { class: "zone", title: T("col.zone") }, s.zone_name ? `${s.zone} · ${s.zone_name}` : (s.zone || "")),
        el("td", { class: "rcv muted", title: s.peer || "" }, `${s.receiver} · ${s.protocol}` + (s.encrypted ? " · AES" : "")),
      );
      return tr;
    });
    tbody.replaceChildren(...rows);
    S.fresh.clear();
    $("no-signals").hidden = S.signals.length > 0;
  }

  function renderConn() {
    const c = $("conn");
    c.dataset.state = S.connState;
    let label = T("conn." + S.connState);
    if (S.connState === "offline" && S.retryAt) {
      const s = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
      label += " · " + T("conn.retry", { s });
    }
    $("conn-label").textContent = label;
    const banner = $("offline-banner");
    banner.hidden = S.connState === "online";
    banner.textContent = label;
    document.body.classList.toggle("stale", S.connState !== "online");
  }

  function section(titleKey, ...content) {
    return [el("h3", {}, T(titleKey)), ...content];
  }

  function renderCard() {
    const body = $("card-body");
    const a = S.selectedAlarm;
    if (!a) {
      body.replaceChildren(el("p", { class: "empty" }, T("card.select")));
      return;
    }
    const title = (a.title && (a.title[S.lang] || a.title.ru)) || a.kind;
    const card = S.card && S.card.id === a.object_id ? S.card : null;
    const parts = [
      el("div", { class: "card-top" },
        el("span", { class: `pbox p${a.priority}` }, "P" + a.priority),
        el("div", {},
          el("h2", { "data-testid": "card-object-name" }, a.object_name || T("unknown_object")),
          a.terror_vulnerable ? el("span", { class: "badge tv" }, T("terror_vulnerable")) : null)),
      el("div", { class: "alarm-title", "data-testid": "card-alarm-title" }, title),
      el("div", { class: "alarm-meta" },
        el("span", { class: `state s-${a.state}`, "data-testid": "card-alarm-state" }, T("state." + a.state)),
        a.restored ? el("span", { class: "restored" }, T("restored")) : null,
        el("span", {}, T("card.alarm", { id: a.id })),
        el("span", {}, T("card.opened") + " "), timeNode(a.opened_at)),
      el("div", { class: "card-actions" }, actionButtons(a, "card-")),
      handlingBox(a),
    ];

    const dl = el("dl", {});
    const addRow = (k, ...v) => dl.append(el("dt", {}, T(k)), el("dd", {}, ...v));
    addRow("card.address", a.address || (card && card.address) || "—");
    if (a.latitude !== null && a.latitude !== undefined && a.longitude !== null && a.longitude !== undefined) {
      const lat = Number(a.latitude).toFixed(5);
      const lon = Number(a.longitude).toFixed(5);
      // no link to an outside map site (air-gapped posts): the board's own map shows the object
      addRow("card.coordinates", el("span", { class: "mono" }, `${lat}, ${lon}`), " ",
        el("button", { type: "button", class: "link", "data-testid": "card-map-button",
                       onclick: () => emit("show-on-map", a) }, T("card.map")));
    }
    if (card && card.accounts && card.accounts.length) {
      addRow("card.accounts", ...card.accounts.map((acc, i) => el("span", { class: "mono" }, (i ? ", " : "") + "#" + acc.number + (acc.encrypted ? " (AES)" : ""))));
      const lastSeen = card.accounts.map((acc) => acc.last_seen_at).filter(Boolean).sort().pop();
      if (lastSeen) addRow("card.last_seen", timeNode(lastSeen));
    } else {
      addRow("col.account", el("span", { class: "mono" }, "#" + a.account));
    }
    parts.push(dl);

    if (!a.object_id) {
      parts.push(el("p", { class: "instructions" }, T("card.no_object")));
    } else if (card) {
      if (card.instructions) parts.push(...section("card.instructions", el("div", { class: "instructions", "data-testid": "card-instructions" }, card.instructions)));
      parts.push(...section("card.contacts", card.contacts && card.contacts.length
        ? el("ul", { "data-testid": "card-contacts" }, card.contacts.map((c) => el("li", { class: "contact" },
          el("span", {}, `${c.call_order}. ${c.name}`, el("small", { class: "muted" }, " · " + (T("contact." + c.role) !== "contact." + c.role ? T("contact." + c.role) : c.role))),
          c.phone ? el("a", { href: "tel:" + c.phone.replace(/[^0-9+]/g, "") }, c.phone) : null)))
        : el("p", { class: "muted" }, T("card.none"))));
      parts.push(...section("card.zones", card.zones && card.zones.length
        ? el("ul", { class: "zone-list", "data-testid": "card-zones" }, card.zones.map((z) => el("li", { class: z.number === a.last_zone ? "current" : "" },
          el("span", { class: "mono" }, z.number), el("span", {}, z.name))))
        : el("p", { class: "muted" }, T("card.none"))));
    }

    if (S.checklist && S.checklist.alarm === a.id && S.checklist.items.length) {
      const items = S.checklist.items;
      const done = items.filter((i) => i.done).length;
      parts.push(el("h3", {}, T("shift.checklist"), " ", el("span", { class: "muted", "data-testid": "checklist-progress" }, `${done}/${items.length}`)),
        el("ul", { class: "checklist", "data-testid": "card-checklist" }, items.map((i) => el("li", { class: i.done ? "done" : "" },
          el("label", {},
            el("input", { type: "checkbox", "data-testid": "checklist-item", "data-no": i.no, checked: i.done || null,
                          disabled: !canAct() || a.state === "closed" || null,
                          onchange: (ev) => tickItem(a.id, i.no, ev.currentTarget.checked) }),
            el("span", {}, i.text),
            i.done && i.by ? el("small", { class: "muted" }, ` · ${i.by}`) : null)))));
    }

    if (S.history && S.history.alarm === a.id) {
      parts.push(...section("card.history", el("ul", { class: "history", "data-testid": "card-history" },
        S.history.items.slice().reverse().map((h) => {
          const what = T("event." + h.kind) + (h.code ? ` · ${h.code}${h.zone ? " / " + h.zone : ""}` : "");
          const extra = eventExtra(h);
          const note = h.detail && h.detail.note ? h.detail.note : "";
          return el("li", {}, timeNode(h.at),
            el("span", {}, what, extra ? " — " + extra : "", h.username ? el("span", { class: "who" }, " · " + h.username) : null,
              note ? el("div", {}, note) : null));
        }))));
    }

    // extensions (dispatch, checklists, ...) fill this box on every render of the card
    const ext = el("div", { class: "card-ext", "data-slot": "card-ext", "data-testid": "card-ext" });
    parts.push(ext);
    emit("alarm-card", a, ext);

    if (canAct() && a.state !== "closed") {
      const ta = el("textarea", { rows: 1, maxlength: 2000, "data-testid": "note-input", placeholder: T("close.note.placeholder") });
      parts.push(el("form", {
        class: "note", onsubmit: async (ev) => {
          ev.preventDefault();
          const text = ta.value.trim();
          if (!text) return;
          try {
            const detail = await post(`/api/alarms/${a.id}/note`, { note: text });
            ta.value = "";
            S.history = { alarm: a.id, items: detail.history };
            S.checklist = { alarm: a.id, items: detail.checklist || [] };
            renderCard();
          } catch (e) { toast(T("action.failed") + ": " + e.message); }
        },
      }, ta, el("button", { type: "submit", "data-testid": "note-button" }, T("action.note"))));
    }
    // keep the note being typed across re-renders
    const typing = body.querySelector("textarea");
    const kept = typing ? typing.value : "";
    const hadFocus = typing && document.activeElement === typing;
    body.replaceChildren(...parts.filter(Boolean));
    const fresh = body.querySelector("textarea");
    if (fresh && kept) fresh.value = kept;
    if (fresh && hadFocus) fresh.focus();
  }

  // ---------- selection and details ----------

  function select(id) {
    S.selected = id;
    S.selectedAlarm = S.alarms.get(id) || null;
    S.history = null;
    S.checklist = null;
    emit("select", S.selectedAlarm);
    scheduleRender("alarms", "card");
    loadDetails(id, true);
    if (window.matchMedia("(max-width: 900px)").matches) {
      requestAnimationFrame(() => $("card").scrollIntoView({ behavior: "smooth", block: "start" }));
    }
  }

  function scheduleDetails() {
    clearTimeout(S.detailsTimer);
    S.detailsTimer = setTimeout(() => { if (S.selected) loadDetails(S.selected); }, 300);
  }

  async function loadDetails(id, freshCard) {
    try {
      const a = S.selectedAlarm;
      const wantCard = a && a.object_id && (freshCard || !(S.card && S.card.id === a.object_id));
      const [detail, card] = await Promise.all([
        api(`/api/alarms/${id}`),
        wantCard ? api(`/api/objects/${a.object_id}`) : Promise.resolve(null),
      ]);
      if (S.selected !== id) return;
      S.history = { alarm: id, items: detail.history || [] };
      S.checklist = { alarm: id, items: detail.checklist || [] };
      if (card) S.card = card;
      const current = S.alarms.get(id);
      if (!current || stamp(detail.updated_at) >= stamp(current.updated_at)) S.selectedAlarm = detail;
      renderCard();
    } catch (e) {
      if (e.message !== "not logged in") toast(T("action.failed") + ": " + e.message);
    }
  }

  // ---------- actions ----------

  async function acknowledge(id, button) {
    if (button) button.disabled = true;
    try {
      const a = await act(`/api/alarms/${id}/ack`, {});
      if (a) applyAlarm(a, false);
      else if (button) button.disabled = false;
    } catch (e) {
      toast(T("action.failed") + ": " + e.message);
      if (button) button.disabled = false;
    }
  }

  // ---------- handling: take / take over, hold, calls, checklist, hand-over ----------

  const isMine = (a) => !!(S.me && a.handled_by === S.me.id);

  function waitText(since) {
    const sec = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
    const h = Math.floor(sec / 3600);
    const m = Math.floor((sec % 3600) / 60);
    const ss = String(sec % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  // An action that another operator's alarm refuses (409 naming them) is asked about, then
  // retried with {takeover: true}; null if the operator said no.
  async function act(path, body) {
    try {
      return await post(path, body);
    } catch (e) {
      if (e.status === 409 && e.body && e.body.handled_by) {
        if (!(await askTakeover(e.body.handled_by_name || e.body.handled_by))) return null;
        return await post(path, { ...(body || {}), takeover: true });
      }
      throw e;
    }
  }

  function askTakeover(name) {
    return new Promise((resolve) => {
      const d = $("takeover-dialog");
      $("takeover-text").textContent = T("shift.takeover_question", { name });
      const done = (answer) => { d.close(); resolve(answer); };
      $("takeover-confirm").onclick = () => done(true);
      $("takeover-cancel").onclick = () => done(false);
      d.oncancel = () => resolve(false);
      d.showModal();
      $("takeover-cancel").focus();
    });
  }

  async function run(path, body) {
    try {
      const a = await act(path, body);
      if (a && a.id) applyAlarm(a, false);
      if (a && S.selected) loadDetails(S.selected);
      return a;
    } catch (e) {
      toast(T("action.failed") + ": " + e.message);
      return null;
    }
  }

  function eventExtra(h) {
    const d = h.detail || {};
    if (d.outcome) return T("outcome." + d.outcome);
    if (h.kind === "call") return `${d.called}${d.phone ? " " + d.phone : ""} — ${T("call.answer." + d.answer)}` +
      (d.password_ok === true ? " · " + T("call.password_ok") : d.password_ok === false ? " · " + T("call.password_bad") : "");
    if (h.kind === "hold") return `${d.reason} (${T("shift.until")} ${fmtTime(new Date(d.until))})`;
    if (h.kind === "hold-expired") return d.reason || "";
    if (h.kind === "check") return (d.done ? "✓ " : "✗ ") + (d.item || "");
    if (h.kind === "checklist-skipped") return d.reason || "";
    if (h.kind === "handed-over") return d.to ? "→ " + d.to : T("shift.pool");
    if (h.kind === "taken-over") return d.from ? "← " + d.from : "";
    return "";
  }

  function handlingBox(a) {
    if (a.state === "closed") return null;
    const who = a.handled_by
      ? el("span", { "data-testid": "card-handler" }, T("shift.handled_by") + ": ", el("b", {}, a.handled_by_full_name || a.handled_by_name),
          isMine(a) ? el("small", { class: "muted" }, " (" + T("shift.you") + ")") : null)
      : el("span", { "data-testid": "card-handler", class: "muted" }, T("shift.pool"));
    const hold = onHold(a) ? el("div", { class: "hold-line", "data-testid": "card-hold" },
      T("shift.on_hold_until", { t: fmtTime(new Date(a.hold_until)) }), a.hold_reason ? " — " + a.hold_reason : "") : null;
    const buttons = [];
    if (canAct()) {
      if (a.state !== "new" && !isMine(a)) {
        buttons.push(el("button", { type: "button", "data-testid": "card-take-button", onclick: () => run(`/api/alarms/${a.id}/take`, {}) },
          a.handled_by ? T("shift.take_over") : T("shift.take")));
      }
      if (isMine(a)) {
        buttons.push(el("button", { type: "button", "data-testid": "card-release-button", onclick: () => run(`/api/alarms/${a.id}/release`) }, T("shift.release")));
      }
      if (a.state !== "new") {
        buttons.push(onHold(a)
          ? el("button", { type: "button", "data-testid": "card-unhold-button", onclick: () => run(`/api/alarms/${a.id}/unhold`) }, T("shift.unhold"))
          : el("button", { type: "button", "data-testid": "card-hold-button", onclick: () => openHold(a.id) }, T("shift.hold") + " (h)"));
      }
      buttons.push(el("button", { type: "button", "data-testid": "card-call-button", onclick: () => openCall(a.id) }, T("call.title") + " (l)"));
    }
    return el("div", { class: "handling" }, el("div", {}, who), hold, buttons.length ? el("div", { class: "handling-actions" }, buttons) : null);
  }

  async function tickItem(id, no, done) {
    try {
      const items = await post(`/api/alarms/${id}/checklist/${no}`, { done });
      if (S.selected === id) { S.checklist = { alarm: id, items }; loadDetails(id); }
    } catch (e) {
      toast(T("action.failed") + ": " + e.message);
      renderCard();
    }
  }

  let holding = null;
  function openHold(id) {
    const a = KuzetBoardAlarm(id);
    if (!a || a.state === "new" || a.state === "closed") return;
    holding = id;
    $("hold-reason").value = "";
    $("hold-minutes").value = "5";
    $("hold-error").hidden = true;
    $("hold-dialog").showModal();
    $("hold-reason").focus();
  }

  async function submitHold(ev) {
    ev.preventDefault();
    const reason = $("hold-reason").value.trim();
    const minutes = Number($("hold-minutes").value);
    const err = $("hold-error");
    if (!reason) { err.textContent = T("shift.hold_reason") + "?"; err.hidden = false; return; }
    if (!(minutes >= 0.05 && minutes <= 720)) { err.textContent = T("shift.hold_minutes") + ": 1–720"; err.hidden = false; return; }
    try {
      const a = await act(`/api/alarms/${holding}/hold`, { reason, minutes });
      $("hold-dialog").close();
      if (a) { applyAlarm(a, false); loadDetails(a.id); }
    } catch (e) { err.textContent = T("action.failed") + ": " + e.message; err.hidden = false; }
  }

  let calling = null;
  function openCall(id) {
    const a = KuzetBoardAlarm(id);
    if (!a || a.state === "closed") return;
    calling = id;
    const contacts = (S.card && S.card.id === a.object_id && S.card.contacts) || [];
    $("call-contacts").replaceChildren(...contacts.map((c) => el("option", { value: c.name }, c.phone)));
    $("call-who").value = contacts.length ? contacts[0].name : "";
    $("call-phone").value = contacts.length ? contacts[0].phone : "";
    $("call-answer").replaceChildren(...["answered", "no-answer", "busy", "wrong-number", "voicemail"].map((x) => el("option", { value: x }, T("call.answer." + x))));
    $("call-password").value = "";
    $("call-note").value = "";
    $("call-error").hidden = true;
    $("call-dialog").showModal();
    $("call-who").focus();
  }

  async function submitCall(ev) {
    ev.preventDefault();
    const called = $("call-who").value.trim();
    const err = $("call-error");
    if (!called) { err.textContent = T("call.who") + "?"; err.hidden = false; return; }
    const pw = $("call-password").value;
    try {
      const detail = await post(`/api/alarms/${calling}/calls`, {
        called, phone: $("call-phone").value.trim(), answer: $("call-answer").value,
        password_ok: pw === "" ? null : pw === "yes", note: $("call-note").value.trim(),
      });
      $("call-dialog").close();
      if (S.selected === detail.id) {
        S.history = { alarm: detail.id, items: detail.history };
        renderCard();
      }
    } catch (e) { err.textContent = T("action.failed") + ": " + e.message; err.hidden = false; }
  }

  async function openHandOver() {
    $("handover-error").hidden = true;
    let people = [];
    try { people = await api("/api/operators"); } catch (_e) { people = []; }
    const mine = [...S.alarms.values()].filter(isMine).length;
    $("handover-text").textContent = T("shift.handover_text", { n: mine });
    $("handover-to").replaceChildren(el("option", { value: "" }, T("shift.pool")),
      ...people.filter((p) => !S.me || p.id !== S.me.id).map((p) => el("option", { value: p.id }, `${p.full_name || p.username} (${p.username})`)));
    $("handover-dialog").showModal();
  }

  async function submitHandOver(ev) {
    ev.preventDefault();
    const to = $("handover-to").value;
    try {
      const r = await post("/api/alarms/handover", { to_user_id: to ? Number(to) : null });
      $("handover-dialog").close();
      toast(T("shift.handed_over", { n: r.count, to: r.to || T("shift.pool") }));
    } catch (e) { $("handover-error").textContent = T("action.failed") + ": " + e.message; $("handover-error").hidden = false; }
  }

  function KuzetBoardAlarm(id) {
    return S.alarms.get(id) || (S.selectedAlarm && S.selectedAlarm.id === id ? S.selectedAlarm : null);
  }

  // ---------- keyboard ----------

  const KEYS = [
    ["j / ↓", "keys.next"], ["k / ↑", "keys.prev"], ["a", "keys.ack"], ["t", "keys.take"], ["c", "keys.close"],
    ["h", "keys.hold"], ["l", "keys.call"], ["n", "keys.note"], ["o", "keys.handover"], ["?", "keys.help"], ["Esc", "keys.escape"],
  ];

  function visibleIds() {
    return [...$("alarm-rows").children].map((tr) => Number(tr.dataset.alarmId));
  }

  function move(step) {
    const ids = visibleIds();
    if (!ids.length) return;
    const i = ids.indexOf(S.selected);
    const next = ids[i < 0 ? 0 : Math.min(ids.length - 1, Math.max(0, i + step))];
    select(next);
    requestAnimationFrame(() => {
      const tr = $("alarm-rows").querySelector(`tr[data-alarm-id="${next}"]`);
      if (tr) { tr.scrollIntoView({ block: "nearest" }); tr.focus({ preventScroll: true }); }
    });
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    const typing = t && ((t.tagName === "INPUT" && !["checkbox", "radio", "button"].includes(t.type)) ||
      t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
    if (typing) return;
    if (document.querySelector("dialog[open]")) return;
    const a = S.selected ? KuzetBoardAlarm(S.selected) : null;
    const key = ev.key;
    let done = true;
    if (key === "j" || key === "ArrowDown") move(1);
    else if (key === "k" || key === "ArrowUp") move(-1);
    else if (key === "?") showHelp();
    else if (key === "o" && canAct()) openHandOver();
    else if (!a || !canAct()) done = false;
    else if (key === "a") { if (a.state === "new") acknowledge(a.id); else run(`/api/alarms/${a.id}/take`, {}); }
    else if (key === "t") run(`/api/alarms/${a.id}/take`, {});
    else if (key === "c") { if (a.state !== "new") openClose(a.id); }
    else if (key === "h") openHold(a.id);
    else if (key === "l") openCall(a.id);
    else if (key === "n") { const ta = $("card-body").querySelector("textarea"); if (ta) ta.focus(); }
    else done = false;
    if (done) ev.preventDefault();
  }

  function showHelp() {
    $("help-keys").replaceChildren(...KEYS.map(([k, label]) => el("div", { class: "key-row" }, el("kbd", {}, k), el("span", {}, T(label)))));
    $("help-dialog").showModal();
  }

  // ---------- the shift strip: live figures for the current shift ----------

  function secs(v) {
    if (v === null || v === undefined) return "—";
    const n = Math.round(v);
    return n < 120 ? `${n} ${T("shift.s")}` : `${Math.round(n / 60)} ${T("shift.min")}`;
  }

  async function refreshShift() {
    try {
      const r = await api("/api/shifts/report");
      const me = S.me && r.operators.find((o) => o.user_id === S.me.id);
      const tot = r.totals;
      const onDuty = r.operators.filter((o) => o.logged_in_now).map((o) => o.full_name || o.username);
      $("shift-strip").replaceChildren(
        el("b", {}, T("shift.heading") + " " + r.shift),
        el("span", { "data-testid": "shift-opened" }, T("shift.opened") + ": " + r.opened),
        el("span", { "data-testid": "shift-acked" }, T("shift.acked") + ": " + tot.acknowledged.count + " · p50 " + secs(tot.acknowledged.p50) + " · p90 " + secs(tot.acknowledged.p90)),
        el("span", { "data-testid": "shift-closed" }, T("shift.closed") + ": " + tot.closed.count + " · p50 " + secs(tot.closed.p50)),
        me ? el("span", { "data-testid": "shift-mine" }, T("shift.you") + ": " + me.acknowledged.count + " / " + me.closed.count) : null,
        el("span", { class: "muted", "data-testid": "shift-on-duty" }, T("shift.on_duty") + ": " + (onDuty.join(", ") || "—")));
    } catch (_e) { /* figures are a nicety: the board works without them */ }
  }

  function fillOutcomes() {
    const sel = $("close-outcome");
    const value = sel.value;
    const outcomes = (S.me && S.me.outcomes) || ["real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other"];
    sel.replaceChildren(el("option", { value: "", disabled: true }, "—"), ...outcomes.map((o) => el("option", { value: o }, T("outcome." + o))));
    sel.value = value || "";
  }

  let closing = null;
  function openClose(id) {
    const a = S.alarms.get(id) || (S.selectedAlarm && S.selectedAlarm.id === id ? S.selectedAlarm : null);
    if (!a) return;
    closing = id;
    if (S.selected !== id) select(id);
    fillOutcomes();
    $("close-outcome").value = "";
    $("close-note").value = "";
    $("close-error").hidden = true;
    $("close-checklist-reason").value = "";
    const open = S.checklist && S.checklist.alarm === id ? S.checklist.items.filter((i) => !i.done) : [];
    $("close-checklist").hidden = open.length === 0;
    $("close-checklist-items").textContent = open.map((i) => "• " + i.text).join("\n");
    const title = (a.title && (a.title[S.lang] || a.title.ru)) || a.kind;
    $("close-alarm-title").textContent = `${a.object_name || T("unknown_object")} — ${title}`;
    $("close-dialog").showModal();
    $("close-outcome").focus();
  }

  async function submitClose(ev) {
    ev.preventDefault();
    const outcome = $("close-outcome").value;
    const err = $("close-error");
    if (!outcome) {
      err.textContent = T("close.outcome") + "?";
      err.hidden = false;
      return;
    }
    const button = $("close-confirm");
    button.disabled = true;
    try {
      const a = await act(`/api/alarms/${closing}/close`, { outcome, note: $("close-note").value.trim(),
                                                            checklist_reason: $("close-checklist-reason").value.trim() });
      if (a) applyAlarm(a, false);
      $("close-dialog").close();
    } catch (e) {
      if (e.body && e.body.open_items) { // the checklist is not done: say what and ask for a reason
        $("close-checklist").hidden = false;
        $("close-checklist-items").textContent = e.body.open_items.map((i) => "• " + i).join("\n");
        err.textContent = T("shift.checklist_open");
      } else {
        err.textContent = T("action.failed") + ": " + e.message;
      }
      err.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  // ---------- sound ----------

  function beep(priority) {
    if (!S.sound || priority > 3) return;
    try {
      S.audio = S.audio || new AudioContext();
      if (S.audio.state !== "running") return; // browsers allow sound only after a click
      const times = priority === 1 ? 3 : 1;
      for (let i = 0; i < times; i++) {
        const o = S.audio.createOscillator();
        const g = S.audio.createGain();
        o.frequency.value = priority === 1 ? 1046 : 784;
        g.gain.value = 0.12;
        o.connect(g).connect(S.audio.destination);
        const t0 = S.audio.currentTime + i * 0.28;
        o.start(t0);
        o.stop(t0 + 0.18);
      }
    } catch (_e) { /* no audio device */ }
  }

  // ---------- the websocket ----------

  function connect() {
    S.connState = S.attempts ? "offline" : "connecting";
    renderConn();
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/board");
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
      if (ev.code === 4401) { location.replace("/login?next=/board"); return; }
      if (ev.code === 4403) { S.connState = "offline"; toast(T("forbidden")); renderConn(); return; }
      if (ev.code === 4429) toast(T("conn.slow"));
      S.attempts += 1;
      const base = Math.min(15000, 500 * 2 ** Math.min(S.attempts - 1, 5));
      const delay = Math.round(base * (0.75 + Math.random() * 0.5));
      S.retryAt = Date.now() + delay;
      S.connState = "offline";
      renderConn();
      setTimeout(connect, delay);
    };
  }

  function handle(msg) {
    switch (msg.type) {
      case "snapshot": {
        S.alarms.clear();
        for (const a of msg.alarms) { S.alarms.set(a.id, a); S.seen.add(a.id); }
        S.counts = msg.counts || null;
        S.shown = msg.shown || msg.alarms.length;
        S.signals = [];
        S.signalIds.clear();
        for (const s of msg.signals) addSignal(s, false);
        S.attempts = 0;
        S.retryAt = 0;
        S.connState = "online";
        if (S.selected && S.alarms.has(S.selected)) {
          S.selectedAlarm = S.alarms.get(S.selected);
          scheduleDetails();
        }
        renderConn();
        scheduleRender("alarms", "signals", "card");
        break;
      }
      case "alarm":
        applyAlarm(msg.alarm, true);
        emit("alarm", msg.alarm);
        break;
      case "counts":
        S.counts = msg.counts;
        scheduleRender("alarms");
        clearTimeout(S.shiftTimer); // live shift figures: refreshed shortly after a change settles
        S.shiftTimer = setTimeout(refreshShift, 2000);
        break;
      case "signal":
        addSignal(msg.signal, true);
        scheduleRender("signals");
        break;
      case "ping":
        if (S.ws) S.ws.send('{"type":"pong"}');
        break;
      default:
        break;
    }
    emit("message", msg); // every message, after the board has applied it (extensions read other types)
  }

  function addSignal(s, live) {
    if (S.signalIds.has(s.id)) return;
    S.signalIds.add(s.id);
    S.signals.unshift(s);
    S.signals.sort((x, y) => y.id - x.id);
    if (live) S.fresh.add(s.id);
    while (S.signals.length > MAX_SIGNALS) S.signalIds.delete(S.signals.pop().id);
  }

  // ---------- receivers health ----------

  async function refreshReceivers() {
    const box = $("receivers");
    try {
      const list = await api("/api/receivers");
      if (!list.length) {
        box.replaceChildren(el("span", { class: "chip unknown", "data-testid": "receiver-chip" }, T("receivers.none")));
        return;
      }
      box.replaceChildren(...list.map((r) => {
        const level = r.state !== "running" ? "bad"
          : (r.not_acked || r.supervision_misses || r.peers_cut_off) ? "warn" : "ok";
        return el("span", { class: `chip ${level}`, "data-testid": "receiver-chip", "data-name": r.name,
                            title: `${r.kind} · ${r.state}${r.detail ? " · " + r.detail : ""}` },
          el("b", {}, r.name),
          el("span", { class: "num" }, `${r.connections ?? 0} ${T("receivers.connections")}`),
          el("span", { class: "num" }, `${r.last_minute ?? 0}${T("receivers.per_minute")}`),
          r.rejected ? el("span", { class: "num" }, `${r.rejected} ${T("receivers.rejected")}`) : null,
          r.not_acked ? el("span", { class: "num" }, `${r.not_acked} ${T("receivers.not_acked")}`) : null,
          r.supervision_misses ? el("span", { class: "num", "data-testid": "supervision-misses" },
                                    `${r.supervision_misses} ${T("receivers.misses")}`) : null,
          r.peers_cut_off ? el("span", { class: "num", "data-testid": "peers-cut-off" },
                               `${r.peers_cut_off} ${T("receivers.cut_off")}`) : null,
          r.state === "degraded" ? el("span", { class: "num", "data-testid": "receiver-degraded" }, T("receivers.degraded"))
            : r.state !== "running" ? el("span", { class: "num" }, T("receivers.down")) : null,
          r.last_signal_at ? el("span", { class: "num" }, fmtTime(new Date(r.last_signal_at))) : null);
      }));
    } catch (e) {
      if (e.message === "not logged in") return;
      box.replaceChildren(el("span", { class: "chip unknown", "data-testid": "receiver-chip" }, T("receivers.unavailable")));
    }
  }

  // ---------- clock and watchdog ----------

  function tick() {
    $("clock").textContent = fmtTime(new Date());
    for (const w of $("alarm-rows").querySelectorAll(".wait[data-since]")) w.textContent = waitText(w.dataset.since);
    // a hold that ran out re-sorts at once here; the engine's update follows within a second
    for (const a of S.alarms.values()) if (a.hold_until && !onHold(a) && !a._holdSeen) { a._holdSeen = true; rowCache.delete(a.id); scheduleRender("alarms"); }
    if (S.connState === "offline") renderConn();
    if (S.ws && S.ws.readyState === WebSocket.OPEN && Date.now() - S.lastMessage > SILENCE_LIMIT) {
      S.ws.close(); // silent too long: probably a dead path; onclose reconnects
    }
  }

  // ---------- start ----------

  async function init() {
    let me;
    try {
      me = await api("/api/me");
    } catch (_e) {
      return;
    }
    S.me = me;
    S.tz = me.timezone || "Asia/Almaty";
    const saved = localStorage.getItem("kuzet.lang." + me.username);
    S.lang = LANGS.includes(saved) ? saved : (LANGS.includes(me.lang) ? me.lang : "kk");
    S.sound = localStorage.getItem("kuzet.sound") !== "off";
    $("sound").setAttribute("aria-pressed", String(S.sound));
    $("readonly").hidden = canAct();
    document.body.classList.toggle("readonly", !canAct());
    $("clock-zone").textContent = S.tz;

    for (const b of document.querySelectorAll("[data-lang]")) b.addEventListener("click", () => setLang(b.dataset.lang));
    $("sound").addEventListener("click", () => {
      S.sound = !S.sound;
      localStorage.setItem("kuzet.sound", S.sound ? "on" : "off");
      $("sound").setAttribute("aria-pressed", String(S.sound));
      if (S.sound) { S.audio = S.audio || new AudioContext(); S.audio.resume(); }
    });
    document.addEventListener("click", () => { if (S.audio && S.audio.state === "suspended") S.audio.resume(); }, { passive: true });
    document.addEventListener("click", function first() {
      if (S.sound && !S.audio) { try { S.audio = new AudioContext(); } catch (_e) { /* none */ } }
      document.removeEventListener("click", first);
    });
    $("logout").addEventListener("click", async () => {
      try { await post("/api/logout"); } catch (_e) { /* gone anyway */ }
      location.replace("/login");
    });
    $("close-form").addEventListener("submit", submitClose);
    $("close-cancel").addEventListener("click", () => $("close-dialog").close());
    $("hold-form").addEventListener("submit", submitHold);
    $("hold-cancel").addEventListener("click", () => $("hold-dialog").close());
    $("call-form").addEventListener("submit", submitCall);
    $("call-cancel").addEventListener("click", () => $("call-dialog").close());
    $("call-who").addEventListener("change", () => {
      const c = [...$("call-contacts").options].find((o) => o.value === $("call-who").value);
      if (c) $("call-phone").value = c.textContent;
    });
    $("handover-form").addEventListener("submit", submitHandOver);
    $("handover-cancel").addEventListener("click", () => $("handover-dialog").close());
    $("handover-button").addEventListener("click", openHandOver);
    $("handover-button").hidden = !canAct();
    $("help-button").addEventListener("click", showHelp);
    $("help-close").addEventListener("click", () => $("help-dialog").close());
    document.addEventListener("keydown", onKey);

    applyStaticText();
    fillOutcomes();
    renderAll();
    emit("ready", S.me);
    tick();
    setInterval(tick, 1000);
    connect();
    refreshReceivers();
    setInterval(refreshReceivers, 5000);
    refreshShift();
    setInterval(refreshShift, 30000);
  }

  // ---------- extension API ----------
  // Other scripts (board-dispatch.js, board-map.js, ...) extend the board without editing this file.
  // Load them with a deferred <script> after board.js; register hooks at once (before "ready").
  //   KuzetBoard.on(name, fn)   events:
  //     "ready"      fn(me)              after /api/me, before the websocket connects
  //     "message"    fn(msg)             every websocket message (also types the board ignores)
  //     "alarm"      fn(alarm)           every live alarm update
  //     "alarm-row"  fn(alarm, tr)       a row was (re)built; add badges to its cells
  //     "alarm-card" fn(alarm, box)      the card was (re)built; fill `box` (a div in the card)
  //     "select"     fn(alarm|null)      the operator selected an alarm
  //     "lang"       fn(lang)            the language changed; re-render your text with T()
  //   KuzetBoard.panel({id, title, testid}) -> {root, body, setTitle, setCount}: a side panel
  //   (title: an i18n key), placed under the object card.
  //   KuzetBoard.api(path) / post(path, body), T(key, vars), el(tag, attrs, ...children),
  //   timeNode(iso), toast(text), me(), lang(), alarms(), alarm(id), selected(), select(id),
  //   refresh() (re-render rows and card).
  const hooks = new Map();
  function emit(name, ...args) {
    for (const fn of hooks.get(name) || []) {
      try { fn(...args); } catch (e) { console.warn("board extension", name, e); }
    }
  }
  const panels = new Map();
  function panel(opts) {
    if (panels.has(opts.id)) return panels.get(opts.id);
    const h = el("h2", { "data-i18n": opts.title || "" }, opts.title ? T(opts.title) : "");
    const count = el("span", { class: "count" });
    const body = el("div", { class: "panel-body" });
    const root = el("section", { class: "panel side-panel", id: opts.id, "data-testid": opts.testid || opts.id },
      el("header", { class: "panel-head" }, h, count), body);
    $("side-panels").append(root);
    const p = {
      root, body,
      setTitle: (key) => { h.dataset.i18n = key; h.textContent = T(key); },
      setCount: (text) => { count.textContent = text === null || text === undefined ? "" : String(text); },
    };
    panels.set(opts.id, p);
    return p;
  }
  window.KuzetBoard = Object.freeze({
    on(name, fn) {
      if (!hooks.has(name)) hooks.set(name, []);
      hooks.get(name).push(fn);
    },
    panel, api, post, T, el, timeNode, toast,
    me: () => S.me,
    lang: () => S.lang,
    alarms: () => [...S.alarms.values()],
    alarm: (id) => S.alarms.get(id) || (S.selectedAlarm && S.selectedAlarm.id === id ? S.selectedAlarm : null),
    selected: () => S.selectedAlarm,
    select: (id) => select(id),
    refresh: () => { rowCache = new Map(); scheduleRender("alarms", "card"); },
  });

  init();
})();

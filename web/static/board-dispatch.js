"use strict";
// Dispatch on the operators' board (an extension: see the KuzetBoard API in board.js).
//  - a side panel with every response group: state, crew, vehicle, last position and its age
//    (ticking), current assignment; warnings (too few groups on duty with a vehicle, a shift without
//    a vehicle) and escalation alerts (not accepted in time, not on site in time);
//  - in the selected alarm's card: its groups with each step's time, "send group" (the suggested
//    nearest available group with distance and ETA, or another), "add second group", "recall".
// Live over the board websocket (group / assignment / alert messages); a reconnect's snapshot
// reloads everything. Everything from the server is shown as text, never as HTML.
(() => {
  const B = window.KuzetBoard;
  if (!B) return;
  const { T, el } = B;

  const ACTIVE = new Set(["new", "dispatched", "accepted", "en-route", "on-site"]);
  const STEPS = [["new", "dispatched_at"], ["accepted", "accepted_at"], ["en-route", "en_route_at"],
                 ["on-site", "on_site_at"], ["finished", "finished_at"], ["recalled", "recalled_at"]];
  const DISPATCHABLE = new Set(["available", "returning"]);
  const SPEED_KMH = 40; // only when the server gives no estimate (it normally does)
  const ROUTES = {
    groups: "/api/groups",
    warnings: "/api/dispatch/warnings",
    suggest: (alarmId) => `/api/alarms/${alarmId}/suggest`,
    dispatch: (alarmId) => `/api/alarms/${alarmId}/dispatch`,
    recall: (assignmentId) => `/api/assignments/${assignmentId}/recall`,
  };

  const D = {
    me: null,
    groups: new Map(), // id -> group
    warnings: [],
    alerts: [], // newest first: {key, kind, alarm_id, assignment_id, group_id, group, object_name, at}
    byAlarm: new Map(), // alarm id -> assignments (from the alarm's detail)
    suggestions: new Map(), // alarm id -> [{group_id, distance_km, eta_minutes, ...}] or null while loading
    chooser: null, // {alarmId, groupId} while the operator picks a group
    recall: null, // {assignmentId, reason}
    error: null, // {alarmId, text, conflict}
    busy: false,
    panel: null,
    reloadTimer: null,
  };

  const canAct = () => !!(D.me && D.me.can_act);
  const lang = () => B.lang();
  const text3 = (m) => (m && typeof m === "object" ? (m[lang()] || m.ru || m.en || "") : (m || ""));
  const groupLabel = (g) => (g ? (g.call_sign ? `${g.name} · ${g.call_sign}` : g.name) : "");

  // ---------- data ----------

  async function loadGroups() {
    try {
      const list = await B.api(ROUTES.groups);
      D.groups = new Map(list.map((g) => [g.id, g]));
    } catch (_e) { return; }
    try { D.warnings = await B.api(ROUTES.warnings); } catch (_e) { D.warnings = localWarnings(); }
    renderPanel();
  }

  function localWarnings() { // the same rule the server applies, for when its list cannot be had
    const groups = [...D.groups.values()];
    const ready = groups.filter((g) => g.on_duty && g.vehicles && g.vehicles.length).length;
    const out = ready < 2 ? [{ code: "few-groups-on-duty", on_duty_with_vehicle: ready, required: 2 }] : [];
    for (const g of groups) if (g.on_duty && !(g.vehicles && g.vehicles.length)) out.push({ code: "shift-without-vehicle", group: g.name, group_id: g.id });
    return out;
  }

  function scheduleReload() {
    clearTimeout(D.reloadTimer);
    D.reloadTimer = setTimeout(loadGroups, 150);
  }

  async function loadAlarm(id) {
    try {
      const detail = await B.api(`/api/alarms/${id}`);
      if (Array.isArray(detail.assignments)) D.byAlarm.set(id, detail.assignments);
      const sel = B.selected();
      if (sel && sel.id === id) B.refresh();
    } catch (_e) { /* the board shows its own error */ }
  }

  async function loadSuggestions(alarmId) {
    D.suggestions.set(alarmId, null);
    let found;
    try {
      const s = await B.api(ROUTES.suggest(alarmId));
      found = { groups: s.groups || [], suggested: s.suggested ?? null };
    } catch (_e) {
      const groups = localSuggestions(B.alarm(alarmId) || B.selected());
      const best = groups.find((g) => g.available);
      found = { groups, suggested: best ? best.group_id : null };
    }
    D.suggestions.set(alarmId, found);
    if (D.chooser && D.chooser.alarmId === alarmId && !D.chooser.groupId) D.chooser.groupId = found.suggested;
    B.refresh();
  }

  function km(lat1, lon1, lat2, lon2) {
    const rad = Math.PI / 180;
    const h = Math.sin((lat2 - lat1) * rad / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin((lon2 - lon1) * rad / 2) ** 2;
    return 2 * 6371 * Math.asin(Math.sqrt(h));
  }

  function localSuggestions(a) {
    const out = [];
    for (const g of D.groups.values()) {
      if (!g.on_duty) continue;
      const from = g.position || g.base;
      let d = null;
      if (from && a && a.latitude !== null && a.latitude !== undefined) d = km(from.lat, from.lon, a.latitude, a.longitude);
      out.push({ group_id: g.id, name: g.name, state: g.state, available: DISPATCHABLE.has(g.state),
                 distance_km: d, eta_minutes: d === null ? null : (d / SPEED_KMH) * 60, from: g.position ? "position" : "base" });
    }
    out.sort((x, y) => (y.available - x.available) || ((x.distance_km ?? 1e9) - (y.distance_km ?? 1e9)));
    return out;
  }

  // ---------- websocket messages ----------

  function onMessage(msg) {
    switch (msg.type) {
      case "snapshot":
        if (Array.isArray(msg.groups)) D.groups = new Map(msg.groups.map((g) => [g.id, g]));
        if (Array.isArray(msg.dispatch_warnings)) D.warnings = msg.dispatch_warnings;
        if (!Array.isArray(msg.groups)) loadGroups(); else renderPanel();
        reloadSelected();
        break;
      case "group": {
        const g = msg.group;
        if (!g) break;
        const before = D.groups.get(g.id);
        D.groups.set(g.id, g);
        renderPanel();
        if ((before && before.assignment) || g.assignment) refreshRows();
        if (D.chooser) loadSuggestions(D.chooser.alarmId);
        // the selected alarm's card shows this group's steps: fetch them again
        const sel = B.selected();
        const touched = [before && before.assignment && before.assignment.alarm_id, g.assignment && g.assignment.alarm_id];
        if (sel && touched.includes(sel.id)) loadAlarm(sel.id);
        break;
      }
      case "assignment": {
        const a = msg.assignment;
        if (a && a.alarm_id) {
          const list = (D.byAlarm.get(a.alarm_id) || []).filter((x) => x.id !== a.id);
          D.byAlarm.set(a.alarm_id, [...list, a].sort((x, y) => x.id - y.id));
          const sel = B.selected();
          if (sel && sel.id === a.alarm_id) { B.refresh(); loadAlarm(a.alarm_id); }
        }
        break;
      }
      case "dispatch-warnings":
        D.warnings = msg.warnings || [];
        renderPanel();
        break;
      case "dispatch-alert":
        if (msg.alert) addAlert(msg.alert, true);
        if (msg.alert && B.selected() && B.selected().id === msg.alert.alarm_id) B.refresh();
        break;
      default:
        break;
    }
  }

  function reloadSelected() {
    const sel = B.selected();
    if (sel) loadAlarm(sel.id);
  }

  function addAlert(al, live) {
    const key = `${al.kind}:${al.assignment_id}`;
    if (D.alerts.some((x) => x.key === key)) return;
    D.alerts.unshift({ ...al, key });
    D.alerts = D.alerts.slice(0, 20);
    if (live) B.toast(alertText(al));
    renderPanel();
  }

  function alertText(al) {
    const g = al.group || (D.groups.get(al.group_id) || {}).name || "";
    const alarm = B.alarm(al.alarm_id);
    const object = (alarm && alarm.object_name) || T("card.alarm", { id: al.alarm_id });
    return T("dispatch.alert." + al.kind, { group: g, object }) + (al.minutes ? ` (${T("dispatch.minutes", { min: Math.round(al.minutes) })})` : "");
  }

  // ---------- the group panel ----------

  function age(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return T("groups.age.s", { n: s });
    if (s < 3600) return T("groups.age.m", { n: Math.floor(s / 60) });
    return T("groups.age.h", { n: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  function ageClass(iso) {
    if (!iso) return "none";
    const s = (Date.now() - Date.parse(iso)) / 1000;
    return s < 60 ? "fresh" : s < 600 ? "old" : "stale";
  }

  function statusLabel(status) {
    return T("groups.state." + (status === "new" ? "dispatched" : status));
  }

  function groupRow(g) {
    const crew = (g.crew || []).map((c) => c.full_name).join(", ");
    const plates = (g.vehicles || []).map((v) => v.plate).join(", ");
    const pos = g.position;
    const asg = g.assignment;
    return el("li", { class: `group g-${g.state}`, "data-testid": "group-row", "data-group-id": g.id, "data-state": g.state },
      el("div", { class: "g-head" },
        el("b", { class: "g-name", "data-testid": "group-name" }, groupLabel(g)),
        el("span", { class: `gstate gs-${g.state}`, "data-testid": "group-state" }, T("groups.state." + g.state))),
      el("div", { class: "g-line muted", title: [plates, crew].filter(Boolean).join(" · ") },
        el("span", { class: plates ? "mono" : "warn", "data-testid": "group-vehicle" }, plates || T("groups.no_vehicle")), " · ",
        el("span", { "data-testid": "group-crew" }, crew || T("groups.no_crew"))),
      el("div", { class: "g-line" },
        pos ? [el("span", { class: "mono", "data-testid": "group-position", "data-lat": pos.lat, "data-lon": pos.lon },
                  `${Number(pos.lat).toFixed(5)}, ${Number(pos.lon).toFixed(5)}`), " ",
               el("span", { class: `age ${ageClass(pos.at)}`, "data-testid": "group-position-age", "data-at": pos.at }, age(pos.at))]
            : el("span", { class: "muted", "data-testid": "group-position" }, T("groups.no_position"))),
      asg ? el("button", {
        type: "button", class: "g-asg", "data-testid": "group-assignment", "data-alarm-id": asg.alarm_id,
        onclick: () => B.select(asg.alarm_id),
      }, el("span", {}, "→ " + (asg.object_name || T("card.alarm", { id: asg.alarm_id }))),
        el("span", { class: `astatus as-${asg.status}` }, statusLabel(asg.status)),
        asg.eta_minutes !== null && asg.eta_minutes !== undefined && asg.status !== "on-site"
          ? el("span", { class: "muted" }, T("dispatch.eta", { min: Math.round(asg.eta_minutes) })) : null) : null);
  }

  function warningText(w) {
    if (w.message) return text3(w.message);
    if (w.code === "few-groups-on-duty") return T("groups.warn.few", { n: w.on_duty_with_vehicle ?? 0, min: w.required ?? 2 });
    if (w.code === "shift-without-vehicle") return T("groups.warn.no_vehicle", { group: w.group || "" });
    return w.code || "";
  }

  function renderPanel() {
    if (!D.panel) return;
    const groups = [...D.groups.values()].sort((x, y) => String(x.name).localeCompare(String(y.name)));
    const available = groups.filter((g) => g.on_duty && DISPATCHABLE.has(g.state)).length;
    const onDuty = groups.filter((g) => g.on_duty).length;
    D.panel.setCount(T("groups.count", { free: available, duty: onDuty }));
    const parts = [];
    if (D.warnings.length) {
      parts.push(el("ul", { class: "dwarn", "data-testid": "dispatch-warnings" },
        D.warnings.map((w) => el("li", { "data-testid": "dispatch-warning", "data-code": w.code || "" }, "⚠ " + warningText(w)))));
    }
    if (D.alerts.length) {
      parts.push(el("ul", { class: "dalerts", "data-testid": "dispatch-alerts" }, D.alerts.map((al) => el("li", {
        "data-testid": "dispatch-alert", "data-kind": al.kind, "data-alarm-id": al.alarm_id,
      },
        el("span", {}, "⏰ " + alertText(al)),
        al.at ? B.timeNode(al.at) : null,
        el("span", { class: "dal-btns" },
          al.alarm_id ? el("button", { type: "button", class: "small", "data-testid": "dispatch-alert-open", onclick: () => B.select(al.alarm_id) }, T("dispatch.alert.open")) : null,
          el("button", { type: "button", class: "small", "data-testid": "dispatch-alert-dismiss", title: T("dispatch.alert.dismiss"),
                         onclick: () => { D.alerts = D.alerts.filter((x) => x.key !== al.key); renderPanel(); } }, "✕"))))));
    }
    parts.push(groups.length
      ? el("ul", { class: "groups", "data-testid": "group-list" }, groups.map(groupRow))
      : el("p", { class: "empty" }, T("groups.none")));
    parts.push(panelLinks());
    D.panel.body.replaceChildren(...parts);
  }

  function tickAges() {
    if (!D.panel) return;
    for (const n of D.panel.body.querySelectorAll("[data-testid=group-position-age]")) {
      n.textContent = age(n.dataset.at);
      n.className = `age ${ageClass(n.dataset.at)}`;
    }
  }

  // ---------- the alarm's row: which group answers it, and how far it got ----------

  function alarmRow(alarm, tr) {
    const answering = [...D.groups.values()].filter((g) => g.assignment && g.assignment.alarm_id === alarm.id);
    if (!answering.length) return;
    const cell = tr.querySelector("td.state-cell") || tr.lastElementChild;
    for (const g of answering) {
      cell.append(el("span", { class: `row-group as-${g.assignment.status}`, "data-testid": "alarm-row-group", title: groupLabel(g) },
        (g.call_sign || g.name) + " · " + statusLabel(g.assignment.status)));
    }
  }

  let rowsTimer = null;
  function refreshRows() { // group changes do not change the alarm: redraw its row anyway (at most 4 times a second)
    if (rowsTimer) return;
    rowsTimer = setTimeout(() => { rowsTimer = null; B.refresh(); }, 250);
  }

  // ---------- the alarm card: its groups, send, add, recall ----------

  function stepList(a) {
    return el("ol", { class: "dsteps", "data-testid": "assignment-steps" }, STEPS.filter(([s, col]) => a[col] || (s !== "recalled" && s !== "finished") || a.status === s)
      .map(([s, col]) => el("li", { class: a[col] ? "done" : "", "data-step": s },
        el("span", {}, T("groups.step." + s)), a[col] ? B.timeNode(a[col]) : el("span", { class: "muted" }, "—"))));
  }

  function assignmentBlock(alarm, a) {
    const g = D.groups.get(a.group_id);
    const name = a.group_name || (g && g.name) || `#${a.group_id}`;
    const active = ACTIVE.has(a.status);
    const parts = [
      el("div", { class: "asg-head" },
        el("b", {}, name),
        el("span", { class: `astatus as-${a.status}`, "data-testid": "assignment-status" }, statusLabel(a.status)),
        a.distance_km !== null && a.distance_km !== undefined
          ? el("span", { class: "muted" }, T("dispatch.distance", { km: Number(a.distance_km).toFixed(1) }) +
              (a.eta_minutes !== null && a.eta_minutes !== undefined ? " · " + T("dispatch.eta", { min: Math.round(a.eta_minutes) }) : "")) : null),
      stepList(a),
    ];
    if (a.outcome || a.report) {
      parts.push(el("p", { class: "asg-report", "data-testid": "assignment-report" },
        a.outcome ? el("b", {}, T("outcome." + a.outcome)) : null, a.report ? " — " + a.report : ""));
    }
    if (a.status === "recalled" && a.recall_reason) parts.push(el("p", { class: "muted" }, T("dispatch.recall.reason") + ": " + a.recall_reason));
    if (active && canAct()) {
      if (D.recall && D.recall.assignmentId === a.id) {
        const input = el("input", { type: "text", maxlength: 500, "data-testid": "recall-reason", placeholder: T("dispatch.recall.reason"),
                                    oninput: (ev) => { D.recall.reason = ev.target.value; } });
        input.value = D.recall.reason || "";
        parts.push(el("form", { class: "recall", onsubmit: (ev) => { ev.preventDefault(); recall(alarm, a); } },
          input,
          el("button", { type: "submit", class: "danger small", "data-testid": "recall-confirm" }, T("dispatch.recall")),
          el("button", { type: "button", class: "small", onclick: () => { D.recall = null; B.refresh(); } }, T("action.cancel"))));
        setTimeout(() => { const i = document.querySelector("[data-testid=recall-reason]"); if (i && document.activeElement !== i) i.focus(); }, 0);
      } else {
        parts.push(el("button", { type: "button", class: "small", "data-testid": "recall-button",
                                  onclick: () => { D.recall = { assignmentId: a.id, reason: "" }; D.error = null; B.refresh(); } }, T("dispatch.recall") + "…"));
      }
    }
    return el("li", { class: "asg", "data-testid": "assignment", "data-assignment-id": a.id, "data-group-id": a.group_id, "data-status": a.status }, parts);
  }

  function chooser(alarm) {
    const found = D.suggestions.get(alarm.id);
    if (found === undefined) { loadSuggestions(alarm.id); }
    if (!found) return el("p", { class: "muted" }, T("dispatch.loading"));
    const options = found.groups;
    if (!options.length) return el("p", { class: "warn", "data-testid": "dispatch-none" }, T("dispatch.none_on_duty"));
    const rows = options.map((s) => {
      const g = D.groups.get(s.group_id);
      const free = s.available !== false;
      const suggested = s.group_id === found.suggested;
      const id = `dg-${alarm.id}-${s.group_id}`;
      const input = el("input", { type: "radio", name: `dg-${alarm.id}`, id, value: s.group_id, disabled: !free,
                                  onchange: () => { D.chooser.groupId = s.group_id; } });
      input.checked = D.chooser.groupId === s.group_id;
      return el("li", { class: (free ? "" : "busy ") + (suggested ? "suggested" : ""), "data-testid": suggested ? "dispatch-suggested" : "dispatch-option", "data-group-id": s.group_id },
        input,
        el("label", { for: id },
          el("b", {}, s.name || groupLabel(g) || `#${s.group_id}`),
          suggested ? el("span", { class: "sugg" }, T("dispatch.suggested")) : null,
          el("span", { class: "muted" }, " " + (free ? "" : T("groups.state." + (s.state || (g && g.state) || "off-duty")) + " · ") +
            (s.distance_km !== null && s.distance_km !== undefined ? T("dispatch.distance", { km: Number(s.distance_km).toFixed(1) }) + " · " + T("dispatch.eta", { min: Math.max(1, Math.round(s.eta_minutes)) }) : T("dispatch.no_distance")) +
            (s.from === "base" ? " · " + T("dispatch.from_base") : ""))));
    });
    return el("form", { class: "chooser", "data-testid": "dispatch-chooser", onsubmit: (ev) => { ev.preventDefault(); send(alarm); } },
      el("ul", {}, rows),
      el("div", { class: "chooser-btns" },
        el("button", { type: "submit", class: "primary", "data-testid": "dispatch-send", disabled: !D.chooser.groupId || D.busy }, T("dispatch.send")),
        el("button", { type: "button", "data-testid": "dispatch-cancel", onclick: () => { D.chooser = null; D.error = null; B.refresh(); } }, T("action.cancel"))));
  }

  function alarmCard(alarm, box) {
    if (!alarm || !alarm.id) return;
    if (Array.isArray(alarm.assignments)) D.byAlarm.set(alarm.id, alarm.assignments);
    else if (!D.byAlarm.has(alarm.id)) { D.byAlarm.set(alarm.id, []); loadAlarm(alarm.id); }
    const list = D.byAlarm.get(alarm.id) || [];
    const anyActive = list.some((a) => ACTIVE.has(a.status));
    const parts = [el("h3", {}, T("dispatch.heading"))];
    if (list.length) parts.push(el("ul", { class: "asgs", "data-testid": "alarm-assignments" }, list.map((a) => assignmentBlock(alarm, a))));
    else parts.push(el("p", { class: "muted", "data-testid": "no-assignments" }, T("dispatch.no_groups_sent")));
    const alerts = D.alerts.filter((al) => al.alarm_id === alarm.id);
    // an alert raised while this board was not connected is still on the assignment
    for (const a of list) {
      const late = [["accept-overdue", a.accept_alerted_at && a.status === "new"],
                    ["arrive-overdue", a.arrive_alerted_at && ["new", "accepted", "en-route"].includes(a.status)]];
      for (const [kind, on] of late) {
        if (on && !alerts.some((al) => al.kind === kind && al.assignment_id === a.id)) {
          alerts.push({ kind, alarm_id: alarm.id, assignment_id: a.id, group_id: a.group_id, group: a.group_name });
        }
      }
    }
    for (const al of alerts) parts.push(el("p", { class: "dalert-inline", "data-testid": "card-dispatch-alert" }, "⏰ " + alertText(al)));
    if (D.error && D.error.alarmId === alarm.id) {
      parts.push(el("p", { class: "error" + (D.error.conflict ? " conflict" : ""), "data-testid": "dispatch-error", role: "alert" }, D.error.text));
    }
    if (canAct() && alarm.state !== "closed") {
      if (D.chooser && D.chooser.alarmId === alarm.id) parts.push(chooser(alarm));
      else {
        parts.push(el("button", {
          type: "button", class: anyActive ? "" : "primary", "data-testid": "dispatch-open",
          onclick: () => { D.chooser = { alarmId: alarm.id, groupId: null }; D.error = null; loadSuggestions(alarm.id); B.refresh(); },
        }, anyActive ? T("dispatch.add_second") : T("dispatch.send_group")));
      }
    }
    box.append(el("section", { class: "dispatch-card", "data-testid": "dispatch-section" }, parts));
  }

  async function send(alarm) {
    const groupId = D.chooser && D.chooser.groupId;
    if (!groupId || D.busy) return;
    D.busy = true;
    try {
      const a = await B.post(ROUTES.dispatch(alarm.id), { group_id: groupId });
      D.chooser = null;
      D.error = null;
      const list = (D.byAlarm.get(alarm.id) || []).filter((x) => x.id !== a.id);
      D.byAlarm.set(alarm.id, [...list, a]);
      loadAlarm(alarm.id);
      scheduleReload();
    } catch (e) {
      const g = D.groups.get(groupId);
      D.error = e.status === 409
        ? { alarmId: alarm.id, conflict: true, text: T("dispatch.conflict", { group: g ? g.name : `#${groupId}` }) + " (" + e.message + ")" }
        : { alarmId: alarm.id, text: T("action.failed") + ": " + e.message };
      D.chooser.groupId = null;
      loadSuggestions(alarm.id);
      scheduleReload();
    } finally {
      D.busy = false;
      B.refresh();
    }
  }

  async function recall(alarm, a) {
    const reason = (D.recall && D.recall.reason || "").trim();
    if (!reason) {
      D.error = { alarmId: alarm.id, text: T("dispatch.recall.need_reason") };
      B.refresh();
      return;
    }
    try {
      const r = await B.post(ROUTES.recall(a.id), { reason });
      D.recall = null;
      D.error = null;
      if (r && r.id) {
        const list = (D.byAlarm.get(alarm.id) || []).map((x) => (x.id === r.id ? r : x));
        D.byAlarm.set(alarm.id, list);
      }
      loadAlarm(alarm.id);
      scheduleReload();
    } catch (e) {
      D.error = { alarmId: alarm.id, conflict: e.status === 409, text: T("action.failed") + ": " + e.message };
    }
    B.refresh();
  }

  // ---------- header links: admin page, records ----------

  // links to the records and (for admins) the groups' admin page, at the foot of the panel
  function panelLinks() {
    const links = el("nav", { class: "dispatch-links" },
      el("a", { href: "/dispatch/records", "data-testid": "records-link" }, T("records.link")));
    if (D.me && D.me.can_admin) links.append(el("a", { href: "/dispatch/admin", "data-testid": "dispatch-admin-link" }, T("dadmin.link")));
    return links;
  }

  // ---------- wiring ----------

  B.on("ready", (me) => {
    D.me = me;
    D.panel = B.panel({ id: "groups-panel", title: "groups.heading", testid: "group-panel" });
    renderPanel();
    loadGroups();
    setInterval(tickAges, 1000);
    setInterval(loadGroups, 60000); // states that change with the clock alone (a shift starts or ends)
  });
  B.on("message", onMessage);
  B.on("alarm-card", alarmCard);
  B.on("alarm-row", alarmRow);
  B.on("select", (a) => {
    if (D.chooser && (!a || D.chooser.alarmId !== a.id)) D.chooser = null;
    D.recall = null;
    if (a) loadAlarm(a.id);
  });
  B.on("alarm", (a) => {
    if (a.state === "closed") { D.alerts = D.alerts.filter((x) => x.alarm_id !== a.id); renderPanel(); }
  });
  B.on("lang", () => renderPanel());
})();

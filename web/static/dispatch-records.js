"use strict";
// Response records: per period and group, how many responses, time to dispatch and time to arrive
// (p50 / p90 / max), drawn as an inline SVG chart made here (no chart library), with CSV export.
(() => {
  const K = window.KuzetPage;
  const { T, el } = K;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  const ROUTES = {
    groups: "/api/groups?all=true",
    stats: "/api/records/response",
    list: "/api/records/assignments",
    settings: "/api/dispatch/settings",
  };

  const R = { stats: [], list: [], groups: [], norm: null };

  // the period's days in the post's time zone: [from 00:00, the day after "to" 00:00)
  function nextDay(d) {
    const t = new Date(Date.parse(d + "T12:00:00Z") + 86400000);
    return t.toISOString().slice(0, 10);
  }
  function query(extra) {
    const q = new URLSearchParams({ from: K.localToIso($("from").value + "T00:00"), to: K.localToIso(nextDay($("to").value) + "T00:00") });
    if ($("group").value) q.set("group_id", $("group").value);
    for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
    return q.toString();
  }

  function minutes(sec) {
    if (sec === null || sec === undefined) return "—";
    const s = Math.round(Number(sec));
    return s < 60 ? `${s} ${T("dadmin.unit.s")}` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function setLinks() {
    $("csv").href = `${ROUTES.stats}?${query({ format: "csv" })}`;
  }

  async function load(ev) {
    if (ev) ev.preventDefault();
    const err = $("filters-error");
    err.hidden = true;
    if (!$("from").value || !$("to").value || $("to").value < $("from").value) {
      err.textContent = T("records.bad_period");
      err.hidden = false;
      return;
    }
    setLinks();
    try {
      const [stats, list] = await Promise.all([K.get(`${ROUTES.stats}?${query()}`), K.get(`${ROUTES.list}?${query()}`).catch(() => [])]);
      R.stats = Array.isArray(stats) ? stats : (stats.groups || stats.rows || []);
      R.list = Array.isArray(list) ? list : (list.assignments || []);
    } catch (e) {
      err.textContent = T("action.failed") + ": " + e.message;
      err.hidden = false;
      return;
    }
    render();
  }

  function render() {
    $("period").textContent = `${$("from").value} — ${$("to").value}`;
    const rows = R.stats;
    $("rows").replaceChildren(...rows.map((r) => el("tr", { "data-testid": "records-row", "data-group-id": r.group_id },
      el("td", {}, el("b", {}, r.group_name), r.call_sign ? el("small", { class: "muted" }, " · " + r.call_sign) : null),
      el("td", { class: "num", "data-testid": "records-count" }, r.count),
      el("td", { class: "num" }, r.finished ?? "—"),
      el("td", { class: "num" }, r.recalled ?? "—"),
      el("td", { class: "num" }, minutes(r.dispatch_p50)),
      el("td", { class: "num" }, minutes(r.dispatch_p90)),
      el("td", { class: "num", "data-testid": "records-arrive-p50" }, minutes(r.arrive_p50)),
      el("td", { class: "num" }, minutes(r.arrive_p90)),
      el("td", { class: "num" }, minutes(r.arrive_max)))));
    $("empty").hidden = rows.some((r) => r.count > 0);
    $("list-count").textContent = String(R.list.length);
    $("list").replaceChildren(...R.list.map((a) => el("tr", { "data-testid": "records-assignment" },
      el("td", { class: "mono" }, K.fmtDateTime(a.dispatched_at)),
      el("td", {}, a.object_name || `#${a.alarm_id}`),
      el("td", {}, a.group_name || ""),
      el("td", { class: "num" }, minutes(a.to_dispatch)),
      el("td", { class: "num" }, minutes(a.to_arrive)),
      el("td", {}, T("groups.state." + (a.status === "new" ? "dispatched" : a.status))),
      el("td", {}, a.outcome ? T("outcome." + a.outcome) : ""))));
    $("chart").replaceChildren(chart(rows));
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Horizontal bars per group: time to arrive p50 / p90 / max, and the agreed response time as a line.
  function chart(rows) {
    const data = rows.filter((r) => r.arrive_max !== null && r.arrive_max !== undefined);
    if (!data.length) return el("p", { class: "empty" }, T("records.no_arrivals"));
    const series = [["arrive_p50", "#3fa7ff", "p50"], ["arrive_p90", "#f59e0b", "p90"], ["arrive_max", "#ef4444", "max"]];
    const label = 170;
    const width = 760;
    const bar = 12;
    const groupH = series.length * (bar + 3) + 14;
    const top = 28;
    const height = top + data.length * groupH + 30;
    const maxSec = Math.max(...data.map((r) => r.arrive_max), R.norm || 0, 60);
    const scale = (s) => ((width - label - 60) * s) / maxSec;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": T("records.chart"), class: "rchart" });
    // legend
    series.forEach(([, color, name], i) => {
      root.append(svg("rect", { x: label + i * 70, y: 6, width: 12, height: 12, fill: color, rx: 2 }));
      root.append(svg("text", { x: label + i * 70 + 18, y: 16, class: "lg" }, name));
    });
    // grid, minutes
    const step = maxSec > 3600 ? 900 : maxSec > 1200 ? 300 : maxSec > 300 ? 120 : 60;
    for (let s = 0; s <= maxSec; s += step) {
      const x = label + scale(s);
      root.append(svg("line", { x1: x, x2: x, y1: top - 4, y2: height - 24, class: "grid" }));
      root.append(svg("text", { x, y: height - 8, class: "ax", "text-anchor": "middle" }, `${Math.round(s / 60)}′`));
    }
    data.forEach((r, gi) => {
      const y0 = top + gi * groupH;
      root.append(svg("text", { x: label - 8, y: y0 + groupH / 2, class: "gl", "text-anchor": "end" }, `${r.group_name} (${r.count})`));
      series.forEach(([key, color], si) => {
        const v = r[key];
        if (v === null || v === undefined) return;
        const y = y0 + si * (bar + 3);
        const w = Math.max(1, scale(v));
        const rect = svg("rect", { x: label, y, width: w, height: bar, fill: color, rx: 2, "data-series": key });
        rect.append(svg("title", {}, `${r.group_name}: ${key} ${minutes(v)}`));
        root.append(rect);
        root.append(svg("text", { x: label + w + 5, y: y + bar - 2, class: "val" }, minutes(v)));
      });
    });
    if (R.norm) {
      const x = label + scale(R.norm);
      root.append(svg("line", { x1: x, x2: x, y1: top - 6, y2: height - 24, class: "norm" }));
      root.append(svg("text", { x: x + 4, y: height - 26, class: "normt" }, `${T("records.norm")} ${minutes(R.norm)}`));
    }
    return root;
  }

  async function init() {
    let me;
    try { me = await K.start(); } catch (_e) { return; }
    $("admin-link").hidden = !me.can_admin;
    $("from").value = K.today(-30);
    $("to").value = K.today(0);
    try { R.groups = await K.get(ROUTES.groups); } catch (_e) { R.groups = []; }
    try { R.norm = (await K.get(ROUTES.settings)).response_time || null; } catch (_e) { R.norm = null; }
    const fill = () => {
      const v = $("group").value;
      $("group").replaceChildren(el("option", { value: "" }, T("records.all_groups")), ...R.groups.map((g) => el("option", { value: g.id }, g.name)));
      $("group").value = v;
    };
    fill();
    K.onLang(() => { fill(); render(); });
    $("filters").addEventListener("submit", load);
    for (const id of ["from", "to", "group"]) $(id).addEventListener("change", setLinks);
    await load();
  }

  init();
})();

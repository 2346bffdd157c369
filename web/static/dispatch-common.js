"use strict";
// What the dispatch admin and records pages share: text, elements, the API, the page header.
window.KuzetPage = (() => {
  const I18N = window.KUZET_I18N || {};
  const LANGS = window.KUZET_LANGS || ["kk", "ru", "en"];
  const LOCALES = { kk: "kk-KZ", ru: "ru-RU", en: "en-GB" };
  const P = { me: null, lang: "kk", tz: "Asia/Almaty", onLang: [] };

  function T(key, vars) {
    let s = (I18N[P.lang] || {})[key] ?? (I18N.kk || {})[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll("{" + k + "}", String(v));
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

  class HttpError extends Error {
    constructor(status, detail, body) { super(detail); this.status = status; this.body = body; }
  }

  async function api(path, options) {
    const r = await fetch(path, { credentials: "same-origin", ...(options || {}) });
    if (r.status === 401) {
      location.replace("/login?next=" + encodeURIComponent(location.pathname));
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

  const send = (method, path, body) => api(path, {
    method, headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}),
  });

  // Date and time in the post's time zone, whatever the browser's is.
  function parts(date) {
    const f = new Intl.DateTimeFormat("en-GB", { timeZone: P.tz, year: "numeric", month: "2-digit", day: "2-digit",
                                                 hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    const o = {};
    for (const p of f.formatToParts(date)) o[p.type] = p.value;
    return o;
  }
  function offsetMinutes(date) { // the post's UTC offset at `date`
    const p = parts(date);
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000);
  }
  // "2026-11-29T08:00" typed in the post's zone -> ISO 8601 with that zone's offset
  function localToIso(value) {
    if (!value) return null;
    const [d, t] = value.split("T");
    const [y, m, day] = d.split("-").map(Number);
    const [hh, mm] = (t || "00:00").split(":").map(Number);
    const guess = new Date(Date.UTC(y, m - 1, day, hh, mm));
    const off = offsetMinutes(new Date(guess.getTime() - offsetMinutes(guess) * 60000));
    const sign = off >= 0 ? "+" : "-";
    const abs = Math.abs(off);
    return `${d}T${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")}:00${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }
  // ISO -> "2026-11-29T08:00" in the post's zone (for <input type=datetime-local>)
  function isoToLocal(iso) {
    if (!iso) return "";
    const p = parts(new Date(iso));
    return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
  }
  function fmtDateTime(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat(LOCALES[P.lang] || "en-GB", { timeZone: P.tz, day: "2-digit", month: "2-digit",
      year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  }
  function today(offsetDays) {
    const p = parts(new Date(Date.now() + (offsetDays || 0) * 86400000));
    return `${p.year}-${p.month}-${p.day}`;
  }

  function applyText() {
    document.documentElement.lang = P.lang;
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = T(e.dataset.i18n);
    for (const e of document.querySelectorAll("[data-i18n-title]")) e.title = T(e.dataset.i18nTitle);
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === P.lang));
    if (P.me) {
      const n = document.getElementById("user-name");
      if (n) n.textContent = P.me.full_name || P.me.username;
    }
    const h = document.querySelector("h1[data-i18n]");
    if (h) document.title = "Kuzet · " + h.textContent;
  }

  function setLang(lang) {
    if (!LANGS.includes(lang)) return;
    P.lang = lang;
    if (P.me) localStorage.setItem("kuzet.lang." + P.me.username, lang);
    localStorage.setItem("kuzet.lang", lang);
    applyText();
    for (const fn of P.onLang) fn(lang);
  }

  async function start() {
    const me = await api("/api/me");
    P.me = me;
    P.tz = me.timezone || "Asia/Almaty";
    const saved = localStorage.getItem("kuzet.lang." + me.username);
    P.lang = LANGS.includes(saved) ? saved : (LANGS.includes(me.lang) ? me.lang : "kk");
    for (const b of document.querySelectorAll("[data-lang]")) b.addEventListener("click", () => setLang(b.dataset.lang));
    const out = document.getElementById("logout");
    if (out) {
      out.addEventListener("click", async () => {
        try { await send("POST", "/api/logout"); } catch (_e) { /* gone anyway */ }
        location.replace("/login");
      });
    }
    applyText();
    return me;
  }

  return {
    T, el, api, HttpError, get: (p) => api(p), post: (p, b) => send("POST", p, b), put: (p, b) => send("PUT", p, b),
    patch: (p, b) => send("PATCH", p, b), del: (p) => api(p, { method: "DELETE" }), start, applyText,
    onLang: (fn) => P.onLang.push(fn), lang: () => P.lang, me: () => P.me, tz: () => P.tz,
    localToIso, isoToLocal, fmtDateTime, today,
  };
})();

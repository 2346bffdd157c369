"use strict";
// The login page: language choice (remembered in this browser) and the JSON login call.
(() => {
  const I18N = window.KUZET_I18N || {};
  const LANGS = window.KUZET_LANGS || ["kk", "ru", "en"];
  let lang = pickInitialLang();
  let chosen = false; // did the user pick a language on this page?

  function pickInitialLang() {
    const saved = localStorage.getItem("kuzet.lang");
    if (LANGS.includes(saved)) return saved;
    for (const l of navigator.languages || []) {
      const base = String(l).slice(0, 2).toLowerCase();
      if (base === "kk" || base === "ru") return base;
    }
    return "kk";
  }

  function T(key) {
    return (I18N[lang] || {})[key] || (I18N.kk || {})[key] || key;
  }

  function applyLang() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = T(el.dataset.i18n);
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
    document.title = "Kuzet · " + T("login.title");
  }

  function nextPath() {
    const n = new URLSearchParams(location.search).get("next") || "";
    return n.startsWith("/") && !n.startsWith("//") && !n.includes("\\") && !n.startsWith("/login") ? n : "/board";
  }

  function showError(text) {
    const e = document.getElementById("login-error");
    e.textContent = text;
    e.hidden = !text;
  }

  for (const b of document.querySelectorAll("[data-lang]")) {
    b.addEventListener("click", () => {
      lang = b.dataset.lang;
      chosen = true;
      localStorage.setItem("kuzet.lang", lang);
      applyLang();
    });
  }

  document.getElementById("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const username = document.getElementById("username").value.trim();
    const password = document.getElementById("password").value;
    if (!username || !password) { showError(T("login.failed")); return; }
    const button = document.querySelector("[data-testid=login-submit]");
    button.disabled = true;
    showError("");
    try {
      const r = await fetch("/api/login", {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
      if (r.ok) {
        const me = await r.json();
        if (chosen) localStorage.setItem("kuzet.lang." + me.username, lang);
        const next = nextPath();
        location.replace(me.role === "crew" && next === "/board" ? "/crew" : next); // crews: the phone view
        return;
      }
      showError(T(r.status === 429 ? "login.throttled" : r.status === 401 ? "login.failed" : "login.unreachable"));
    } catch (_e) {
      showError(T("login.unreachable"));
    } finally {
      button.disabled = false;
    }
  });

  applyLang();
})();

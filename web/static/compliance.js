// The auditor's page: every requirement row's status with its evidence over a period, the check
// history, the document registry with expiries, the personnel's eligibility, backups, and the
// signed evidence bundle. Read-only for everyone: the only action is the export.
(function () {
  "use strict";
  const I18N = window.KUZET_I18N || {};
  const LANGS = window.KUZET_LANGS || ["kk", "ru", "en"];
  const S = { lang: "kk", me: null, checks: null, docs: [], people: [], history: [], backups: [] };
  const $ = (id) => document.getElementById(id);

  function T(key, vars) {
    let s = (I18N[S.lang] || {})[key] ?? (I18N.kk || {})[key] ?? key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll("{" + k + "}", String(v));
    return s;
  }
  function pick(v) {
    if (v && typeof v === "object") return v[S.lang] || v.kk || v.ru || v.en || "";
    return v === null || v === undefined ? "" : String(v);
  }
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      if (k === "class") n.className = v; else if (k === "text") n.textContent = v; else n.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) n.append(k instanceof Node ? k : String(k));
    return n;
  }
  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin", headers: { accept: "application/json" } }, opts || {}));
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); throw new Error("401"); }
    if (!r.ok) {
      let msg = r.status + "";
      try { msg = (await r.json()).detail || msg; } catch (_e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r;
  }
  const json = async (path) => (await api(path)).json();

  function statusBadge(status) {
    return el("span", { class: "status s-" + status, "data-status": status }, T("cpage.status." + status));
  }
  function fmtValue(v) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v === "object" && !Array.isArray(v) && ("kk" in v || "en" in v)) return pick(v);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function renderChecks() {
    const body = $("check-rows");
    body.replaceChildren();
    const c = S.checks;
    if (!c) return;
    $("overall").replaceChildren(statusBadge(c.overall));
    for (const r of c.results) {
      const evidence = el("ul", { class: "evidence" }, (r.evidence || []).map((e) => {
        const v = fmtValue(e.value);
        const li = el("li", {}, el("span", { class: "ev-label" }, pick(e.label)), v ? ": " + v : "");
        if (e.document_id) li.append(" ", el("a", { href: "/api/documents/" + e.document_id + "/file" }, T("cpage.doc.open")));
        return li;
      }));
      const details = el("details", {}, el("summary", {}, pick(r.title)), el("p", {}, pick(r.explanation)),
        (r.evidence || []).length ? el("h3", {}, T("cpage.evidence")) : null, (r.evidence || []).length ? evidence : null);
      body.append(el("tr", { "data-row": r.row, "data-testid": "check-" + r.row },
        el("td", { class: "mono" }, r.row), el("td", {}, details), el("td", {}, statusBadge(r.status))));
    }
  }

  function renderDocs() {
    const body = $("doc-rows");
    body.replaceChildren();
    const today = new Date().toISOString().slice(0, 10);
    for (const d of S.docs) {
      const until = d.valid_until || "";
      const expired = until && until < today;
      const soon = until && !expired && (Date.parse(until) - Date.now()) / 86400000 <= 30;
      body.append(el("tr", { class: expired ? "expired" : (soon ? "soon" : ""), "data-testid": "document-row" },
        el("td", {}, pick(d.label) || d.kind), el("td", { class: "mono" }, d.number || ""), el("td", {}, d.issuer || ""),
        el("td", {}, d.holder || ""), el("td", { class: "mono" }, d.issued_on || ""),
        el("td", { class: "mono" }, until ? until + (expired ? " · " + T("cpage.expired") : (soon ? " · " + T("cpage.soon") : "")) : "—"),
        el("td", {}, T("cpage.review." + (d.review_status || "pending")) + (d.reviewed_by ? " (" + d.reviewed_by + ")" : "")),
        el("td", {}, el("a", { href: "/api/documents/" + d.id + "/file" }, (d.file_type || "").toUpperCase()))));
    }
    if (!S.docs.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, T("cpage.none"))));
  }

  function renderPeople() {
    const body = $("people-rows");
    body.replaceChildren();
    for (const p of S.people) {
      const e = p.eligibility || {};
      const why = [...(e.problems || []), ...(e.warnings || [])].map((x) => pick(x.text)).join("; ");
      body.append(el("tr", { class: e.eligible ? "" : "expired", "data-testid": "person-row" },
        el("td", {}, p.full_name), el("td", {}, T("cpage.position." + p.position)), el("td", { class: "mono" }, e.age ?? ""),
        el("td", {}, e.eligible ? T("cpage.yes") : T("cpage.no")), el("td", {}, why)));
    }
    if (!S.people.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, T("cpage.none"))));
  }

  function renderHistory() {
    const rows = [...new Set(S.history.flatMap((h) => Object.keys(h.statuses || {})))].sort();
    $("history-head").replaceChildren(el("tr", {}, el("th", {}, T("cpage.history.when")), el("th", {}, T("cpage.history.by")),
      el("th", {}, T("cpage.period")), rows.map((r) => el("th", { class: "mono" }, r))));
    const body = $("history-rows");
    body.replaceChildren();
    for (const h of S.history) {
      body.append(el("tr", {}, el("td", { class: "mono" }, new Date(h.run_at).toLocaleString()), el("td", {}, h.run_by),
        el("td", { class: "mono" }, h.period_from + " — " + h.period_to),
        rows.map((r) => el("td", { class: "dot s-" + (h.statuses || {})[r], title: T("cpage.status." + (h.statuses || {})[r]) }, "●"))));
    }
  }

  function renderBackups() {
    const body = $("backup-rows");
    body.replaceChildren();
    for (const b of S.backups) {
      body.append(el("tr", {}, el("td", { class: "mono" }, new Date(b.finished_at).toLocaleString()),
        el("td", { class: "mono" }, b.size_bytes !== undefined ? (b.size_bytes / 1048576).toFixed(1) + " MiB" : ""),
        el("td", {}, b.verified ? T("cpage.yes") : T("cpage.no")), el("td", { class: "mono small" }, (b.sha256 || "").slice(0, 16))));
    }
    if (!S.backups.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, T("cpage.none"))));
  }

  function applyLang() {
    document.documentElement.lang = S.lang;
    for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = T(n.dataset.i18n);
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === S.lang));
    $("user-role").textContent = S.me ? T("role." + S.me.role) : "";
    renderChecks(); renderDocs(); renderPeople(); renderHistory(); renderBackups();
  }

  async function loadChecks() {
    $("period-error").hidden = true;
    try {
      S.checks = await json("/api/compliance/checks?from=" + $("from").value + "&to=" + $("to").value);
      renderChecks();
      S.history = await json("/api/compliance/checks/history?limit=30");
      renderHistory();
    } catch (e) {
      $("period-error").textContent = e.message;
      $("period-error").hidden = false;
    }
  }

  async function exportBundle() {
    const btn = $("export");
    const prog = $("export-progress");
    btn.disabled = true;
    const started = Date.now();
    const tick = setInterval(() => { prog.textContent = T("cpage.export.working", { s: Math.round((Date.now() - started) / 1000) }); }, 500);
    prog.textContent = T("cpage.export.working", { s: 0 });
    prog.dataset.state = "working";
    try {
      const q = new URLSearchParams({ from: $("from").value, to: $("to").value, lang: $("export-lang").value });
      const r = await api("/api/compliance/export?" + q, { headers: { accept: "application/zip" } });
      const blob = await r.blob();
      const name = (/filename="([^"]+)"/.exec(r.headers.get("content-disposition") || "") || [])[1] || "kuzet-evidence.zip";
      const a = el("a", { href: URL.createObjectURL(blob), download: name });
      document.body.append(a);
      a.click();
      a.remove();
      prog.textContent = T("cpage.export.done", { name: name, kb: Math.round(blob.size / 1024) });
      prog.dataset.state = "done";
    } catch (e) {
      prog.textContent = T("cpage.export.failed") + ": " + e.message;
      prog.dataset.state = "failed";
    } finally {
      clearInterval(tick);
      btn.disabled = false;
    }
  }

  async function start() {
    S.me = await json("/api/me");
    const saved = localStorage.getItem("kuzet.lang." + S.me.username);
    S.lang = LANGS.includes(saved) ? saved : (LANGS.includes(S.me.lang) ? S.me.lang : "kk");
    $("user-name").textContent = S.me.full_name || S.me.username;
    $("to-board").hidden = !["admin", "operator", "auditor"].includes(S.me.role);
    $("readonly-note").hidden = S.me.role !== "auditor";
    $("export-lang").value = "kk";
    const to = new Date();
    const from = new Date(to.getTime() - 29 * 86400000);
    $("to").value = to.toISOString().slice(0, 10);
    $("from").value = from.toISOString().slice(0, 10);
    for (const b of document.querySelectorAll("[data-lang]")) b.addEventListener("click", () => {
      S.lang = b.dataset.lang;
      localStorage.setItem("kuzet.lang." + S.me.username, S.lang);
      applyLang();
    });
    $("logout").addEventListener("click", async () => {
      await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
      location.href = "/login";
    });
    $("period").addEventListener("submit", (ev) => { ev.preventDefault(); loadChecks(); });
    $("export").addEventListener("click", exportBundle);
    applyLang();
    const key = await json("/api/compliance/key");
    $("key-fp").textContent = key.fingerprint;
    $("key-link").href = URL.createObjectURL(new Blob([key.pem], { type: "application/x-pem-file" }));
    await loadChecks();
    [S.docs, S.people, S.backups] = await Promise.all([json("/api/documents"), json("/api/personnel"),
      json("/api/compliance/backups")]);
    applyLang();
    document.body.dataset.ready = "1";
  }

  start().catch((e) => { if (e.message !== "401") document.body.append(el("p", { class: "error" }, e.message)); });
})();

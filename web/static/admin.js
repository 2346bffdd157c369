"use strict";
// Kuzet admin pages: users, objects (details, service, contacts, accounts, schedule), accounts
// (keys, supervision, zones, service) and the CSV import. Plain JS, no build step; everything from
// the server goes into the page as text. Every edit carries the version it was made from: a stale
// one comes back 409 and the page says so (someone else changed it) with a button to reload.
//
// Other areas add their own sections from their own script (loaded after this one in admin.html):
//   KuzetAdmin.register({ id: "groups", label: "admin.nav.groups", order: 50,
//                         render: async (main, arg, ctx) => { ... } });
// `arg` is what follows "#id/" in the address; `ctx` is the KuzetAdmin API below.
(() => {
  const I18N = window.KUZET_I18N || {};
  const LANGS = window.KUZET_LANGS || ["kk", "ru", "en"];
  const ROLES = ["admin", "operator", "crew", "auditor"];
  const S = { me: null, lang: "kk", tz: "Asia/Almaty", sections: [], started: false, current: null };
  const $ = (id) => document.getElementById(id);

  // ---------- text and elements ----------

  function T(key, vars) {
    let s = (I18N[S.lang] || {})[key] ?? (I18N.kk || {})[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
    return s;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "value") e.value = v;
      else if (k === "checked") e.checked = !!v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 3000);
  }

  // ---------- time in the post's zone ----------

  function fmtTime(iso) {
    if (!iso) return "";
    const locale = { kk: "kk-KZ", ru: "ru-RU", en: "en-GB" }[S.lang] || "en-GB";
    return new Intl.DateTimeFormat(locale, { timeZone: S.tz, year: "numeric", month: "2-digit", day: "2-digit",
                                             hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  }

  function tzOffsetMs(date) {
    const p = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
      timeZone: S.tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(date).map((x) => [x.type, x.value]));
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - date.getTime();
  }

  // "2026-05-01T18:00" typed in a datetime-local field means that time at the post, wherever the browser is
  function postTimeToIso(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!m) return null;
    const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    return new Date(guess - tzOffsetMs(new Date(guess))).toISOString();
  }

  function isoToPostTime(iso) {
    const d = new Date(new Date(iso).getTime() + tzOffsetMs(new Date(iso)));
    return d.toISOString().slice(0, 16);
  }

  // ---------- the API ----------

  async function api(method, path, body, opts) {
    const init = { method, credentials: "same-origin", headers: { "x-kuzet-lang": S.lang } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (_e) {
      return { ok: false, status: 0, data: { detail: T("login.unreachable") } };
    }
    if (r.status === 401 && !(opts && opts.noRedirect)) {
      location.replace("/login?next=" + encodeURIComponent(location.pathname + location.hash));
      return { ok: false, status: 401, data: {} };
    }
    let data = {};
    try { data = await r.json(); } catch (_e) { data = {}; }
    return { ok: r.ok, status: r.status, data };
  }

  // ---------- forms with field errors ----------

  // defs: [{name, label, type, options: [[value, labelKey]], hint, wide, required, step}]
  function makeForm(defs, values, testid) {
    const inputs = {};
    const errs = {};
    const wraps = {};
    const grid = el("div", { class: "form-grid" });
    for (const d of defs) {
      let input;
      const v = values[d.name];
      const tid = (testid ? testid + "-" : "") + d.name;
      if (d.type === "select") {
        input = el("select", { name: d.name, "data-testid": tid },
          d.options.map(([val, key]) => el("option", { value: val, text: T(key) })));
        if (v !== undefined && v !== null) input.value = String(v);
      } else if (d.type === "textarea") {
        input = el("textarea", { name: d.name, "data-testid": tid, rows: 5, value: v ?? "" });
      } else if (d.type === "checkbox") {
        input = el("input", { type: "checkbox", name: d.name, "data-testid": tid, checked: !!v });
      } else {
        input = el("input", { type: d.type || "text", name: d.name, "data-testid": tid, value: v ?? "",
                              step: d.step, autocomplete: d.type === "password" ? "new-password" : "off",
                              required: d.required });
      }
      inputs[d.name] = input;
      errs[d.name] = el("small", { class: "field-error", "data-testid": "error-" + d.name, hidden: true });
      const label = el("span", { text: T(d.label) });
      wraps[d.name] = d.type === "checkbox"
        ? el("label", { class: "field check" + (d.wide ? " wide" : "") }, input, label, errs[d.name])
        : el("label", { class: "field" + (d.wide ? " wide" : "") }, label, input,
             d.hint ? el("small", { class: "hint", text: T(d.hint) }) : null, errs[d.name]);
      grid.append(wraps[d.name]);
    }
    const formError = el("p", { class: "form-error", "data-testid": (testid || "form") + "-error", hidden: true });
    const node = el("div", {}, grid, formError);
    return {
      node, inputs,
      values() {
        const out = {};
        for (const d of defs) {
          const i = inputs[d.name];
          if (d.type === "checkbox") out[d.name] = i.checked;
          else if (d.type === "number") out[d.name] = i.value.trim() === "" ? null : Number(i.value.replace(",", "."));
          else out[d.name] = i.value.trim();
        }
        return out;
      },
      clear() {
        for (const k of Object.keys(errs)) { errs[k].hidden = true; errs[k].textContent = ""; wraps[k].classList.remove("invalid"); }
        formError.hidden = true;
      },
      // the API's errors next to their fields; the rest (and a summary) under the form
      showErrors(resp) {
        this.clear();
        const list = (resp.data && resp.data.errors) || [];
        const rest = [];
        for (const e of list) {
          const name = (e.field || "").split(".")[0];
          if (errs[name]) {
            errs[name].textContent = e.message || e.msg;
            errs[name].hidden = false;
            wraps[name].classList.add("invalid");
          } else rest.push((e.field ? e.field + ": " : "") + (e.message || e.msg));
        }
        if (!list.length) rest.push((resp.data && resp.data.detail) || T("action.failed"));
        formError.textContent = rest.length ? rest.join("; ") : T("admin.fix_fields");
        formError.hidden = false;
      },
    };
  }

  // A 409 from a stale copy: say so plainly and offer to reload (nothing was saved).
  function staleBanner(container, resp, reload) {
    const old = container.querySelector(".stale");
    if (old) old.remove();
    const banner = el("div", { class: "stale", role: "alert", "data-testid": "stale-banner" },
      el("span", { text: resp.data.message || T("err.stale") }),
      el("button", { type: "button", "data-testid": "stale-reload", text: T("admin.reload"), onclick: reload }));
    container.prepend(banner);
    banner.scrollIntoView({ block: "nearest" });
  }

  function isStale(resp) {
    return resp.status === 409 && (resp.data.errors || []).some((e) => e.type === "stale");
  }

  // Submit handler: on success `done(data)`, on a stale copy the banner, otherwise the field errors.
  async function submit(form, box, reload, call, done) {
    form.clear();
    const resp = await call();
    if (resp.ok) { await done(resp.data); return true; }
    if (isStale(resp)) staleBanner(box, resp, reload);
    else form.showErrors(resp);
    return false;
  }

  // ---------- editable tables (contacts, zones) ----------

  function makeRows(cols, rows, testid) {
    const body = el("tbody");
    const error = el("p", { class: "form-error", "data-testid": testid + "-error", hidden: true });
    function addRow(r) {
      const tr = el("tr", { "data-testid": testid + "-row" });
      for (const c of cols) {
        const input = c.options
          ? el("select", { "data-col": c.name }, c.options.map(([v, k]) => el("option", { value: v, text: T(k) })))
          : el("input", { "data-col": c.name, value: (r && r[c.name]) ?? "", "aria-label": T(c.label) });
        if (c.options) input.value = (r && r[c.name]) || c.options[0][0];
        tr.append(el("td", {}, input));
      }
      tr.append(el("td", {}, el("button", { type: "button", class: "small", text: T("admin.remove"),
                                            onclick: () => tr.remove() })));
      body.append(tr);
    }
    for (const r of rows) addRow(r);
    const table = el("table", { class: "list", "data-testid": testid },
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { text: T(c.label) })), el("th"))), body);
    return {
      node: el("div", {}, table, error), addRow,
      values() {
        return [...body.querySelectorAll("tr")].map((tr) => Object.fromEntries(
          [...tr.querySelectorAll("[data-col]")].map((i) => [i.dataset.col, i.value.trim()])));
      },
      showErrors(resp, key) {
        for (const td of body.querySelectorAll("td.invalid")) td.classList.remove("invalid");
        const msgs = [];
        for (const e of (resp.data.errors || [])) {
          const m = new RegExp("^" + key + "\\.(\\d+)\\.(\\w+)$").exec(e.field || "");
          if (m) {
            const tr = body.querySelectorAll("tr")[+m[1]];
            const input = tr && tr.querySelector(`[data-col="${m[2]}"]`);
            if (input) { input.parentElement.classList.add("invalid"); input.title = e.message; }
            msgs.push(`${+m[1] + 1}: ${T(cols.find((c) => c.name === m[2])?.label || m[2])} — ${e.message}`);
          } else msgs.push(e.message || e.msg);
        }
        if (!msgs.length) msgs.push(resp.data.detail || T("action.failed"));
        error.textContent = msgs.join("; ");
        error.hidden = false;
      },
      clear() { error.hidden = true; for (const td of body.querySelectorAll("td.invalid")) td.classList.remove("invalid"); },
    };
  }

  // ---------- service (out of guard until a time, with a reason) ----------

  function serviceBox(row, path, reload, testid) {
    const box = el("section", { class: "box", "data-testid": testid });
    box.append(el("h2", { text: T("object.service") }));
    const inService = row.service_until && new Date(row.service_until) > new Date();
    box.append(el("p", { "data-testid": testid + "-state" },
      inService ? el("span", { class: "badge service", text: T("service.active", { until: fmtTime(row.service_until),
                                                                                    reason: row.service_reason }) })
                : el("span", { class: "badge on", text: T("service.none") })));
    const form = makeForm([
      { name: "until", label: "service.until", type: "datetime-local" },
      { name: "reason", label: "service.reason" },
    ], { until: inService ? isoToPostTime(row.service_until) : "", reason: row.service_reason || "" }, testid);
    box.append(form.node, el("p", { class: "hint", text: T("service.explain") }));
    const start = el("button", { type: "button", class: "primary", "data-testid": testid + "-start", text: T("service.start"),
      onclick: () => {
        const v = form.values();
        submit(form, box, reload, () => api("PUT", path, { version: row.version, until: postTimeToIso(v.until) || v.until || null,
                                                           reason: v.reason }),
               async () => { toast(T("admin.saved")); await reload(); });
      } });
    const end = el("button", { type: "button", "data-testid": testid + "-end", text: T("service.end"), disabled: !inService,
      onclick: () => submit(form, box, reload, () => api("PUT", path, { version: row.version, until: null, reason: "" }),
                            async () => { toast(T("admin.saved")); await reload(); }) });
    box.append(el("div", { class: "buttons" }, start, end));
    return box;
  }

  // ---------- users ----------

  const USER_FIELDS = [
    { name: "full_name", label: "user.full_name" },
    { name: "role", label: "user.role", type: "select", options: ROLES.map((r) => [r, "role." + r]) },
    { name: "lang", label: "user.lang", type: "select", options: LANGS.map((l) => [l, "lang." + l]) },
  ];

  async function renderUsers(main) {
    const reload = () => renderUsers(main);
    const resp = await api("GET", "/api/users");
    if (!resp.ok) return;
    const secret = el("div", { "data-testid": "user-secret" });
    const createBox = el("section", { class: "box" }, el("h2", { text: T("admin.new") }));
    const form = makeForm([{ name: "username", label: "user.username", required: true }, ...USER_FIELDS,
                           { name: "password", label: "user.password", type: "password", hint: "user.password.hint" }],
                          { role: "operator", lang: "ru" }, "user-new");
    createBox.append(form.node, el("div", { class: "buttons" }, el("button", {
      type: "button", class: "primary", "data-testid": "user-create", text: T("admin.new"),
      onclick: () => {
        const v = form.values();
        if (!v.password) delete v.password;
        submit(form, createBox, reload, () => api("POST", "/api/users", v), async (u) => {
          S.secret = u.password ? u : null;  // shown once, on the list drawn next
          await renderUsers(main);
          toast(T("admin.saved"));
        });
      } })));
    const editBox = el("section", { class: "box", hidden: true, "data-testid": "user-edit" });
    const rows = resp.data.map((u) => el("tr", { class: u.active ? "" : "off", "data-testid": "user-row", "data-username": u.username },
      el("td", { class: "mono", text: u.username }), el("td", { text: u.full_name }), el("td", { text: T("role." + u.role) }),
      el("td", { text: u.lang }),
      el("td", {}, el("span", { class: "badge " + (u.active ? "on" : "off"), text: u.active ? T("admin.yes") : T("user.disabled") })),
      el("td", {}, el("div", { class: "buttons" },
        el("button", { type: "button", class: "small", "data-testid": "user-edit-button", text: T("admin.edit"),
                       onclick: () => editUser(u) }),
        el("button", { type: "button", class: "small", "data-testid": "user-password-button", text: T("user.reset_password"),
          onclick: async () => {
            const r = await api("POST", `/api/users/${u.id}/password`, { version: u.version });
            if (r.ok) { S.secret = r.data; await renderUsers(main); } else if (isStale(r)) staleBanner(main, r, reload);
            else toast(r.data.errors ? r.data.errors[0].message : r.data.detail);
          } }),
        el("button", { type: "button", class: "small" + (u.active ? " danger" : ""), "data-testid": "user-active-button",
                       text: u.active ? T("user.disable") : T("user.enable"),
          onclick: async () => {
            const r = await api("PATCH", `/api/users/${u.id}`, { version: u.version, active: !u.active });
            if (r.ok) { toast(T("admin.saved")); await renderUsers(main); } else if (isStale(r)) staleBanner(main, r, reload);
            else toast(r.data.errors ? r.data.errors[0].message : r.data.detail);
          } })))));
    const table = el("table", { class: "list responsive", "data-testid": "users-table" },
      el("thead", {}, el("tr", {}, ["user.username", "user.full_name", "user.role", "user.lang", "user.active", "col.actions"]
        .map((k) => el("th", { text: T(k) })))), el("tbody", {}, rows));

    function showSecret(u) {
      secret.replaceChildren(el("p", { class: "secret", "data-testid": "new-password" },
        u.username + " — " + T("user.new_password", { password: u.password })));
    }

    function editUser(u) {
      editBox.hidden = false;
      editBox.replaceChildren(el("h2", { text: T("admin.edit") + ": " + u.username }));
      const f = makeForm(USER_FIELDS, u, "user-edit");
      editBox.append(f.node, el("div", { class: "buttons" },
        el("button", { type: "button", class: "primary", "data-testid": "user-save", text: T("action.save"),
          onclick: () => submit(f, editBox, reload, () => api("PATCH", `/api/users/${u.id}`, { version: u.version, ...f.values() }),
                                async () => { toast(T("admin.saved")); await renderUsers(main); }) }),
        el("button", { type: "button", text: T("action.cancel"), onclick: () => { editBox.hidden = true; } })));
      editBox.scrollIntoView({ block: "nearest" });
    }

    if (S.secret) { showSecret(S.secret); S.secret = null; }
    main.replaceChildren(el("h1", { text: T("admin.nav.users") }), secret, editBox, createBox,
                         el("section", { class: "box" }, table));
  }

  // ---------- objects ----------

  const OBJECT_FIELDS = [
    { name: "name", label: "object.name", required: true, wide: true },
    { name: "address", label: "object.address", wide: true },
    { name: "latitude", label: "object.latitude", type: "number", step: "any" },
    { name: "longitude", label: "object.longitude", type: "number", step: "any" },
    { name: "terror_vulnerable", label: "object.terror_vulnerable", type: "checkbox", wide: true },
    { name: "instructions", label: "object.instructions", type: "textarea", wide: true },
  ];

  const ACCOUNT_FIELDS = [
    { name: "number", label: "account.number", required: true },
    { name: "prefix", label: "account.prefix" },
    { name: "protocol", label: "account.protocol" },
    { name: "supervision_interval", label: "account.supervision_interval", type: "number", step: "1" },
    { name: "key_format", label: "account.key_format", type: "select", options: [["hex", "hex"], ["ascii", "ascii"]] },
    { name: "aes_key", label: "account.aes_key", type: "password" },
  ];

  function serviceBadge(row) {
    return row.service_until && new Date(row.service_until) > new Date()
      ? el("span", { class: "badge service", title: row.service_reason, text: T("service.until") + " " + fmtTime(row.service_until) })
      : null;
  }

  async function renderObjects(main, arg) {
    if (arg) return renderObject(main, Number(arg));
    const resp = await api("GET", "/api/objects");
    if (!resp.ok) return;
    const search = el("input", { type: "search", "data-testid": "object-search", placeholder: T("admin.search") });
    const tbody = el("tbody");
    function fill() {
      const q = search.value.trim().toLowerCase();
      tbody.replaceChildren(...resp.data
        .filter((o) => !q || (o.name + " " + o.address + " " + (o.accounts || []).join(" ")).toLowerCase().includes(q))
        .map((o) => el("tr", { "data-testid": "object-row" },
          el("td", {}, el("a", { href: "#objects/" + o.id, text: o.name })), el("td", { text: o.address }),
          el("td", { class: "mono", text: (o.accounts || []).join(", ") }),
          el("td", {}, o.terror_vulnerable ? el("span", { class: "badge", text: T("terror_vulnerable.short") }) : null,
                   serviceBadge(o)))));
    }
    search.addEventListener("input", fill);
    fill();
    const createBox = el("section", { class: "box", hidden: true, "data-testid": "object-new" }, el("h2", { text: T("admin.new") }));
    const form = makeForm(OBJECT_FIELDS, {}, "object-new");
    createBox.append(form.node, el("div", { class: "buttons" }, el("button", {
      type: "button", class: "primary", "data-testid": "object-create", text: T("action.save"),
      onclick: () => submit(form, createBox, () => renderObjects(main), () => api("POST", "/api/objects", form.values()),
                            async (o) => { toast(T("admin.saved")); location.hash = "#objects/" + o.id; }) })));
    main.replaceChildren(el("h1", { text: T("admin.nav.objects") }),
      el("div", { class: "toolbar" }, search, el("button", { type: "button", class: "primary", "data-testid": "object-new-button",
        text: T("admin.new"), onclick: () => { createBox.hidden = false; form.inputs.name.focus(); } })),
      createBox,
      el("section", { class: "box" }, el("table", { class: "list responsive", "data-testid": "objects-table" },
        el("thead", {}, el("tr", {}, ["object.name", "object.address", "object.accounts", ""].map((k) => el("th", { text: k ? T(k) : "" })))),
        tbody)));
  }

  async function renderObject(main, id) {
    const reload = () => renderObject(main, id);
    const [card, sched] = await Promise.all([api("GET", `/api/objects/${id}`), api("GET", `/api/objects/${id}/schedule`)]);
    if (!card.ok) { main.replaceChildren(el("p", { class: "form-error", text: card.data.detail || "" })); return; }
    const o = card.data;
    const head = el("div", { class: "toolbar" }, el("a", { class: "button", href: "#objects", text: "← " + T("admin.back") }),
      el("h1", { "data-testid": "object-title", text: o.name }),
      el("small", { class: "muted", "data-testid": "object-version", text: T("object.version", { v: o.version }) }));

    // details
    const details = el("section", { class: "box", "data-testid": "object-details" }, el("h2", { text: T("object.details") }));
    const form = makeForm(OBJECT_FIELDS, o, "object");
    details.append(form.node, el("div", { class: "buttons" }, el("button", {
      type: "button", class: "primary", "data-testid": "object-save", text: T("action.save"),
      onclick: () => submit(form, details, reload, () => api("PATCH", `/api/objects/${id}`, { version: o.version, ...form.values() }),
                            async () => { toast(T("admin.saved")); await reload(); }) })));

    // contacts and keyholders, in calling order
    const contactsBox = el("section", { class: "box", "data-testid": "object-contacts" }, el("h2", { text: T("object.contacts") }));
    const contacts = makeRows([{ name: "name", label: "contact.name" }, { name: "phone", label: "contact.phone" },
                               { name: "role", label: "contact.role", options: [["keyholder", "contact.keyholder"], ["contact", "contact.contact"]] }],
                              o.contacts, "contacts");
    contactsBox.append(contacts.node, el("div", { class: "buttons" },
      el("button", { type: "button", "data-testid": "contact-add", text: T("admin.add_row"), onclick: () => contacts.addRow({}) }),
      el("button", { type: "button", class: "primary", "data-testid": "contacts-save", text: T("action.save"),
        onclick: async () => {
          contacts.clear();
          const r = await api("PUT", `/api/objects/${id}/contacts`, { version: o.version, contacts: contacts.values() });
          if (r.ok) { toast(T("admin.saved")); await reload(); } else if (isStale(r)) staleBanner(contactsBox, r, reload);
          else contacts.showErrors(r, "contacts");
        } })));

    // accounts of this object, and a new one
    const accBox = el("section", { class: "box", "data-testid": "object-accounts" }, el("h2", { text: T("object.accounts") }));
    accBox.append(el("table", { class: "list" }, el("thead", {}, el("tr", {},
      ["account.number", "account.prefix", "account.supervision_interval", "account.aes_key", ""].map((k) => el("th", { text: k ? T(k) : "" })))),
      el("tbody", {}, o.accounts.map((a) => el("tr", { "data-testid": "object-account-row" },
        el("td", {}, el("a", { href: "#accounts/" + a.id, class: "mono", text: a.number })), el("td", { class: "mono", text: a.prefix }),
        el("td", { text: a.supervision_interval ?? "—" }), el("td", { text: a.encrypted ? T("account.encrypted") : "—" }),
        el("td", {}, serviceBadge(a)))))));
    const accForm = makeForm([...ACCOUNT_FIELDS, { name: "zones", label: "account.zones", type: "textarea", wide: true,
                                                   hint: "err.zone_item" }], { protocol: "dc09", key_format: "hex" }, "account-new");
    accBox.append(el("h3", { text: T("account.add") }), accForm.node, el("div", { class: "buttons" }, el("button", {
      type: "button", class: "primary", "data-testid": "account-create", text: T("account.add"),
      onclick: () => {
        const v = accForm.values();
        if (!v.aes_key) v.aes_key = null;
        v.zones = v.zones.split("\n").map((s) => s.trim()).filter(Boolean).map((s) => {
          const i = s.indexOf("=");
          return i < 0 ? { number: s, name: "" } : { number: s.slice(0, i).trim(), name: s.slice(i + 1).trim() };
        });
        v.object_id = id;
        submit(accForm, accBox, reload, () => api("POST", "/api/accounts", v), async () => { toast(T("admin.saved")); await reload(); });
      } })));

    // the weekly schedule
    const schedBox = el("section", { class: "box", "data-testid": "object-schedule" }, el("h2", { text: T("object.schedule") }));
    const days = new Map((sched.data || []).map((d) => [d.weekday, d]));
    const dayRows = [0, 1, 2, 3, 4, 5, 6].map((wd) => {
      const d = days.get(wd);
      const on = el("input", { type: "checkbox", checked: !!d, "aria-label": T("schedule.day" + wd), "data-testid": "schedule-on-" + wd });
      const from = el("input", { type: "time", value: d ? d.open_from : "09:00", "data-testid": "schedule-from-" + wd });
      const by = el("input", { type: "time", value: d ? d.arm_by : "19:00", "data-testid": "schedule-by-" + wd });
      return { wd, on, from, by, tr: el("tr", {}, el("td", {}, el("label", { class: "field check" }, on, el("span", { text: T("schedule.day" + wd) }))),
                                         el("td", {}, from), el("td", {}, by)) };
    });
    const schedError = el("p", { class: "form-error", hidden: true, "data-testid": "schedule-error" });
    schedBox.append(el("table", { class: "list" }, el("thead", {}, el("tr", {},
      ["schedule.weekday", "schedule.open_from", "schedule.arm_by"].map((k) => el("th", { text: T(k) })))),
      el("tbody", {}, dayRows.map((r) => r.tr))), schedError,
      el("div", { class: "buttons" }, el("button", { type: "button", class: "primary", "data-testid": "schedule-save", text: T("action.save"),
        onclick: async () => {
          schedError.hidden = true;
          const body = { days: dayRows.filter((r) => r.on.checked).map((r) => ({ weekday: r.wd, open_from: r.from.value, arm_by: r.by.value })) };
          const r = await api("PUT", `/api/objects/${id}/schedule`, body);
          if (r.ok) { toast(T("admin.saved")); await reload(); return; }
          schedError.textContent = (r.data.errors || []).map((e) => e.message).join("; ") || r.data.detail;
          schedError.hidden = false;
        } })));

    main.replaceChildren(head, details, serviceBox(o, `/api/objects/${id}/service`, reload, "object-service"),
                         contactsBox, accBox, schedBox);
  }

  // ---------- accounts ----------

  async function renderAccounts(main, arg) {
    if (arg) return renderAccount(main, Number(arg));
    const [accs, objs] = await Promise.all([api("GET", "/api/accounts"), api("GET", "/api/objects")]);
    if (!accs.ok) return;
    const names = new Map((objs.data || []).map((o) => [o.id, o.name]));
    main.replaceChildren(el("h1", { text: T("admin.nav.accounts") }), el("section", { class: "box" },
      el("table", { class: "list responsive", "data-testid": "accounts-table" }, el("thead", {}, el("tr", {},
        ["account.number", "account.prefix", "account.object", "account.supervision_interval", "account.aes_key", ""].map((k) => el("th", { text: k ? T(k) : "" })))),
        el("tbody", {}, accs.data.map((a) => el("tr", { "data-testid": "account-row" },
          el("td", {}, el("a", { href: "#accounts/" + a.id, class: "mono", text: a.number })), el("td", { class: "mono", text: a.prefix }),
          el("td", {}, a.object_id ? el("a", { href: "#objects/" + a.object_id, text: names.get(a.object_id) || "#" + a.object_id }) : "—"),
          el("td", { text: a.supervision_interval ?? "—" }), el("td", { text: a.encrypted ? T("account.encrypted") : "—" }),
          el("td", {}, serviceBadge(a))))))));
  }

  async function renderAccount(main, id) {
    const reload = () => renderAccount(main, id);
    const [acc, objs] = await Promise.all([api("GET", `/api/accounts/${id}`), api("GET", "/api/objects")]);
    if (!acc.ok) { main.replaceChildren(el("p", { class: "form-error", text: acc.data.detail || "" })); return; }
    const a = acc.data;
    const options = [["", "card.none"], ...(objs.data || []).map((o) => [String(o.id), o.name])];
    const box = el("section", { class: "box", "data-testid": "account-details" });
    const form = makeForm([...ACCOUNT_FIELDS.map((d) => d.name === "aes_key" ? { ...d, hint: "account.aes_key.hint" } : d),
                           { name: "remove_key", label: "account.remove_key", type: "checkbox" },
                           { name: "object_id", label: "account.object", type: "select", options }],
                          { ...a, aes_key: "", object_id: a.object_id ? String(a.object_id) : "" }, "account");
    box.append(form.node, el("div", { class: "buttons" }, el("button", {
      type: "button", class: "primary", "data-testid": "account-save", text: T("action.save"),
      onclick: () => {
        const v = form.values();
        const body = { version: a.version, number: v.number, prefix: v.prefix, protocol: v.protocol, key_format: v.key_format,
                       supervision_interval: v.supervision_interval, object_id: v.object_id ? Number(v.object_id) : null };
        if (v.remove_key) body.aes_key = null;
        else if (v.aes_key) body.aes_key = v.aes_key;
        submit(form, box, reload, () => api("PATCH", `/api/accounts/${id}`, body), async () => { toast(T("admin.saved")); await reload(); });
      } })));
    const zonesBox = el("section", { class: "box", "data-testid": "account-zones" }, el("h2", { text: T("account.zones") }));
    const zones = makeRows([{ name: "number", label: "zone.number" }, { name: "name", label: "zone.name" }], a.zones, "zones");
    zonesBox.append(zones.node, el("div", { class: "buttons" },
      el("button", { type: "button", "data-testid": "zone-add", text: T("admin.add_row"), onclick: () => zones.addRow({}) }),
      el("button", { type: "button", class: "primary", "data-testid": "zones-save", text: T("action.save"),
        onclick: async () => {
          zones.clear();
          const r = await api("PUT", `/api/accounts/${id}/zones`, { version: a.version, zones: zones.values() });
          if (r.ok) { toast(T("admin.saved")); await reload(); } else if (isStale(r)) staleBanner(zonesBox, r, reload);
          else zones.showErrors(r, "zones");
        } })));
    main.replaceChildren(el("div", { class: "toolbar" },
        el("a", { class: "button", href: a.object_id ? "#objects/" + a.object_id : "#accounts", text: "← " + T("admin.back") }),
        el("h1", { "data-testid": "account-title", text: T("col.account") + " " + (a.prefix ? a.prefix + "#" : "") + a.number }),
        el("small", { class: "muted", text: T("object.version", { v: a.version }) })),
      box, zonesBox, serviceBox(a, `/api/accounts/${id}/service`, reload, "account-service"));
  }

  // ---------- import ----------

  function renderImport(main) {
    const file = el("input", { type: "file", accept: ".csv,text/csv", "data-testid": "import-file" });
    const result = el("div", { "data-testid": "import-result" });
    const button = el("button", { type: "button", class: "primary", "data-testid": "import-submit", text: T("import.submit"),
      onclick: async () => {
        if (!file.files.length) { result.replaceChildren(el("p", { class: "form-error", text: T("err.missing") })); return; }
        const fd = new FormData();
        fd.append("file", file.files[0]);
        button.disabled = true;
        result.replaceChildren(el("p", { class: "muted", text: T("admin.loading") }));
        const r = await api("POST", "/api/import/objects", fd);
        button.disabled = false;
        if (r.ok) {
          result.replaceChildren(el("p", { class: "secret", "data-testid": "import-done", text: T("import.done", { n: r.data.imported }) }));
          return;
        }
        const problems = r.data.problems || [];
        result.replaceChildren(
          el("p", { class: "form-error", "data-testid": "import-failed",
                    text: T("import.failed", { n: problems.length + (r.data.more_problems || 0) }) }),
          el("table", { class: "list problems", "data-testid": "import-problems" },
            el("thead", {}, el("tr", {}, ["import.line", "import.column", "import.problem"].map((k) => el("th", { text: T(k) })))),
            el("tbody", {}, problems.map((p) => el("tr", { "data-testid": "import-problem" },
              el("td", { text: p.line || "" }), el("td", { text: p.column }), el("td", { text: p.message }))))));
      } });
    main.replaceChildren(el("h1", { text: T("import.title") }),
      el("section", { class: "box" }, el("p", { class: "hint", text: T("import.help") }),
        el("label", { class: "field" }, el("span", { text: T("import.file") }), file), el("div", { class: "buttons" }, button)),
      result);
  }

  // ---------- the frame: navigation, language, user ----------

  function register(section) {
    S.sections.push(section);
    S.sections.sort((a, b) => (a.order ?? 100) - (b.order ?? 100));
    if (S.started) { renderNav(); route(); }
  }

  function renderNav() {
    const nav = $("admin-nav");
    nav.replaceChildren(...S.sections.map((s) => el("a", {
      href: "#" + s.id, "data-testid": "nav-" + s.id, "aria-current": S.current === s.id ? "page" : null, text: T(s.label) })));
  }

  async function route() {
    const [id, ...rest] = location.hash.replace(/^#/, "").split("/");
    const section = S.sections.find((s) => s.id === id) || S.sections[0];
    if (!section) return;
    S.current = section.id;
    renderNav();
    const main = $("admin-main");
    main.replaceChildren(el("p", { class: "muted", text: T("admin.loading") }));
    try {
      await section.render(main, rest.join("/"), window.KuzetAdmin);
    } catch (e) {
      main.replaceChildren(el("p", { class: "form-error", text: String(e && e.message || e) }));
    }
  }

  function applyStaticText() {
    document.documentElement.lang = S.lang;
    document.title = "Kuzet · " + T("admin.title");
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = T(e.dataset.i18n);
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === S.lang));
    if (S.me) {
      $("user-name").textContent = S.me.full_name || S.me.username;
      $("user-role").textContent = T("role." + S.me.role) + " · " + S.me.username;
    }
  }

  window.KuzetAdmin = { register, api, el, T, toast, makeForm, makeRows, submit, staleBanner, isStale, serviceBox,
                        fmtTime, postTimeToIso, get me() { return S.me; }, get lang() { return S.lang; } };

  register({ id: "objects", label: "admin.nav.objects", order: 10, render: renderObjects });
  register({ id: "accounts", label: "admin.nav.accounts", order: 20, render: renderAccounts });
  register({ id: "users", label: "admin.nav.users", order: 30, render: renderUsers });
  register({ id: "import", label: "admin.nav.import", order: 40, render: renderImport });

  document.addEventListener("DOMContentLoaded", async () => {
    const r = await api("GET", "/api/me");
    if (!r.ok) return;
    S.me = r.data;
    S.tz = r.data.timezone || S.tz;
    const saved = localStorage.getItem("kuzet.lang." + S.me.username);
    S.lang = LANGS.includes(saved) ? saved : (LANGS.includes(S.me.lang) ? S.me.lang : "kk");
    for (const b of document.querySelectorAll("[data-lang]")) {
      b.addEventListener("click", () => {
        S.lang = b.dataset.lang;
        localStorage.setItem("kuzet.lang." + S.me.username, S.lang);
        localStorage.setItem("kuzet.lang", S.lang);
        applyStaticText();
        route();
      });
    }
    $("logout").addEventListener("click", async () => {
      await api("POST", "/api/logout", undefined, { noRedirect: true });
      location.replace("/login");
    });
    applyStaticText();
    S.started = true;
    window.addEventListener("hashchange", route);
    route();
  });
})();

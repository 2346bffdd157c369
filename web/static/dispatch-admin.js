"use strict";
// The admin's page for response groups, vehicles, staff, duty shifts and dispatch settings.
// One generic list + form, driven by the KINDS table below; the API's errors are shown next to the
// field they name (422 `errors[].loc`, or a "field: message" detail), others above the buttons.
(() => {
  const K = window.KuzetPage;
  const { T, el } = K;
  const $ = (id) => document.getElementById(id);

  const ROUTES = {
    groups: "/api/groups", vehicles: "/api/vehicles", staff: "/api/staff", shifts: "/api/shifts",
    settings: "/api/dispatch/settings", users: "/api/users",
  };

  const A = {
    kind: "groups",
    showAll: false,
    items: [],
    ref: { groups: [], vehicles: [], staff: [], users: null },
    editing: null, // the item being edited, {} for a new one, null when the form is closed
  };

  const byId = (list, id) => list.find((x) => x.id === id);
  const groupName = (id) => { const g = byId(A.ref.groups, id); return g ? g.name : (id ? `#${id}` : "—"); };
  const plate = (id) => { const v = byId(A.ref.vehicles, id); return v ? v.plate : (id ? `#${id}` : "—"); };
  const groupOptions = () => A.ref.groups.filter((g) => g.active !== false).map((g) => [g.id, g.name]);
  const vehicleOptions = () => A.ref.vehicles.filter((v) => v.active !== false).map((v) => [v.id, `${v.plate}${v.model ? " · " + v.model : ""}`]);
  const activeMark = (x) => (x.active === false ? el("span", { class: "badge" }, T("dadmin.inactive")) : "");

  function shiftState(s) {
    if (s.cancelled_at) return "cancelled";
    const now = Date.now();
    if (Date.parse(s.ends_at) <= now) return "past";
    if (Date.parse(s.starts_at) > now) return "planned";
    return "current";
  }

  const KINDS = {
    groups: {
      title: "dadmin.groups", route: ROUTES.groups, inactive: true,
      columns: [
        ["dadmin.f.name", (g) => [el("b", {}, g.name), " ", activeMark(g)]],
        ["dadmin.f.call_sign", (g) => g.call_sign || ""],
        ["dadmin.f.order", (g) => [g.order_number || "", g.order_date ? ` · ${g.order_date}` : ""]],
        ["dadmin.f.base_address", (g) => g.base_address || ""],
        ["col.state", (g) => g.state ? el("span", { class: `gstate gs-${g.state}` }, T("groups.state." + g.state)) : ""],
      ],
      fields: () => [
        { name: "name", label: "dadmin.f.name", required: true, max: 200 },
        { name: "call_sign", label: "dadmin.f.call_sign", max: 100 },
        { name: "order_number", label: "dadmin.f.order_number", max: 100 },
        { name: "order_date", label: "dadmin.f.order_date", type: "date" },
        { name: "base_address", label: "dadmin.f.base_address", max: 500 },
        { name: "latitude", label: "dadmin.f.latitude", type: "number", step: "any", min: -90, max: 90 },
        { name: "longitude", label: "dadmin.f.longitude", type: "number", step: "any", min: -180, max: 180 },
        { name: "active", label: "dadmin.f.active", type: "checkbox", editOnly: true },
      ],
    },
    vehicles: {
      title: "dadmin.vehicles", route: ROUTES.vehicles, inactive: true,
      columns: [
        ["dadmin.f.plate", (v) => [el("b", { class: "mono" }, v.plate), " ", activeMark(v)]],
        ["dadmin.f.model", (v) => v.model || ""],
        ["dadmin.f.registration_certificate", (v) => el("span", { class: "mono" }, v.registration_certificate || "—")],
        ["dadmin.f.ownership", (v) => T("dadmin.own." + v.ownership)],
        ["dadmin.f.group", (v) => groupName(v.group_id)],
      ],
      fields: () => [
        { name: "plate", label: "dadmin.f.plate", required: true, max: 20 },
        { name: "model", label: "dadmin.f.model", max: 200 },
        { name: "registration_certificate", label: "dadmin.f.registration_certificate", max: 100 },
        { name: "ownership", label: "dadmin.f.ownership", type: "select", options: () => [["owned", T("dadmin.own.owned")], ["leased", T("dadmin.own.leased")]], initial: "owned" },
        { name: "group_id", label: "dadmin.f.group", type: "select", optional: true, number: true, options: groupOptions },
        { name: "active", label: "dadmin.f.active", type: "checkbox", editOnly: true },
      ],
    },
    staff: {
      title: "dadmin.staff", route: ROUTES.staff, inactive: true,
      columns: [
        ["dadmin.f.full_name", (s) => [el("b", {}, s.full_name), " ", activeMark(s)]],
        ["dadmin.f.role", (s) => T("dadmin.role." + s.role)],
        ["dadmin.f.group", (s) => s.group_name || groupName(s.group_id)],
        ["dadmin.f.user", (s) => s.username ? el("span", { class: "mono" }, s.username) : "—"],
        ["dadmin.f.phone", (s) => s.phone ? el("span", { class: "mono" }, s.phone) : ""],
      ],
      fields: () => [
        { name: "full_name", label: "dadmin.f.full_name", required: true, max: 200 },
        { name: "role", label: "dadmin.f.role", type: "select", options: () => ["senior", "driver", "guard"].map((r) => [r, T("dadmin.role." + r)]), initial: "guard" },
        { name: "group_id", label: "dadmin.f.group", type: "select", optional: true, number: true, options: groupOptions },
        A.ref.users
          ? { name: "user_id", label: "dadmin.f.user", type: "select", optional: true, number: true, hint: "dadmin.hint.user",
              options: () => A.ref.users.map((u) => [u.id, `${u.username}${u.full_name ? " · " + u.full_name : ""}`]) }
          : { name: "user_id", label: "dadmin.f.user_id", type: "number", step: 1, min: 1, hint: "dadmin.hint.user" },
        { name: "phone", label: "dadmin.f.phone", type: "tel", max: 50 },
        { name: "active", label: "dadmin.f.active", type: "checkbox", editOnly: true },
      ],
    },
    shifts: {
      title: "dadmin.shifts", route: ROUTES.shifts, inactive: true,
      // from a day ago on (current and planned); "show inactive": every shift, cancelled ones too
      query: (all) => (all ? "?cancelled=true" : `?from=${encodeURIComponent(new Date(Date.now() - 86400000).toISOString())}`),
      columns: [
        ["dadmin.f.group", (s) => el("b", {}, s.group_name || groupName(s.group_id))],
        ["dadmin.f.starts_at", (s) => K.fmtDateTime(s.starts_at)],
        ["dadmin.f.ends_at", (s) => K.fmtDateTime(s.ends_at)],
        ["dadmin.f.vehicle", (s) => s.plate || (s.vehicle_id ? plate(s.vehicle_id) : el("span", { class: "warn" }, T("groups.no_vehicle")))],
        ["dadmin.f.staff", (s) => (s.staff || []).map((x) => x.full_name).join(", ") ||
          (s.staff_ids || []).map((id) => (byId(A.ref.staff, id) || {}).full_name || `#${id}`).join(", ")],
        ["col.state", (s) => el("span", { class: `shift-state ss-${shiftState(s)}`, "data-testid": "shift-state" }, T("dadmin.shift." + shiftState(s)))],
      ],
      fields: () => [
        { name: "group_id", label: "dadmin.f.group", type: "select", required: true, number: true, options: groupOptions, createOnly: true },
        { name: "vehicle_id", label: "dadmin.f.vehicle", type: "select", optional: true, number: true, options: vehicleOptions, hint: "dadmin.hint.vehicle" },
        { name: "starts_at", label: "dadmin.f.starts_at", type: "datetime", required: true },
        { name: "ends_at", label: "dadmin.f.ends_at", type: "datetime", required: true },
        { name: "staff_ids", label: "dadmin.f.staff", type: "multi",
          options: () => A.ref.staff.filter((s) => s.active !== false).map((s) => [s.id, `${s.full_name} · ${T("dadmin.role." + s.role)}${s.group_name ? " · " + s.group_name : ""}`]) },
        { name: "note", label: "dadmin.f.note", type: "textarea", max: 1000 },
      ],
      rowActions: (s) => (s.cancelled_at || shiftState(s) === "past" ? [] : [
        el("button", { type: "button", class: "small danger", "data-testid": "shift-cancel", onclick: (ev) => { ev.stopPropagation(); cancelShift(s); } }, T("dadmin.shift.cancel")),
      ]),
    },
    settings: {
      title: "dadmin.settings", route: ROUTES.settings, single: true,
      fields: () => [
        { name: "accept_timeout", label: "dadmin.f.accept_timeout", type: "number", step: 1, min: 1, required: true, unit: "dadmin.unit.s" },
        { name: "response_time", label: "dadmin.f.response_time", type: "number", step: 1, min: 1, required: true, unit: "dadmin.unit.s" },
        { name: "average_speed_kmh", label: "dadmin.f.average_speed_kmh", type: "number", step: "any", min: 1, required: true, unit: "dadmin.unit.kmh" },
        { name: "position_fresh", label: "dadmin.f.position_fresh", type: "number", step: 1, min: 1, required: true, unit: "dadmin.unit.s" },
        { name: "returning_time", label: "dadmin.f.returning_time", type: "number", step: 1, min: 0, required: true, unit: "dadmin.unit.s" },
        { name: "min_groups_on_duty", label: "dadmin.f.min_groups_on_duty", type: "number", step: 1, min: 0, required: true },
      ],
    },
  };

  let toastTimer = null;
  function toast(text, ok) {
    const t = $("toast");
    t.textContent = text;
    t.classList.toggle("ok", !!ok);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // ---------- loading ----------

  async function loadRefs() {
    const [groups, vehicles, staff] = await Promise.all([
      K.get(ROUTES.groups + "?all=true").catch(() => []),
      K.get(ROUTES.vehicles + "?all=true").catch(() => []),
      K.get(ROUTES.staff + "?all=true").catch(() => []),
    ]);
    A.ref.groups = groups;
    A.ref.vehicles = vehicles;
    A.ref.staff = staff;
    if (A.ref.users === null) {
      try {
        const users = await K.get(ROUTES.users + "?role=crew");
        A.ref.users = (Array.isArray(users) ? users : users.users || []).filter((u) => u.role === undefined || u.role === "crew");
      } catch (_e) { A.ref.users = false; } // no user list here: the id is typed in
    }
  }

  async function load() {
    const spec = KINDS[A.kind];
    $("show-all-wrap").hidden = !spec.inactive;
    $("new-item").hidden = !!spec.single;
    if (spec.single) {
      A.items = [];
      renderList();
      try { openForm(await K.get(spec.route)); } catch (e) { toast(T("action.failed") + ": " + e.message); }
      return;
    }
    try {
      await loadRefs();
      A.items = await K.get(spec.route + (spec.query ? spec.query(A.showAll) : (A.showAll ? "?all=true" : "")));
      if (A.kind === "groups") A.items = A.showAll ? A.ref.groups : A.items;
    } catch (e) {
      A.items = [];
      toast(T("action.failed") + ": " + e.message);
    }
    renderList();
  }

  // ---------- the list ----------

  function renderTabs() {
    $("tabs").replaceChildren(...Object.entries(KINDS).map(([k, spec]) => el("button", {
      type: "button", role: "tab", "aria-selected": String(k === A.kind), "data-testid": `tab-${k}`,
      onclick: () => { A.kind = k; A.editing = null; closeForm(); renderTabs(); load(); },
    }, T(spec.title))));
  }

  function renderList() {
    const spec = KINDS[A.kind];
    $("list-title").textContent = T(spec.title);
    $("list-count").textContent = spec.single ? "" : String(A.items.length);
    const head = $("list-head");
    const rows = $("list-rows");
    if (spec.single) {
      head.replaceChildren();
      rows.replaceChildren();
      $("list-empty").hidden = true;
      return;
    }
    head.replaceChildren(el("tr", {}, spec.columns.map(([k]) => el("th", {}, T(k))), spec.rowActions ? el("th", {}) : null));
    rows.replaceChildren(...A.items.map((item) => el("tr", {
      "data-testid": "dadmin-row", "data-id": item.id, tabindex: 0,
      class: (A.editing && A.editing.id === item.id ? "selected" : "") + (item.active === false || item.cancelled_at ? " inactive" : ""),
      onclick: () => openForm(item),
      onkeydown: (ev) => { if (ev.key === "Enter") openForm(item); },
    }, spec.columns.map(([, f]) => el("td", {}, f(item))), spec.rowActions ? el("td", { class: "row-actions" }, spec.rowActions(item)) : null)));
    $("list-empty").hidden = A.items.length > 0;
  }

  // ---------- the form ----------

  function closeForm() {
    A.editing = null;
    $("form-panel").hidden = true;
    $("form").replaceChildren();
  }

  function fieldInput(f, value) {
    const id = `f-${f.name}`;
    const common = { id, name: f.name, "data-testid": `field-${f.name}`, required: f.required || null };
    if (f.type === "select") {
      const sel = el("select", common,
        f.optional || value === undefined || value === null ? el("option", { value: "" }, "—") : null,
        f.options().map(([v, label]) => el("option", { value: v }, label)));
      sel.value = value === null || value === undefined ? (f.initial ?? "") : String(value);
      return sel;
    }
    if (f.type === "checkbox") {
      const cb = el("input", { ...common, type: "checkbox" });
      cb.checked = value !== false;
      return cb;
    }
    if (f.type === "multi") {
      const chosen = new Set((value || []).map(Number));
      return el("div", { class: "multi", id, "data-testid": `field-${f.name}` }, f.options().map(([v, label]) => el("label", { class: "check" },
        (() => { const c = el("input", { type: "checkbox", value: v, "data-testid": `field-${f.name}-${v}` }); c.checked = chosen.has(Number(v)); return c; })(),
        " ", label)));
    }
    if (f.type === "textarea") {
      const ta = el("textarea", { ...common, rows: 2, maxlength: f.max || null });
      ta.value = value ?? "";
      return ta;
    }
    const type = f.type === "datetime" ? "datetime-local" : (f.type || "text");
    const input = el("input", { ...common, type, maxlength: f.type ? null : (f.max || null), step: f.step ?? null,
                                min: f.min ?? null, max: f.type === "number" ? (f.max ?? null) : null });
    input.value = f.type === "datetime" ? K.isoToLocal(value) : (value ?? "");
    return input;
  }

  function openForm(item) {
    const spec = KINDS[A.kind];
    const isNew = !spec.single && (!item || item.id === undefined);
    A.editing = item || {};
    const fields = spec.fields().filter((f) => !(isNew && f.editOnly));
    const form = $("form");
    form.replaceChildren(
      ...fields.map((f) => {
        const disabled = !isNew && f.createOnly;
        const input = fieldInput(f, isNew ? (f.type === "datetime" ? defaultTime(f.name) : undefined) : item[f.name]);
        if (disabled) input.setAttribute("disabled", "");
        return el("div", { class: `field f-${f.type || "text"}`, "data-field": f.name },
          el("label", { for: `f-${f.name}` }, T(f.label), f.required ? el("span", { class: "req" }, " *") : null, f.unit ? el("small", { class: "muted" }, ` (${T(f.unit)})`) : null),
          input,
          f.hint ? el("small", { class: "muted hint" }, T(f.hint)) : null,
          el("p", { class: "ferror", "data-testid": `error-${f.name}`, hidden: true }));
      }),
      el("p", { class: "error", id: "form-error", "data-testid": "form-error", role: "alert", hidden: true }),
      el("div", { class: "buttons" },
        spec.single ? null : el("button", { type: "button", "data-testid": "form-cancel", onclick: () => { closeForm(); renderList(); } }, T("action.cancel")),
        el("button", { type: "submit", class: "primary", "data-testid": "form-save" }, T("action.save"))));
    form.onsubmit = (ev) => { ev.preventDefault(); save(fields, isNew); };
    $("form-title").textContent = spec.single ? T(spec.title) : (isNew ? T("dadmin.new") : T("dadmin.edit")) + " · " + T(spec.title);
    $("form-panel").hidden = false;
    renderList();
    const first = form.querySelector("input:not([disabled]), select:not([disabled]), textarea");
    if (first && !spec.single) first.focus();
  }

  function defaultTime(name) { // a new shift: today 08:00 to tomorrow 08:00, the usual 24-hour duty
    return K.localToIso((name === "starts_at" ? K.today(0) : K.today(1)) + "T08:00");
  }

  function readValue(f) {
    const input = $(`f-${f.name}`);
    if (f.type === "multi") return [...input.querySelectorAll("input:checked")].map((c) => Number(c.value));
    if (f.type === "checkbox") return input.checked;
    const v = input.value.trim();
    if (f.type === "datetime") return v ? K.localToIso(v) : null;
    if (f.type === "number" || f.number) return v === "" ? null : Number(v);
    if (f.type === "date") return v || null;
    return v;
  }

  function clearErrors() {
    for (const p of document.querySelectorAll(".ferror")) { p.hidden = true; p.textContent = ""; }
    for (const d of document.querySelectorAll(".field.invalid")) d.classList.remove("invalid");
    $("form-error").hidden = true;
  }

  function showFieldError(name, text) {
    const p = document.querySelector(`[data-testid="error-${name}"]`);
    if (!p) return false;
    p.textContent = text;
    p.hidden = false;
    p.closest(".field").classList.add("invalid");
    return true;
  }

  function showErrors(e, fields) {
    const names = new Set(fields.map((f) => f.name));
    let shown = false;
    const errs = (e.body && Array.isArray(e.body.errors)) ? e.body.errors : [];
    for (const er of errs) {
      const loc = (er.loc || []).filter((p) => p !== "body" && typeof p === "string");
      const name = loc.find((p) => names.has(p));
      if (name && showFieldError(name, er.msg)) shown = true;
    }
    if (!shown) { // a domain error says "field: message"
      const m = /^([a-z_]+): (.+)$/.exec(e.message || "");
      if (m && names.has(m[1])) shown = showFieldError(m[1], m[2]);
    }
    if (!shown && names.has("staff_ids") && /\(staff \d+\)/.test(e.message || "")) {
      shown = showFieldError("staff_ids", e.message); // a staff member who may not serve (or is on another shift)
      if (shown) return;
    }
    if (!shown || (e.status !== 422)) {
      const box = $("form-error");
      box.textContent = (e.status === 409 ? T("dadmin.conflict") : T("action.failed")) + ": " + e.message;
      box.hidden = false;
    }
  }

  async function save(fields, isNew) {
    clearErrors();
    const spec = KINDS[A.kind];
    const body = {};
    let missing = false;
    for (const f of fields) {
      if (!isNew && f.createOnly) continue;
      const v = readValue(f);
      if (f.required && (v === null || v === "")) { showFieldError(f.name, T("dadmin.required")); missing = true; }
      body[f.name] = v;
    }
    if (missing) return;
    const button = document.querySelector("[data-testid=form-save]");
    button.disabled = true;
    try {
      let saved;
      if (spec.single) saved = await K.patch(spec.route, body);
      else if (isNew) saved = await K.post(spec.route, body);
      else saved = await K.patch(`${spec.route}/${A.editing.id}`, body);
      toast(T("dadmin.saved"), true);
      if (spec.single) { openForm(saved || body); return; }
      closeForm();
      await load();
    } catch (e) {
      if (e.status !== 401) showErrors(e, fields);
    } finally {
      button.disabled = false;
    }
  }

  async function cancelShift(s) {
    if (!confirm(T("dadmin.shift.cancel_confirm", { group: s.group_name || groupName(s.group_id) }))) return;
    try {
      await K.del(`${ROUTES.shifts}/${s.id}`);
      toast(T("dadmin.saved"), true);
      await load();
    } catch (e) { toast(T("action.failed") + ": " + e.message); }
  }

  // ---------- start ----------

  async function init() {
    try { await K.start(); } catch (_e) { return; }
    $("show-all").addEventListener("change", (ev) => { A.showAll = ev.target.checked; load(); });
    $("new-item").addEventListener("click", () => openForm(null));
    K.onLang(() => { renderTabs(); renderList(); if (A.editing) openForm(A.editing.id === undefined ? null : A.editing); });
    const wanted = location.hash.slice(1);
    if (KINDS[wanted]) A.kind = wanted;
    renderTabs();
    await load();
  }

  init();
})();

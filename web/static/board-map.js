"use strict";
// The board's map, as a board extension (window.KuzetBoard). Works offline: guarded objects (and
// response groups, when dispatch serves /api/groups) drawn to scale over Kazakhstan's outline and
// main cities (web/static/kz-map.json, shipped with Kuzet, sources named in it). Web Mercator, our
// own SVG; no request to any outside host unless a tile server is configured ([web] map_tiles).
// Pan: drag; zoom: wheel, double-click or the +/− buttons; "Whole country" resets the view.
(() => {
  const B = window.KuzetBoard;
  if (!B) return;
  const NS = "http://www.w3.org/2000/svg";
  const TILE = 256;
  const M = { base: null, data: null, tiles: "", objects: [], groups: [], view: null, svg: null, queued: false,
              panel: null, drag: null, size: { w: 360, h: 240 } };

  // Web Mercator at zoom 0: the world is 256 x 256 units
  function project(lat, lon) {
    const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
    return [((lon + 180) / 360) * TILE, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE];
  }
  function unproject(x, y) {
    const lon = (x / TILE) * 360 - 180;
    const n = Math.PI - (2 * Math.PI * y) / TILE;
    return [(180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n))), lon];
  }

  const svgEl = (tag, attrs) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    return e;
  };

  // view: world point at the centre + scale (screen px per world unit)
  function fitCountry() {
    const pts = M.data.outline.map(([lon, lat]) => project(lat, lon));
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const scale = Math.min(M.size.w / (x1 - x0), M.size.h / (y1 - y0)) * 0.92;
    M.view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale };
  }

  const toScreen = (x, y) => [(x - M.view.cx) * M.view.scale + M.size.w / 2, (y - M.view.cy) * M.view.scale + M.size.h / 2];

  function schedule() {
    if (M.queued) return;
    M.queued = true;
    requestAnimationFrame(() => { M.queued = false; draw(); });
  }

  function openPriorities() {
    const byObject = new Map();
    for (const a of B.alarms()) {
      if (!a.object_id) continue;
      const p = byObject.get(a.object_id);
      if (!p || a.priority < p.priority) byObject.set(a.object_id, a);
    }
    return byObject;
  }

  function scaleBar() {
    // metres per screen pixel at the view's centre latitude
    const [lat] = unproject(M.view.cx, M.view.cy);
    const mpp = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / (TILE * M.view.scale);
    const target = mpp * 80;
    const steps = [1, 2, 5];
    let len = 1;
    for (let e = 0; e < 8; e++) for (const s of steps) if (s * 10 ** e <= target) len = s * 10 ** e;
    return { px: len / mpp, label: len >= 1000 ? `${len / 1000} km` : `${len} m` };
  }

  function draw() {
    if (!M.svg || !M.view) return;
    const lang = B.lang();
    const layers = [];
    // tiles only when configured (the post's own tile server)
    if (M.tiles) {
      const z = Math.max(0, Math.min(19, Math.round(Math.log2(M.view.scale))));
      const n = 2 ** z;
      const size = (TILE * M.view.scale) / n;
      const [left, top] = [M.view.cx - M.size.w / 2 / M.view.scale, M.view.cy - M.size.h / 2 / M.view.scale];
      const tx0 = Math.floor((left / TILE) * n);
      const ty0 = Math.max(0, Math.floor((top / TILE) * n));
      const tx1 = Math.floor(((left + M.size.w / M.view.scale) / TILE) * n);
      const ty1 = Math.min(n - 1, Math.floor(((top + M.size.h / M.view.scale) / TILE) * n));
      for (let tx = tx0; tx <= tx1; tx++) for (let ty = ty0; ty <= ty1; ty++) {
        const wx = ((tx % n) + n) % n;
        const [sx, sy] = toScreen((tx / n) * TILE, (ty / n) * TILE);
        layers.push(svgEl("image", { href: M.tiles.replace("{z}", z).replace("{x}", wx).replace("{y}", ty), x: sx, y: sy,
                                     width: size + 0.5, height: size + 0.5, preserveAspectRatio: "none" }));
      }
    }
    const d = M.data.outline.map(([lon, lat], i) => {
      const [x, y] = toScreen(...project(lat, lon));
      return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
    }).join("") + "Z";
    layers.push(svgEl("path", { d, class: "kz-outline", "data-testid": "map-outline" }));
    for (const c of M.data.cities) {
      const [x, y] = toScreen(...project(c.lat, c.lon));
      const g = svgEl("g", { class: "city" + (c.capital ? " capital" : "") });
      g.append(svgEl("circle", { cx: x, cy: y, r: c.capital ? 3.5 : 2.5 }));
      const t = svgEl("text", { x: x + 5, y: y - 4 });
      t.textContent = c.name[lang] || c.name.en;
      g.append(t);
      layers.push(g);
    }
    const open = openPriorities();
    for (const o of M.objects) {
      const [x, y] = toScreen(...project(o.latitude, o.longitude));
      if (x < -20 || y < -20 || x > M.size.w + 20 || y > M.size.h + 20) continue;
      const a = open.get(o.id);
      const g = svgEl("g", { class: "map-object" + (a ? ` alarm p${a.priority}` : ""), "data-testid": "map-object",
                             "data-object-id": o.id, tabindex: 0 });
      g.append(svgEl("circle", { cx: x, cy: y, r: a ? 6 : 4 }));
      const title = svgEl("title");
      title.textContent = o.name + (o.address ? " · " + o.address : "");
      g.append(title);
      if (a) g.addEventListener("click", () => B.select(a.id));
      layers.push(g);
    }
    for (const grp of M.groups) {
      const [x, y] = toScreen(...project(grp.lat, grp.lon));
      const g = svgEl("g", { class: "map-group", "data-testid": "map-group" });
      g.append(svgEl("rect", { x: x - 5, y: y - 5, width: 10, height: 10, rx: 2 }));
      const t = svgEl("text", { x: x + 7, y: y + 4 });
      t.textContent = grp.name;
      g.append(t, Object.assign(svgEl("title"), { textContent: grp.name }));
      layers.push(g);
    }
    const bar = scaleBar();
    const sb = svgEl("g", { class: "scale-bar", "data-testid": "map-scale" });
    const y0 = M.size.h - 12;
    sb.append(svgEl("path", { d: `M10 ${y0 - 4}V${y0}H${10 + bar.px}V${y0 - 4}` }));
    const st = svgEl("text", { x: 12 + bar.px, y: y0 });
    st.textContent = bar.label;
    sb.append(st);
    layers.push(sb);
    M.svg.replaceChildren(...layers);
    M.panel.setCount(`${M.objects.length} ${B.T("map.objects")}` + (M.groups.length ? ` · ${M.groups.length} ${B.T("map.groups")}` : ""));
  }

  function zoomAt(factor, sx, sy) {
    const wx = M.view.cx + (sx - M.size.w / 2) / M.view.scale;
    const wy = M.view.cy + (sy - M.size.h / 2) / M.view.scale;
    const scale = Math.max(1, Math.min(2 ** 19, M.view.scale * factor));
    M.view = { scale, cx: wx - (sx - M.size.w / 2) / scale, cy: wy - (sy - M.size.h / 2) / scale };
    schedule();
  }

  function showObject(lat, lon) {
    const [x, y] = project(lat, lon);
    M.view = { cx: x, cy: y, scale: 2 ** 14 };
    M.panel.root.scrollIntoView({ block: "nearest" });
    schedule();
  }

  function build() {
    M.panel = B.panel({ id: "map-panel", title: "map.heading", testid: "map-panel" });
    const svg = svgEl("svg", { class: "map", role: "img", "data-testid": "map", "aria-label": "map" });
    const tools = B.el("div", { class: "map-tools" },
      B.el("button", { type: "button", "data-testid": "map-zoom-in", title: B.T("map.zoom_in"), onclick: () => zoomAt(2, M.size.w / 2, M.size.h / 2) }, "+"),
      B.el("button", { type: "button", "data-testid": "map-zoom-out", title: B.T("map.zoom_out"), onclick: () => zoomAt(0.5, M.size.w / 2, M.size.h / 2) }, "−"),
      B.el("button", { type: "button", "data-testid": "map-reset", onclick: () => { fitCountry(); schedule(); } }, B.T("map.reset")),
      B.el("small", { class: "muted", "data-testid": "map-mode" }, M.tiles ? "" : B.T("map.offline")));
    const wrap = B.el("div", { class: "map-wrap" }, svg);
    M.panel.body.append(wrap, tools);
    M.svg = svg;
    const measure = () => {
      const r = wrap.getBoundingClientRect();
      M.size = { w: Math.max(200, r.width), h: Math.max(160, r.height) };
      svg.setAttribute("viewBox", `0 0 ${M.size.w} ${M.size.h}`);
    };
    measure();
    fitCountry();
    new ResizeObserver(() => { measure(); schedule(); }).observe(wrap);
    svg.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = svg.getBoundingClientRect();
      zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    svg.addEventListener("dblclick", (ev) => {
      const r = svg.getBoundingClientRect();
      zoomAt(2, ev.clientX - r.left, ev.clientY - r.top);
    });
    svg.addEventListener("pointerdown", (ev) => {
      M.drag = { x: ev.clientX, y: ev.clientY, cx: M.view.cx, cy: M.view.cy };
      svg.setPointerCapture(ev.pointerId);
    });
    svg.addEventListener("pointermove", (ev) => {
      if (!M.drag) return;
      M.view.cx = M.drag.cx - (ev.clientX - M.drag.x) / M.view.scale;
      M.view.cy = M.drag.cy - (ev.clientY - M.drag.y) / M.view.scale;
      schedule();
    });
    svg.addEventListener("pointerup", () => { M.drag = null; });
    schedule();
  }

  async function loadObjects() {
    try {
      const r = await B.api("/api/map");
      M.tiles = r.tiles || "";
      M.groupsUrl = r.groups_url || null;
      M.objects = r.objects.filter((o) => o.latitude !== null && o.longitude !== null);
      schedule();
    } catch (_e) { /* the board works without the map */ }
  }

  function coords(g) {
    const p = g.position || g.base || g.last_position || g; // dispatch: last position, else the base
    const lat = p.latitude ?? p.lat;
    const lon = p.longitude ?? p.lon ?? p.lng;
    return typeof lat === "number" && typeof lon === "number" ? { lat, lon } : null;
  }

  async function loadGroups() {
    if (!M.groupsUrl) return; // dispatch is not running on this post
    try {
      const list = await B.api(M.groupsUrl);
      const items = Array.isArray(list) ? list : (list && list.groups) || [];
      M.groups = items.map((g) => ({ name: g.name || g.callsign || "#" + g.id, ...coords(g) })).filter((g) => g.lat !== undefined);
      schedule();
    } catch (_e) { /* groups are shown again at the next refresh */ }
  }

  B.on("ready", async () => {
    try {
      const r = await fetch("/static/kz-map.json", { credentials: "same-origin" });
      M.data = await r.json();
    } catch (_e) { return; }
    await loadObjects();
    build();
    loadGroups();
    setInterval(loadGroups, 15000);
    setInterval(loadObjects, 60000);
  });
  B.on("alarm", schedule);
  B.on("message", (m) => { if (m.type === "snapshot") schedule(); });
  B.on("lang", schedule);
  B.on("show-on-map", (a) => { if (a && a.latitude !== null && a.latitude !== undefined) showObject(a.latitude, a.longitude); });
})();

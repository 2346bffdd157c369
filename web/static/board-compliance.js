// The board's compliance banner: documents (licence, permits, certificates...) expiring soon or
// expired, from GET /api/compliance/warnings, refreshed every ten minutes. Read-only; hiding it lasts
// until the list changes or the page is reloaded.
(function () {
  "use strict";
  const B = window.KuzetBoard;
  if (!B) return;
  const REFRESH_MS = 10 * 60 * 1000;
  let data = null;
  let hiddenFor = "";
  let banner = null;

  function signature(d) {
    return JSON.stringify([d.documents.map((w) => [w.document_id, w.days_left]), d.personnel_count]);
  }

  function render() {
    if (!banner) {
      banner = B.el("div", { class: "compliance-banner", "data-testid": "compliance-banner", role: "status", hidden: true });
      const top = document.querySelector(".topbar");
      if (top) top.after(banner); else document.body.prepend(banner);
    }
    banner.replaceChildren();
    const lang = B.lang();
    if (!data || (!data.documents.length && !data.personnel_count) || hiddenFor === signature(data)) {
      banner.hidden = true;
      return;
    }
    const expired = data.documents.filter((w) => w.expired);
    const soon = data.documents.filter((w) => !w.expired);
    const parts = [];
    if (expired.length) parts.push(B.T("compliance.banner.expired", { n: expired.length }));
    if (soon.length) parts.push(B.T("compliance.banner.expiring", { n: soon.length, days: data.warn_days }));
    if (data.personnel_count) parts.push(B.T("compliance.banner.personnel", { n: data.personnel_count }));
    const items = data.documents.slice(0, 4).map((w) => B.el("li", { "data-testid": "compliance-warning" },
      (w.label[lang] || w.label.en) + (w.number ? " № " + w.number : "") + (w.person ? " · " + w.person : "") + " — " +
      B.T(w.expired ? "compliance.banner.expired_on" : "compliance.banner.until", { date: w.valid_until })));
    banner.append(
      B.el("strong", {}, B.T("compliance.banner.title") + ": "),
      B.el("span", { "data-testid": "compliance-summary" }, parts.join(" · ")),
      B.el("ul", {}, items),
      B.el("button", { type: "button", class: "hide", onclick: () => { hiddenFor = signature(data); render(); } },
        B.T("compliance.banner.hide")));
    banner.classList.toggle("expired", expired.length > 0);
    banner.hidden = false;
  }

  async function load() {
    try {
      data = await B.api("/api/compliance/warnings");
    } catch (_e) {
      data = null; // no access (crew) or offline: no banner
    }
    render();
  }

  B.on("ready", () => { load(); setInterval(load, REFRESH_MS); });
  B.on("lang", render);
})();

"use strict";
// A citizen's status page: the case number and the query code of the receipt, nothing else. The
// node answers a masked view; a wrong code and an unknown number read the same.
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
let last = null, lastCode = "";

async function lookUp(number, code) {
  const r = await fetch("/v1/cases/" + encodeURIComponent(number), { headers: { "X-Query-Code": code, Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  return { status: r.status, body };
}

function show() {
  const out = document.getElementById("result");
  if (!last) { out.innerHTML = ""; return; }
  const { status, body } = last;
  if (status !== 200) {
    const key = status === 404 ? "status_not_found" : status === 429 ? "status_too_many" : status === 400 ? "status_bad_number" : "status_unavailable";
    out.innerHTML = `<section><p class="err" id="status-error">${esc(t(key))}</p></section>`;
    return;
  }
  const v = body;
  const when = (s) => new Date(s).toLocaleString(LANG, { timeZone: "Asia/Shanghai" });
  out.innerHTML = `<section id="case"><h2>${esc(v.title)} <small>${esc(v.number)}</small></h2>
    <dl class="publics">
      <dt>${esc(t("case_status"))}</dt><dd id="case-status">${esc(tOr("st_" + v.status, v.status))}</dd>
      <dt>${esc(t("held_by"))}</dt><dd><span id="case-holder">${esc(v.holder_site)}</span>${v.in_transit_to ? ` → ${esc(v.in_transit_to)}（${esc(t("in_transit"))}）` : ""}</dd>
      <dt>${esc(t("applicant_word"))}</dt><dd>${esc(v.applicant.name)} · ${esc(v.applicant.id_number)} · ${esc(v.applicant.phone)}</dd>
      <dt>${esc(t("materials"))}</dt><dd>${v.materials.map(esc).join("、") || "—"}</dd>
      <dt>${esc(t("accepted_at"))}</dt><dd>${esc(when(v.created_at))}</dd>
      ${v.decision ? `<dt>${esc(t("decision"))}</dt><dd id="case-decision">${esc(t(v.decision))}</dd>` : ""}
      <dt>${esc(t("collect_at"))}</dt><dd>${esc(v.collect_site)}</dd>
    </dl>
    ${v.missing && v.missing.length ? `<h2>${esc(t("missing_title"))}</h2><ol id="case-missing">${v.missing.map((m) => `<li>${esc(m)}</li>`).join("")}</ol>` : ""}
    ${v.seal ? `<p><a id="case-certificate" href="/v1/cases/${encodeURIComponent(v.number)}/certificate?format=html&amp;query_code=${encodeURIComponent(lastCode)}">${esc(t("certificate"))}</a></p>` : ""}
    <h2>${esc(t("timeline"))}</h2>
    <ol id="timeline">${v.timeline.map((m) => `<li>${esc(when(m.at))} · ${esc(m.site)} · ${esc(tOr("ev_" + m.type, m.type))}${m.to_site ? " → " + esc(m.to_site) : ""}</li>`).join("")}</ol>
  </section>`;
}

document.getElementById("status").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  lastCode = String(f.get("query_code")).trim();
  last = await lookUp(String(f.get("number")).trim(), lastCode).catch(() => ({ status: 0, body: {} }));
  show();
});
window.addEventListener("languagechange-govgrid", show);

"use strict";
// The catalogue for citizens and clerks, no sign-in: search (#/?q=…), an item's guide with its
// seven publics (#/item/CODE) and its printable one-time notice (#/notice/CODE).
const view = document.getElementById("view");
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const en = () => LANG === "en";
const nameOf = (x) => (en() && x.name_en) || x.name;
const deptName = (x) => (en() && x.department_name_en) || x.department_name || x.department;
const modeWord = (m) => t(m === "promised" ? "promised_mode" : m);
const limitText = (l) => {
  if (l.working_days) return en() ? `${l.working_days} working days` : `${l.working_days}个工作日`;
  if (l.hours) return en() ? `${l.hours} hours` : `${l.hours}小时`;
  return en() ? "on the spot" : "当场办结";
};
const money = (fen) => (fen / 100).toFixed(2) + " " + t("yuan");
let departments = [];

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error((body.error && body.error.message) || r.statusText), { status: r.status });
  return body;
}

function route() {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const show = parts[0] === "item" ? guide(decodeURIComponent(parts[1] || "")) :
    parts[0] === "notice" ? notice(decodeURIComponent(parts[1] || "")) : list(params);
  show.catch((err) => {
    view.innerHTML = `<section><p class="err">${esc(err.status === 404 ? t("not_found") : t("error") + err.message)}</p>
      <p><a href="#/">${esc(t("back"))}</a></p></section>`;
  });
}

async function list(params) {
  if (!departments.length) departments = (await api("/v1/catalog/departments")).departments;
  const q = new URLSearchParams();
  for (const k of ["q", "department", "tier", "mode", "type", "page_token"]) if (params.get(k)) q.set(k, params.get(k));
  q.set("page_size", "20");
  const page = await api("/v1/catalog/items?" + q);
  const opt = (value, label, cur) => `<option value="${esc(value)}"${value === cur ? " selected" : ""}>${esc(label)}</option>`;
  view.innerHTML = `<section class="noprint">
    <form class="search" id="search" role="search">
      <label><span>${esc(t("search_text"))}</span><input name="q" value="${esc(params.get("q"))}" autofocus></label>
      <label><span>${esc(t("department"))}</span><select name="department">${opt("", t("any"))}${departments.map((d) => opt(d.code, (en() && d.name_en) || d.name, params.get("department"))).join("")}</select></label>
      <label><span>${esc(t("tier"))}</span><select name="tier">${opt("", t("any"))}${["community", "township", "district"].map((x) => opt(x, t(x), params.get("tier"))).join("")}</select></label>
      <label><span>${esc(t("mode"))}</span><select name="mode">${opt("", t("any"))}${["immediate", "promised", "joint", "reported"].map((x) => opt(x, modeWord(x), params.get("mode"))).join("")}</select></label>
      <label><span>${esc(t("type"))}</span><select name="type">${opt("", t("any"))}${["administrative_licence", "public_service", "convenience_service"].map((x) => opt(x, t(x), params.get("type"))).join("")}</select></label>
      <button>${esc(t("search"))}</button>
    </form></section>
    <section><p class="muted" id="found">${esc(t("found", { n: page.total }))}</p>
    ${page.items.length ? `<table id="items"><thead><tr><th>${esc(t("code"))}</th><th>${esc(t("name"))}</th><th>${esc(t("department"))}</th>
      <th>${esc(t("mode"))}</th><th>${esc(t("tier"))}</th><th>${esc(t("limit"))}</th><th>${esc(t("fee"))}</th></tr></thead><tbody>
      ${page.items.map((x) => `<tr><td>${esc(x.code)}</td><td><a href="#/item/${encodeURIComponent(x.code)}">${esc(nameOf(x))}</a></td>
        <td>${esc(deptName(x))}</td><td><span class="tag ${esc(x.mode)}">${esc(modeWord(x.mode))}</span></td>
        <td>${x.accept_tiers.map((a) => esc(t(a))).join("、")}</td><td>${esc(limitText(x.promised_limit))}</td>
        <td>${(x.fees || []).length ? esc(money(x.fees.reduce((s, f) => s + f.standard_fen, 0))) : esc(t("free"))}</td></tr>`).join("")}
      </tbody></table>` : `<p>${esc(t("none"))}</p>`}
    <div class="pager noprint">${params.get("page_token") ? `<button type="button" class="plain" data-page="">${esc(t("first"))}</button>` : ""}
      ${page.next_page_token ? `<button type="button" class="plain" data-page="${esc(page.next_page_token)}">${esc(t("next"))}</button>` : ""}</div></section>`;
  document.getElementById("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new URLSearchParams();
    for (const [k, v] of new FormData(ev.target)) if (v) f.set(k, v);
    location.hash = "#/?" + f;
  });
  for (const b of view.querySelectorAll("[data-page]")) {
    b.addEventListener("click", () => {
      const f = new URLSearchParams(params);
      if (b.dataset.page) f.set("page_token", b.dataset.page); else f.delete("page_token");
      location.hash = "#/?" + f;
    });
  }
}

async function guide(code) {
  const n = await api("/v1/catalog/items/" + encodeURIComponent(code) + "/notice");
  view.innerHTML = `<section><h2>${esc(nameOf(n))} <small>${esc(n.code)}</small></h2>
    <p><span class="tag">${esc(t(n.type))}</span><span class="tag ${esc(n.mode)}">${esc(modeWord(n.mode))}</span>
      <span class="muted">${esc((en() && n.department.name_en) || n.department.name)} · ${esc(t("version"))} ${esc(n.version)}</span></p>
    <dl class="publics">
      <dt>${esc(t("basis"))}</dt><dd>${esc(n.legal_basis || "—")}</dd>
      <dt>${esc(t("conditions"))}</dt><dd>${esc(n.conditions || "—")}</dd>
      <dt>${esc(t("where"))}</dt><dd>${esc(t("accept_at"))}：${n.accept_at.map((a) => esc(t(a.tier))).join("、")}；${esc(t("decided_at"))}：${esc(t(n.decided_at.tier))}</dd>
      ${(n.joint_departments || []).length ? `<dt>${esc(t("joint_with"))}</dt><dd>${n.joint_departments.map((d) => esc((en() && d.name_en) || d.name || d.code)).join("、")}</dd>` : ""}
      <dt>${esc(t("limits"))}</dt><dd>${esc(t("statutory"))}：${esc(limitText(n.statutory_limit))}；${esc(t("promised"))}：${esc(limitText(n.promised_limit))}</dd>
      <dt>${esc(t("fees"))}</dt><dd>${n.fees.length ? n.fees.map((f) => `${esc(f.name)} ${esc(money(f.standard_fen))}（${esc(f.basis)}）`).join("<br>") : esc(t("free"))}</dd>
      <dt>${esc(t("materials"))}</dt><dd>${materialsTable(n, false)}</dd>
      <dt>${esc(t("steps"))}</dt><dd><ol class="steps">${n.steps.map((s) => `<li><b>${esc(nameOf(s))}</b> ${esc(s.description)}</li>`).join("")}</ol></dd>
    </dl>
    <div class="actions noprint"><a href="#/notice/${encodeURIComponent(n.code)}" id="to-notice">${esc(t("print_notice"))}</a>
      <a href="#/" class="plain">${esc(t("back"))}</a></div></section>`;
}

function materialsTable(n, tick) {
  if (!n.materials.length) return "—";
  return `<table class="materials"><thead><tr><th>${esc(t("no"))}</th><th>${esc(t("materials"))}</th><th>${esc(t("form"))}</th>
    <th>${esc(t("copies"))}</th><th>${esc(t("need"))}</th>${tick ? `<th>${esc(t("tick"))}</th>` : ""}</tr></thead><tbody>
    ${n.materials.map((m) => `<tr><td>${m.no}</td><td>${esc(nameOf(m))}${m.template ? `<br><span class="muted">${esc(t("template"))}：${esc(m.template)}</span>` : ""}</td>
      <td>${esc(t(m.form))}</td><td>${m.copies}</td><td>${esc(m.required ? t("required") : t("optional"))}</td>
      ${tick ? `<td class="box">☐</td>` : ""}</tr>`).join("")}</tbody></table>`;
}

async function notice(code) {
  const n = await api("/v1/catalog/items/" + encodeURIComponent(code) + "/notice");
  view.innerHTML = `<div class="notice" id="notice">
    <h2>${esc(t("notice_title"))}</h2>
    <p class="sub">${esc(nameOf(n))}（${esc(n.code)}） · ${esc((en() && n.department.name_en) || n.department.name)}</p>
    <p>${esc(t("notice_intro"))}</p>
    ${materialsTable(n, true)}
    <dl class="publics">
      <dt>${esc(t("conditions"))}</dt><dd>${esc(n.conditions || "—")}</dd>
      <dt>${esc(t("where"))}</dt><dd>${esc(t("accept_at"))}：${n.accept_at.map((a) => esc(t(a.tier))).join("、")}</dd>
      <dt>${esc(t("limits"))}</dt><dd>${esc(t("promised"))}：${esc(limitText(n.promised_limit))}（${esc(t("statutory"))}：${esc(limitText(n.statutory_limit))}）</dd>
      <dt>${esc(t("fees"))}</dt><dd>${n.total_fen ? esc(t("total")) + " " + esc(money(n.total_fen)) : esc(t("free"))}</dd>
      <dt>${esc(t("basis"))}</dt><dd>${esc(n.legal_basis || "—")}</dd>
    </dl>
    <div class="sign"><span>${esc(t("clerk"))}</span><span>${esc(t("applicant"))}</span><span>${esc(t("date"))}</span></div>
    <p class="muted">${esc(t("version"))} ${esc(n.version)} · ${esc(t("updated"))} ${esc(new Date(n.updated_at).toLocaleDateString(LANG))}</p>
    <div class="actions noprint"><button type="button" id="print">${esc(t("print"))}</button>
      <a href="#/item/${encodeURIComponent(n.code)}" class="plain">${esc(t("guide"))}</a></div></div>`;
  document.getElementById("print").addEventListener("click", () => window.print());
}

window.addEventListener("hashchange", route);
window.addEventListener("languagechange-govgrid", route);
document.addEventListener("DOMContentLoaded", route);

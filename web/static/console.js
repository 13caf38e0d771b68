"use strict";
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const tierName = { district: "区 district", township: "街道/乡镇 township", community: "社区/村 community" };

async function getJSON(path) {
  const r = await fetch(path);
  return { status: r.status, body: await r.json() };
}

async function refresh() {
  const h = await getJSON("/v1/health").catch(() => null);
  const badge = $("#health");
  badge.textContent = h && h.status === 200 ? "服务中 serving" : "启动中 starting: " + (h ? h.body.reason : "unreachable");
  badge.className = "badge " + (h && h.status === 200 ? "ok" : "err");
  const s = await getJSON("/v1/sites").catch(() => null);
  if (s) {
    $("#sites tbody").innerHTML = s.body.sites.map((x) => `<tr><td>${esc(x.site)}</td><td>${esc(tierName[x.tier] || x.tier)}</td>
      <td>${esc(x.parent)}</td><td>${esc(x.leader)}</td><td class="${esc(x.health)}">${esc(x.health)}</td>
      <td>${x.nodes.map((n) => `${esc(n.name)} (${esc(n.status)})`).join(", ")}</td></tr>`).join("");
  }
  const c = await getJSON("/v1/cases?page_size=20").catch(() => null);
  if (c && c.status === 200) {
    $("#cases tbody").innerHTML = c.body.cases.map((x) => `<tr><td>${esc(x.number)}</td><td>${x.kind === "grievance" ? "诉求" : "申请"}</td>
      <td>${esc(x.title)}</td><td>${esc(x.applicant.name)}</td><td>${esc(x.status)}</td>
      <td>${esc(new Date(x.created_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }))}</td></tr>`).join("");
  }
}

$("#accept").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {
    kind: f.get("kind"), item_code: f.get("item_code"), title: f.get("title"), description: f.get("description"),
    applicant: { name: f.get("name"), id_number: f.get("id_number"), phone: f.get("phone") }, materials: [],
  };
  const r = await fetch("/v1/cases", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const j = await r.json();
  $("#receipt").innerHTML = r.status === 201
    ? `<span class="ok">已受理 Accepted: <b>${esc(j.number)}</b>，查询码 query code <b>${esc(j.query_code)}</b></span>`
    : `<span class="err">${esc(j.error.message)}</span>`;
  refresh();
});

refresh();
setInterval(refresh, 3000);

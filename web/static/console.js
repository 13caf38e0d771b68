"use strict";
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const moveName = { escalate: "上报 escalate", relay: "转报 relay", handdown: "下派 hand down", return: "退回 return" };
const eventName = {
  submitted: "受理 accepted", escalated: "上报 escalated", relayed: "转报 relayed", handed_down: "下派 handed down",
  returned: "退回 returned", received: "接收 received", handoff_refused: "移交被拒 refused",
};
const tierName = { district: "区 district", township: "街道/乡镇 township", community: "社区/村 community" };

// The signed-in member of staff (login.html keeps the session in this tab's sessionStorage).
// Every call for cases carries its token; a 401 means it expired or was revoked: sign in again.
function session() { return JSON.parse(sessionStorage.getItem("govgrid.session") || "null"); }

function api(path, opts = {}) {
  const s = session();
  const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
  if (s) headers.Authorization = "Bearer " + s.token;
  return fetch(path, Object.assign({}, opts, { headers })).then((r) => {
    if (r.status === 401) {
      sessionStorage.removeItem("govgrid.session");
      showSession();
    }
    return r;
  });
}

async function getJSON(path) {
  const r = await api(path);
  return { status: r.status, body: await r.json() };
}

function showSession() {
  const s = session();
  $("#signin-first").hidden = !!s;
  $("#session").textContent = s ? `${s.name} (${s.user}) · ${s.site}` : "登录 Sign in";
  for (const f of document.querySelectorAll("#accept, #lookup")) f.hidden = !s;
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
      <td>${x.nodes.map((n) => `${esc(n.name)} (${esc(n.status)})`).join(", ")}</td>
      <td>${(x.outbox || []).map((o) => `→${esc(o.to_site)}: ${esc(o.depth)}`).join(", ")}${x.retired ? " 已撤销 retired" : ""}</td></tr>`).join("");
  }
  if (!session()) {
    $("#cases tbody").innerHTML = "";
    return;
  }
  const c = await getJSON("/v1/cases?page_size=20").catch(() => null);
  if (c && c.status === 200) {
    $("#cases tbody").innerHTML = c.body.cases.map((x) => `<tr><td>${esc(x.number)}</td><td>${x.kind === "grievance" ? "诉求" : "申请"}</td>
      <td>${esc(x.title)}</td><td>${esc(x.applicant.name)}</td><td>${esc(x.status)}</td>
      <td>${esc(new Date(x.created_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }))}</td>
      <td>${x.transit ? `移交中 in transit → ${esc(x.transit.to_site)}` : Object.keys(moveName).map((m) =>
        `<button class="move" data-move="${m}" data-number="${esc(x.number)}">${esc(moveName[m])}</button>`).join(" ")}</td></tr>`).join("");
  }
}

// A move asks for what the event must record: the target (hand-down only) and why; who is the
// signed-in account.
$("#cases").addEventListener("click", async (ev) => {
  const b = ev.target.closest("button.move");
  if (!b) return;
  const move = b.dataset.move, number = b.dataset.number;
  const body = {};
  if (move === "handdown") {
    body.to_site = prompt("下派到哪个下级站点？ Child site code:");
    if (!body.to_site) return;
  }
  const why = prompt(move === "handdown" ? "交办意见 Instructions:" : "意见/理由 Opinion or reason:");
  if (why === null) return;
  body[move === "handdown" ? "instructions" : "reason"] = why;
  const r = await api(`/v1/cases/${encodeURIComponent(number)}/${move}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const j = await r.json();
  $("#moved").innerHTML = r.status === 202
    ? `<span class="ok">${esc(moveName[move])}: ${esc(number)} → ${esc(j.transit.to_site)}（移交编号 handoff ${esc(j.transit.handoff_id)}）</span>`
    : `<span class="err">${esc(j.error.message)}</span>`;
  refresh();
});

$("#lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const number = new FormData(ev.target).get("number").trim();
  const r = await getJSON(`/v1/cases/${encodeURIComponent(number)}`).catch(() => null);
  if (!r || r.status !== 200) {
    $("#found").innerHTML = `<p class="err">${esc(r ? r.body.error.message : "unreachable")}</p>`;
    return;
  }
  const c = r.body;
  $("#found").innerHTML = `<p><b>${esc(c.number)}</b> ${esc(c.title)} · 状态 ${esc(c.status)} · 办理站点 holder <b>${esc(c.holder_site)}</b>
    ${c.transit ? `· 移交中 in transit → ${esc(c.transit.to_site)}` : ""}</p>
    <table><thead><tr><th>#</th><th>事件 Event</th><th>时间 When</th><th>站点 Site</th><th>经办 Who</th><th>意见 Note</th></tr></thead><tbody>
    ${c.history.map((e) => `<tr><td>${esc(e.seq)}</td><td>${esc(eventName[e.type] || e.type)}${e.to_site ? ` ${esc(e.from_site)}→${esc(e.to_site)}` : ""}</td>
      <td>${esc(new Date(e.at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }))}</td><td>${esc(e.site)}</td>
      <td>${esc(e.actor)}</td><td>${esc(e.note)}</td></tr>`).join("")}</tbody></table>`;
});

// One request id per filled-in form: a double click or a retry after a lost answer accepts the
// case once (the site answers the first acceptance again).
let requestID = newRequestID();
function newRequestID() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

$("#accept").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {
    request_id: requestID,
    kind: f.get("kind"), item_code: f.get("item_code"), title: f.get("title"), description: f.get("description"),
    applicant: { name: f.get("name"), id_number: f.get("id_number"), phone: f.get("phone") }, materials: [],
    decide_tier: f.get("decide_tier") || undefined,
  };
  const r = await api("/v1/cases", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const j = await r.json();
  $("#receipt").innerHTML = r.status === 201
    ? `<span class="ok">已受理 Accepted: <b id="receipt-number">${esc(j.number)}</b>，查询码 query code <b>${esc(j.query_code)}</b></span>`
    : `<span class="err">${esc(j.error.message)}</span>`;
  if (r.status === 201) {
    ev.target.reset();
    requestID = newRequestID();
  }
  refresh();
});

showSession();
refresh();
setInterval(refresh, 3000);

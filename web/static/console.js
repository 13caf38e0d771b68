"use strict";
// The console's front page: the site's queues (a case's status is its queue; an approver's queue
// leaves out what they reviewed themselves), the moves between sites, and the grid's sites.
const moveName = { escalate: "上报 escalate", relay: "转报 relay", handdown: "下派 hand down", return: "退回 return" };
const tierName = { district: "区 district", township: "街道/乡镇 township", community: "社区/村 community" };
let queue = "", notMine = false;

async function refresh() {
  const h = await fetch("/v1/health").then((r) => r.json().then((b) => ({ status: r.status, body: b }))).catch(() => null);
  const badge = $("#health");
  badge.textContent = h && h.status === 200 ? "服务中 serving" : "启动中 starting: " + (h ? h.body.reason : "unreachable");
  badge.className = "badge " + (h && h.status === 200 ? "ok" : "err");
  const s = await api("/v1/sites").catch(() => null);
  if (s && s.ok) {
    $("#sites tbody").innerHTML = s.body.sites.map((x) => `<tr><td>${esc(x.site)}</td><td>${esc(tierName[x.tier] || x.tier)}</td>
      <td>${esc(x.parent)}</td><td>${esc(x.leader)}</td><td class="${esc(x.health)}">${esc(x.health)}</td>
      <td>${x.nodes.map((n) => `${esc(n.name)} (${esc(n.status)})`).join(", ")}</td>
      <td>${(x.outbox || []).map((o) => `→${esc(o.to_site)}: ${esc(o.depth)}`).join(", ")}${x.retired ? " 已撤销 retired" : ""}</td></tr>`).join("");
  }
  const me = session();
  if (!me) {
    $("#cases tbody").innerHTML = "";
    return;
  }
  const c = await api("/v1/cases?page_size=50" + (queue ? "&status=" + queue : "")).catch(() => null);
  if (c && c.ok) {
    const mine = `${me.name} (${me.user})`;
    const rows = c.body.cases.filter((x) => !(notMine && x.reviewed_by === mine));
    $("#cases tbody").innerHTML = rows.map((x) => `<tr><td><a href="case.html?number=${encodeURIComponent(x.number)}">${esc(x.number)}</a></td>
      <td>${esc(x.title)}</td><td>${esc(x.applicant.name)}</td><td>${esc(statusName[x.status] || x.status)}</td>
      <td>${esc(when(x.created_at))}</td>
      <td>${x.transit ? `移交中 in transit → ${esc(x.transit.to_site)}` : Object.keys(moveName).map((m) =>
        `<button class="move" data-move="${m}" data-number="${esc(x.number)}">${esc(moveName[m])}</button>`).join(" ")}</td></tr>`).join("");
  }
}

$("#queues").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-queue]");
  if (!b) return;
  for (const x of document.querySelectorAll("#queues button")) x.classList.toggle("on", x === b);
  queue = b.dataset.queue;
  notMine = b.hasAttribute("data-not-mine");
  refresh();
});

// A move asks for the target (hand-down only) and why; who is the signed-in account.
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
  const r = await api(`/v1/cases/${encodeURIComponent(number)}/${move}`, { method: "POST", body });
  $("#moved").innerHTML = r.status === 202
    ? `<span class="ok">${esc(moveName[move])}: ${esc(number)} → ${esc(r.body.transit.to_site)}（移交编号 handoff ${esc(r.body.transit.handoff_id)}）</span>`
    : `<span class="err">${esc(errorOf(r))}</span>`;
  refresh();
});

$("#lookup").addEventListener("submit", (ev) => {
  ev.preventDefault();
  location.href = "case.html?number=" + encodeURIComponent(new FormData(ev.target).get("number").trim());
});

showSession();
refresh();
setInterval(refresh, 3000);

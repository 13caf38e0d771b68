"use strict";
// What the staff pages share: the signed-in session (login.html keeps it in this tab's
// sessionStorage; requests carry its token in the Authorization header, never a cookie), calls to
// the node's API, and the words of a case's life, zh-CN first with English.
const $ = (s, root = document) => root.querySelector(s);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function session() { return JSON.parse(sessionStorage.getItem("govgrid.session") || "null"); }

// api calls the node with the session's token; a 401 ends the session (expired or revoked).
async function api(path, opts = {}) {
  const s = session();
  const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
  if (opts.body !== undefined && typeof opts.body !== "string") {
    headers["Content-Type"] = "application/json";
    opts = Object.assign({}, opts, { body: JSON.stringify(opts.body) });
  }
  if (s) headers.Authorization = "Bearer " + s.token;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) {
    sessionStorage.removeItem("govgrid.session");
    showSession();
  }
  const ct = r.headers.get("Content-Type") || "";
  const body = ct.includes("json") ? await r.json().catch(() => ({})) : await r.text();
  return { status: r.status, ok: r.ok, body };
}

const errorOf = (r) => (r.body && r.body.error ? r.body.error.message : "HTTP " + r.status);

// showSession fills #session with who is signed in, and #signin-first when nobody is.
function showSession() {
  const s = session();
  const who = $("#session");
  if (who) who.textContent = s ? `${s.name} (${s.user}) · ${s.site}` : "登录 Sign in";
  const first = $("#signin-first");
  if (first) first.hidden = !!s;
  for (const el of document.querySelectorAll("[data-needs-session]")) el.hidden = !s;
}

// One request id per filled-in form: a double click or a retry after a lost answer submits once.
function newRequestID() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const statusName = {
  submitted: "待受理 submitted", accepted: "已受理 accepted", not_accepted: "不予受理 not accepted",
  supplement_requested: "待补正 supplement requested", processing: "承办中 processing", reviewed: "已审核 reviewed",
  approved: "已核准 approved", denied: "不予许可 denied", completed: "已办结 completed",
  certificate_issued: "已领证 certificate issued", delivered: "已送达 delivered", withdrawn: "已撤回 withdrawn",
};
const stepName = {
  accept: "受理 Accept", reject: "不予受理 Reject", "request-supplement": "一次性告知补正 Request supplement",
  supplement: "补正 Supplement", process: "承办 Process", review: "审核 Review", approve: "核准 Approve",
  deny: "不予许可 Deny", "sign-off": "会签 Sign off", charge: "收费 Charge", exempt: "减免 Exempt", pay: "缴费 Pay",
  complete: "办结 Complete", "issue-certificate": "领证 Issue certificate", deliver: "送达 Deliver", withdraw: "撤回 Withdraw",
};
const eventName = {
  submitted: "收件 received", escalated: "上报 escalated", relayed: "转报 relayed", handed_down: "下派 handed down",
  returned: "退回 returned", received: "接收 received", handoff_refused: "移交被拒 refused", accepted: "受理 accepted",
  not_accepted: "不予受理 not accepted", supplement_requested: "一次性告知 supplement requested", supplemented: "补正 supplemented",
  processing: "承办 processing", reviewed: "审核 reviewed", approved: "核准 approved", denied: "不予许可 denied",
  signed_off: "会签 signed off", charged: "收费 charged", exempted: "减免 exempted", paid: "缴费 paid",
  completed: "办结 completed", certificate_issued: "领证 certificate issued", delivered: "送达 delivered", withdrawn: "撤回 withdrawn",
};
const yuan = (fen) => "¥" + (Number(fen || 0) / 100).toFixed(2);
const when = (t) => (t ? new Date(t).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }) : "");

// addWorkingDays is the day n working days (Monday to Friday) after from.
function addWorkingDays(from, n) {
  const d = new Date(from);
  while (n > 0) {
    d.setDate(d.getDate() + 1);
    if (d.getDay() !== 0 && d.getDay() !== 6) n--;
  }
  return d;
}

"use strict";
// A case's page: what it is, its bill and decision, its whole timeline, and the steps the
// signed-in account may take now (GET /v1/cases/{number}/steps: the node leaves out what the
// account's roles, the place or 一审一核 do not allow).
const number = new URLSearchParams(location.search).get("number") || "";
const path = "/v1/cases/" + encodeURIComponent(number);

// The fields each step asks for, beyond an optional comment.
const stepFields = {
  reject: [["reason", "理由 Reason", true], ["legal_basis", "法律依据 Legal basis", true]],
  deny: [["reason", "理由 Reason", true], ["legal_basis", "法律依据 Legal basis", false]],
  "request-supplement": [["missing", "缺少的全部材料（逗号分隔） Every missing material, comma-separated", true]],
  supplement: [["materials", "补交的材料（逗号分隔） Materials handed in, comma-separated", true]],
  accept: [["exception", "缺件受理理由（如有） Reason to accept with a material missing", false]],
  "sign-off": [["department", "会签部门 Department", true]],
  charge: [["fee_line", "收费项目 Fee line", false], ["amount_fen", "金额（分） Amount in fen", true], ["reason", "调整理由 Reason if not the standard", false]],
  exempt: [["fee_line", "减免项目（空为全部） Fee line (empty: all)", false], ["reason", "减免理由 Reason", true]],
  pay: [["amount_fen", "金额（分） Amount in fen", true], ["payment_ref", "缴费凭证号 Payment reference", true]],
};

async function load() {
  showSession();
  if (!session()) return;
  const r = await api(path);
  if (!r.ok) {
    $("#case").innerHTML = `<p class="err">${esc(errorOf(r))}</p>`;
    return;
  }
  const c = r.body;
  const bill = c.bill ? `<dt>收费 Bill</dt><dd id="case-bill">${c.bill.lines.map((l) => `${esc(l.name)} ${yuan(l.charged_fen)}${l.adjusted ? "（调整 adjusted: " + esc(l.reason) + "）" : ""}${l.exempt ? "（减免 exempt: " + esc(l.exempt_reason) + "）" : ""}`).join("；")}
      · 合计 total <b>${yuan(c.bill.total_fen)}</b> · ${c.bill.paid ? "已缴 paid " + esc(c.bill.payment_ref) : "未缴 unpaid"}</dd>` : "";
  $("#case").innerHTML = `<h2 id="case-number">${esc(c.number)} <small>${esc(c.title)}</small></h2>
    <dl class="facts">
      <dt>状态 Status</dt><dd id="case-status">${esc(statusName[c.status] || c.status)}</dd>
      <dt>办理站点 Held by</dt><dd id="case-holder">${esc(c.holder_site)}${c.transit ? " → " + esc(c.transit.to_site) + "（移交中 in transit）" : ""}</dd>
      <dt>事项 Item</dt><dd>${esc(c.item_code)}${c.decide_tier ? " · 决定层级 decided by " + esc(c.decide_tier) : ""}</dd>
      <dt>申请人 Applicant</dt><dd>${esc(c.applicant.name)} · ${esc(c.applicant.id_number)} · ${esc(c.applicant.phone)}</dd>
      <dt>材料 Materials</dt><dd>${esc((c.materials || []).map((m) => m.name).join("、")) || "无 none"}</dd>
      ${c.missing && c.missing.length ? `<dt>待补正 Missing</dt><dd class="err">${esc(c.missing.join("、"))}</dd>` : ""}
      ${c.reviewed_by ? `<dt>审核人 Reviewed by</dt><dd>${esc(c.reviewed_by)}</dd>` : ""}
      ${c.decision ? `<dt>决定 Decision</dt><dd>${c.decision === "approved" ? "准予 approved" : "不予 denied"}</dd>` : ""}
      ${bill}
      <dt>领证站点 Collect at</dt><dd>${esc(c.collect_site || c.origin_site)}</dd>
    </dl>
    ${c.seal ? `<p class="noprint"><button type="button" id="certificate-button">查看/打印办理结果通知书 Certificate</button></p>` : ""}`;
  if (c.seal) $("#certificate-button").addEventListener("click", openCertificate);
  $("#history").innerHTML = `<h2>办理过程 <small>Timeline</small></h2>
    <table><thead><tr><th>#</th><th>事件 Event</th><th>时间 When</th><th>站点 Site</th><th>经办 Who</th><th>意见 Note</th></tr></thead><tbody>
    ${c.history.map((e) => `<tr><td>${esc(e.seq)}</td><td>${esc(eventName[e.type] || e.type)}${e.to_site ? ` ${esc(e.from_site)}→${esc(e.to_site)}` : ""}</td>
      <td>${esc(when(e.at))}</td><td>${esc(e.site)}</td><td>${esc(e.actor)}${e.role ? " · " + esc(e.role) : ""}</td><td>${esc(e.note)}</td></tr>`).join("")}</tbody></table>`;
  const st = await api(path + "/steps");
  const steps = st.ok ? st.body.steps : [];
  $("#step-buttons").innerHTML = steps.length
    ? steps.map((s) => `<button type="button" data-step="${esc(s)}">${esc(stepName[s] || s)}</button>`).join("")
    : `<span>此处暂无您可办理的步骤。 Nothing for you to do on this case here now.</span>`;
}

$("#step-buttons").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-step]");
  if (!b) return;
  const step = b.dataset.step;
  const fields = (stepFields[step] || []).concat([["comment", "意见 Comment", false]]);
  const form = $("#step-form");
  form.dataset.step = step;
  form.innerHTML = fields.map(([name, label, required]) => `<label class="wide">${esc(label)}<input name="${name}" ${required ? "required" : ""}></label>`).join("") +
    `<div class="wide actions"><button type="submit">确认${esc(stepName[step] || step)}</button><button type="button" class="secondary" id="step-cancel">取消 Cancel</button></div>`;
  form.hidden = false;
  $("#step-cancel").addEventListener("click", () => { form.hidden = true; });
});

$("#step-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const step = form.dataset.step;
  const body = {};
  for (const [k, v] of new FormData(form)) {
    if (v === "") continue;
    if (k === "missing") body.missing = v.split(/[,，、]/).map((x) => x.trim()).filter(Boolean);
    else if (k === "materials") body.materials = v.split(/[,，、]/).map((x) => ({ name: x.trim() })).filter((m) => m.name);
    else if (k === "amount_fen") body.amount_fen = Number(v);
    else body[k] = v;
  }
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  const r = await api(`${path}/${step}`, { method: "POST", body });
  $("#step-result").innerHTML = r.ok
    ? `<span class="ok">已${esc(stepName[step] || step)}：${esc(statusName[r.body.status] || r.body.status)}</span>`
    : `<span class="err">${esc(errorOf(r))}</span>`;
  form.hidden = true;
  load();
});

// openCertificate shows the printable certificate (it needs the token, so it is fetched, not linked).
async function openCertificate() {
  const r = await api(path + "/certificate?format=html", { headers: { Accept: "text/html" } });
  if (!r.ok) {
    $("#step-result").innerHTML = `<span class="err">${esc(errorOf(r))}</span>`;
    return;
  }
  const url = URL.createObjectURL(new Blob([r.body], { type: "text/html" }));
  location.href = url;
}

load();

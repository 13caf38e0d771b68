"use strict";
// The clerk's intake, driven by the item's list of materials: tick what the applicant handed in;
// with every required material present the case is accepted and a receipt printed (受理回执);
// with any missing, a one-time notice (一次性告知书) names them all, or the clerk accepts with an
// exception and its reason.
let item = null;
let requestID = newRequestID();
const tierName = { district: "区政务服务中心", township: "街道/乡镇", community: "社区/村便民服务站" };
const formName = { original: "原件", copy: "复印件", original_and_copy: "原件及复印件" };
const modeName = { immediate: "即办 immediate", promised: "承诺件 promised", joint: "联办 joint", reported: "上报 reported up" };

$("#pick input[name=item]").addEventListener("input", async (ev) => {
  const q = ev.target.value.trim();
  const code = q.split(" ")[0];
  if (/^[A-Za-z]{2,}-\d+/.test(code)) {
    loadItem(code);
    return;
  }
  if (q.length < 1) return;
  const r = await api("/v1/catalog/items?page_size=20&q=" + encodeURIComponent(q));
  if (r.ok) $("#items").innerHTML = r.body.items.map((it) => `<option value="${esc(it.code)} ${esc(it.name)}">`).join("");
});

async function loadItem(code) {
  const r = await api("/v1/catalog/items/" + encodeURIComponent(code));
  if (!r.ok) {
    $("#item").innerHTML = `<p class="err">${esc(errorOf(r))}</p>`;
    return;
  }
  if (item && item.code === r.body.code) return;
  item = r.body;
  requestID = newRequestID();
  const limit = item.promised_limit || {};
  $("#item").innerHTML = `<p><b id="item-name">${esc(item.name)}</b> ${esc(item.code)} · ${esc(item.department_name)} ·
    ${esc(modeName[item.mode] || item.mode)} · 决定 decided at ${esc(tierName[item.decide_tier] || item.decide_tier)} ·
    承诺时限 ${limit.working_days ? esc(limit.working_days) + " 个工作日" : limit.hours ? esc(limit.hours) + " 小时" : "即办"} ·
    收费 ${item.fees && item.fees.length ? esc(item.fees.map((f) => f.name + " " + yuan(f.standard_fen)).join("、")) : "不收费 free"}</p>`;
  $("#materials tbody").innerHTML = item.materials.map((m, i) => `<tr>
    <td><input type="checkbox" name="m${i}" data-material="${esc(m.name)}" ${m.required ? "data-required" : ""}></td>
    <td>${esc(m.name)}</td><td>${m.required ? "必需 required" : "可选 optional"}</td>
    <td>${esc(formName[m.form] || m.form)} × ${esc(m.copies)}</td><td><input type="number" min="0" max="10000" name="p${i}" style="width:5em"></td></tr>`).join("");
  $("#intake-section").hidden = false;
  refreshMissing();
}

function missing() {
  return [...document.querySelectorAll("#materials input[data-required]")].filter((c) => !c.checked).map((c) => c.dataset.material);
}

function refreshMissing() {
  const m = missing();
  $("#missing-hint").innerHTML = m.length ? `<span class="err">缺少必需材料 Missing: ${esc(m.join("、"))}</span>` : `<span class="ok">材料齐全 Every required material is here</span>`;
  $("#notice-button").hidden = m.length === 0;
  $("#exception-label").hidden = m.length === 0;
}
$("#materials").addEventListener("change", refreshMissing);

// submit opens the case (once per filled-in form, by its request id).
async function submit() {
  const f = new FormData($("#intake"));
  const materials = [];
  document.querySelectorAll("#materials tbody tr").forEach((tr, i) => {
    const box = tr.querySelector("input[type=checkbox]");
    if (box.checked) {
      const pages = Number(f.get("p" + i) || 0);
      materials.push(pages ? { name: box.dataset.material, pages } : { name: box.dataset.material });
    }
  });
  const body = {
    kind: "application", item_code: item.code, title: item.name, description: f.get("description") || undefined,
    applicant: { name: f.get("name"), id_number: f.get("id_number"), phone: f.get("phone") }, materials,
    collect_site: f.get("collect_site") || undefined, request_id: requestID,
  };
  const r = await api("/v1/cases", { method: "POST", body });
  if (r.status !== 201) throw new Error(errorOf(r));
  return { c: r.body, materials };
}

function busy(on) {
  for (const b of document.querySelectorAll("#intake button")) b.disabled = on;
}

$("#intake").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#intake-error").textContent = "";
  const m = missing();
  const exception = new FormData(ev.target).get("exception");
  if (m.length && !exception) {
    $("#intake-error").textContent = "缺少必需材料：请出具一次性告知书，或填写缺件受理理由。 Missing materials: print the one-time notice, or give the reason to accept without them.";
    return;
  }
  busy(true);
  try {
    const { c, materials } = await submit();
    let accepted = c;
    if (c.status === "submitted") {
      const r = await api(`/v1/cases/${encodeURIComponent(c.number)}/accept`, { method: "POST", body: exception ? { exception } : {} });
      if (!r.ok) throw new Error(`${c.number}: ${errorOf(r)}`);
      accepted = r.body;
    }
    receipt(c, accepted, materials);
  } catch (e) {
    $("#intake-error").textContent = String(e.message || e);
  } finally {
    busy(false);
  }
});

$("#notice-button").addEventListener("click", async () => {
  $("#intake-error").textContent = "";
  busy(true);
  try {
    const { c } = await submit();
    const r = await api(`/v1/cases/${encodeURIComponent(c.number)}/request-supplement`, { method: "POST", body: { missing: missing() } });
    if (!r.ok) throw new Error(`${c.number}: ${errorOf(r)}`);
    notice(c, r.body.missing || missing());
  } catch (e) {
    $("#intake-error").textContent = String(e.message || e);
  } finally {
    busy(false);
  }
});

function paperHead(title, c) {
  const s = session();
  return `<h2 class="paper-title">${title}</h2>
    <table><tr><th>办件编号 Number</th><td id="receipt-number">${esc(c.number)}</td><th>查询码 Query code</th><td id="receipt-code">${esc(c.query_code)}</td></tr>
    <tr><th>事项 Item</th><td>${esc(item.name)} (${esc(item.code)})</td><th>申请人 Applicant</th><td>${esc(c.applicant.name)}</td></tr>
    <tr><th>受理站点 Site</th><td>${esc(s ? s.site : c.holder_site)}</td><th>经办人 Clerk</th><td>${esc(s ? s.name : "")}</td></tr>
    <tr><th>咨询 Contact</th><td colspan="3">${esc(item.department_name)}</td></tr></table>`;
}

function receipt(c, accepted, materials) {
  const limit = item.promised_limit || {};
  const due = limit.working_days ? addWorkingDays(new Date(), limit.working_days).toLocaleDateString("zh-CN") : limit.hours ? `${limit.hours} 小时内 within ${limit.hours} h` : "当场办结 on the spot";
  $("#paper").innerHTML = paperHead("受理回执 <small>Receipt</small>", c) + `
    <p>已收材料 Received: ${esc(materials.map((m) => m.name).join("、")) || "无 none"}</p>
    <p>受理时间 Accepted: ${esc(when(accepted.updated_at))} · 承诺办结 Promised by: <b id="receipt-due">${esc(due)}</b>
      · 状态 ${esc(statusName[accepted.status] || accepted.status)}${accepted.transit ? " · 已报送 sent on to " + esc(accepted.transit.to_site) : ""}</p>
    <p>凭办件编号和查询码可在“办件查询”页查看进度。 With the number and the query code, follow the case on the status page.</p>
    <p class="noprint"><button type="button" data-action="print">打印回执 Print</button> <a href="case.html?number=${encodeURIComponent(c.number)}">办件详情 Case</a>
      <button type="button" data-action="next">下一位 Next</button></p>`;
  $("#paper").hidden = false;
  requestID = newRequestID();
}

function notice(c, missingNames) {
  $("#paper").innerHTML = paperHead("一次性告知书 <small>One-time notice</small>", c) + `
    <p>您的申请尚缺以下全部材料，补齐后即予受理（办理时限自补齐之日起计算）：<br><small>Hand in every material below and the application is accepted (the time limit runs from then):</small></p>
    <ol id="notice-missing">${missingNames.map((m) => `<li>${esc(m)}</li>`).join("")}</ol>
    <p>窗口工作人员（签名）：＿＿＿＿ 申请人（签名）：＿＿＿＿ 日期：${esc(new Date().toLocaleDateString("zh-CN"))}</p>
    <p class="noprint"><button type="button" data-action="print">打印告知书 Print</button> <a href="case.html?number=${encodeURIComponent(c.number)}">办件详情 Case</a>
      <button type="button" data-action="next">下一位 Next</button></p>`;
  $("#paper").hidden = false;
  requestID = newRequestID();
}

// The printed paper's buttons (no inline handlers: the console's Content-Security-Policy allows
// only its own scripts).
$("#paper").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (b && b.dataset.action === "print") window.print();
  if (b && b.dataset.action === "next") location.href = "intake.html";
});

showSession();
const pre = new URLSearchParams(location.search).get("item");
if (pre) {
  $("#pick input[name=item]").value = pre;
  loadItem(pre);
}

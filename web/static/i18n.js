"use strict";
// The console's words, zh-CN first with English. An element with data-i18n="key" shows the
// word of the language in force; the language is kept in localStorage.
const WORDS = {
  "zh-CN": {
    guide: "办事指南", nav_cases: "办件", nav_catalog: "办事指南", switch_to: "English",
    search_text: "事项名称、编码或部门", search: "搜索", department: "部门", tier: "受理层级", mode: "办理方式", type: "事项类型",
    any: "全部", code: "编码", name: "事项名称", limit: "承诺时限", fee: "收费", free: "不收费", found: "共 {n} 项",
    next: "下一页", first: "第一页", none: "没有找到符合条件的事项。",
    basis: "设定依据", conditions: "申办条件", materials: "申请材料", steps: "办理流程", limits: "办理时限", fees: "收费标准",
    where: "办理地点", accept_at: "受理", decided_at: "决定", statutory: "法定时限", promised: "承诺时限", joint_with: "联办部门",
    required: "必需", optional: "可选", need: "是否必需", copies: "份数", form: "原件/复印件", template: "表格", print_notice: "打印一次性告知书",
    back: "返回列表", notice_title: "一次性告知书", notice_intro: "您申请办理的事项需提交以下全部材料。材料齐全、符合法定形式的，窗口当场受理；请对照清单准备，一次办成。",
    no: "序号", tick: "已备", total: "合计", yuan: "元", print: "打印", not_found: "目录中没有这个事项。", loading: "加载中…",
    version: "版本", updated: "更新于", clerk: "窗口工作人员（签名）：", applicant: "申请人（签名）：", date: "日期：",
    district: "区政务服务中心", township: "街道/乡镇", community: "社区/村便民服务站",
    immediate: "即办", promised_mode: "承诺", joint: "联办", reported: "上报",
    administrative_licence: "行政许可", public_service: "公共服务", convenience_service: "便民服务",
    original: "原件", copy: "复印件", original_and_copy: "原件及复印件", error: "出错了：",
    nav_status: "办件查询", status_title: "办件查询", status_intro: "请输入受理回执上的办件编号和6位查询码。", number: "办件编号",
    query_code: "查询码", look_up: "查询", status_not_found: "没有找到这个办件：请核对办件编号和查询码。",
    status_too_many: "查询失败次数过多，请15分钟后再试。", status_bad_number: "办件编号的格式不对，例如 cd-dgdj-ngj-20261203-000001。",
    status_unavailable: "暂时无法查询，请稍后再试。", case_status: "办理状态", held_by: "当前办理单位", in_transit: "移交中",
    applicant_word: "申请人", accepted_at: "受理时间", timeline: "办理过程",
    st_submitted: "已受理", ev_submitted: "受理", ev_escalated: "上报", ev_relayed: "转报", ev_handed_down: "下派",
    ev_returned: "退回", ev_received: "接收", ev_handoff_refused: "移交被拒",
    sign_in: "工作人员登录", user: "用户名", password: "密码", sign_in_button: "登录", signed_in_as: "已登录：", sign_out: "退出登录",
    until: "有效至", wrong_password: "用户名或密码错误。", locked: "登录失败次数过多，账号已暂时锁定，请15分钟后再试。",
    other_site: "请在您所在的站点登录。", nav_sign_in: "登录",
    st_accepted: "已受理", st_not_accepted: "不予受理", st_supplement_requested: "待补正材料", st_processing: "承办中",
    st_reviewed: "已审核", st_approved: "已核准", st_denied: "不予许可", st_completed: "已办结", st_certificate_issued: "已领证",
    st_delivered: "已送达", st_withdrawn: "已撤回",
    ev_accepted: "受理", ev_not_accepted: "不予受理", ev_supplement_requested: "一次性告知补正", ev_supplemented: "补正材料",
    ev_processing: "承办", ev_reviewed: "审核", ev_approved: "核准", ev_denied: "不予许可", ev_signed_off: "会签",
    ev_charged: "收费", ev_exempted: "减免", ev_paid: "缴费", ev_completed: "办结", ev_certificate_issued: "领证",
    ev_delivered: "送达", ev_withdrawn: "撤回",
    missing_title: "请补交以下全部材料（一次性告知）", decision: "办理结果", approved: "准予", denied: "不予许可",
    collect_at: "领证地点", certificate: "查看办理结果通知书",
  },
  en: {
    guide: "Service guide", nav_cases: "Cases", nav_catalog: "Service guide", switch_to: "中文",
    search_text: "Item name, code or department", search: "Search", department: "Department", tier: "Accepted at", mode: "Processing", type: "Item type",
    any: "All", code: "Code", name: "Item", limit: "Promised limit", fee: "Fee", free: "Free", found: "{n} items",
    next: "Next page", first: "First page", none: "No item matches.",
    basis: "Legal basis", conditions: "Conditions", materials: "Materials", steps: "Procedure", limits: "Time limits", fees: "Fees",
    where: "Where", accept_at: "Accepted at", decided_at: "Decided at", statutory: "Statutory limit", promised: "Promised limit", joint_with: "Joint departments",
    required: "Required", optional: "Optional", need: "Required?", copies: "Copies", form: "Original/copy", template: "Form", print_notice: "Print the one-time notice",
    back: "Back to the list", notice_title: "One-time notice", notice_intro: "Please bring every material below. With all of them in the required form your application is accepted on the spot: check them off to get it done in one visit.",
    no: "No.", tick: "Ready", total: "Total", yuan: "yuan", print: "Print", not_found: "No such item in the catalogue.", loading: "Loading…",
    version: "Version", updated: "updated", clerk: "Clerk (signature):", applicant: "Applicant (signature):", date: "Date:",
    district: "District centre", township: "Township", community: "Community / village point",
    immediate: "Immediate", promised_mode: "Promised", joint: "Joint", reported: "Reported up",
    administrative_licence: "Administrative licence", public_service: "Public service", convenience_service: "Convenience service",
    original: "Original", copy: "Copy", original_and_copy: "Original and copy", error: "Error: ",
    nav_status: "Check a case", status_title: "Check a case", status_intro: "Enter the case number and the 6-digit query code on your receipt.", number: "Case number",
    query_code: "Query code", look_up: "Look up", status_not_found: "No case found: check the case number and the query code.",
    status_too_many: "Too many failed attempts: please try again in 15 minutes.", status_bad_number: "That is not a case number (for example cd-dgdj-ngj-20261203-000001).",
    status_unavailable: "The case cannot be looked up now: please try again later.", case_status: "Status", held_by: "Handled by", in_transit: "being transferred",
    applicant_word: "Applicant", accepted_at: "Accepted", timeline: "What happened",
    st_submitted: "Accepted", ev_submitted: "accepted", ev_escalated: "sent up", ev_relayed: "relayed", ev_handed_down: "handed down",
    ev_returned: "returned", ev_received: "received", ev_handoff_refused: "transfer refused",
    sign_in: "Staff sign-in", user: "User", password: "Password", sign_in_button: "Sign in", signed_in_as: "Signed in as ", sign_out: "Sign out",
    until: "until", wrong_password: "Wrong user or password.", locked: "Too many failed sign-ins: the account is locked for 15 minutes.",
    other_site: "Please sign in at your own site.", nav_sign_in: "Sign in",
    st_accepted: "Accepted", st_not_accepted: "Not accepted", st_supplement_requested: "Waiting for materials", st_processing: "Being processed",
    st_reviewed: "Reviewed", st_approved: "Approved", st_denied: "Denied", st_completed: "Completed", st_certificate_issued: "Certificate collected",
    st_delivered: "Delivered", st_withdrawn: "Withdrawn",
    ev_accepted: "accepted", ev_not_accepted: "not accepted", ev_supplement_requested: "materials requested", ev_supplemented: "materials handed in",
    ev_processing: "processing", ev_reviewed: "reviewed", ev_approved: "approved", ev_denied: "denied", ev_signed_off: "signed off",
    ev_charged: "charged", ev_exempted: "exempted", ev_paid: "paid", ev_completed: "completed", ev_certificate_issued: "certificate collected",
    ev_delivered: "delivered", ev_withdrawn: "withdrawn",
    missing_title: "Please hand in every material below (one-time notice)", decision: "Decision", approved: "Approved", denied: "Denied",
    collect_at: "Collect at", certificate: "Notice of decision",
  },
};
let LANG = localStorage.getItem("govgrid.lang") === "en" ? "en" : "zh-CN";
function t(key, vars) {
  let s = WORDS[LANG][key] ?? WORDS["zh-CN"][key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
  return s;
}
// tOr is the word for key, or fallback when there is none.
function tOr(key, fallback) {
  return (WORDS[LANG][key] ?? WORDS["zh-CN"][key]) === undefined ? fallback : t(key);
}
function applyWords(root) {
  document.documentElement.lang = LANG;
  for (const el of (root || document).querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const b = document.getElementById("lang");
  if (b) b.textContent = t("switch_to");
}
function toggleLanguage() {
  LANG = LANG === "en" ? "zh-CN" : "en";
  localStorage.setItem("govgrid.lang", LANG);
  applyWords();
  window.dispatchEvent(new Event("languagechange-govgrid"));
}
document.addEventListener("DOMContentLoaded", () => {
  applyWords();
  const b = document.getElementById("lang");
  if (b) b.addEventListener("click", toggleLanguage);
});

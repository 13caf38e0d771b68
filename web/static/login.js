"use strict";
// Staff sign in at their own site. The token is kept in this tab's sessionStorage (no cookie:
// requests carry it in the Authorization header, so no other site's page can use it) and sent
// with the console's requests.
const msg = document.getElementById("login-error");

function showSession() {
  const s = JSON.parse(sessionStorage.getItem("govgrid.session") || "null");
  document.getElementById("signed-out").hidden = !!s;
  document.getElementById("signed-in").hidden = !s;
  if (s) {
    document.getElementById("who").textContent = `${s.name} (${s.user})`;
    document.getElementById("who-detail").textContent = `${s.site} · ${s.roles.join(", ")} · ${t("until")} ${new Date(s.expires_at).toLocaleString(LANG)}`;
  }
}

document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  msg.textContent = "";
  const f = new FormData(ev.target);
  const r = await fetch("/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: String(f.get("user")).trim(), password: f.get("password") }),
  }).catch(() => null);
  const body = r ? await r.json().catch(() => ({})) : {};
  if (!r || !r.ok) {
    msg.textContent = t(!r ? "status_unavailable" : r.status === 401 ? "wrong_password" : r.status === 429 ? "locked" : r.status === 403 ? "other_site" : "status_unavailable");
    return;
  }
  sessionStorage.setItem("govgrid.session", JSON.stringify(body));
  ev.target.reset();
  showSession();
});

document.getElementById("logout").addEventListener("click", async () => {
  const s = JSON.parse(sessionStorage.getItem("govgrid.session") || "null");
  if (s) await fetch("/v1/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + s.token } }).catch(() => null);
  sessionStorage.removeItem("govgrid.session");
  showSession();
});
window.addEventListener("languagechange-govgrid", showSession);
showSession();

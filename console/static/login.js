// The login page: an admin API key in, the session cookie (and its CSRF
// token) out, then back to the page that sent the browser here.
import { $, api, setCsrf, showError } from "./console.js";

// Only a console page may be "next": never another site.
function next() {
  const n = new URLSearchParams(location.search).get("next") || "";
  return /^\/console\/[A-Za-z0-9/_?=&%.:-]*$/.test(n) && !n.startsWith("/console/login") ? n : "/console/";
}

async function main() {
  try {
    await api("GET", "/v1/console/session", undefined, { redirect: false });
    location.replace(next());
    return;
  } catch (e) {
    if (e.status !== 401) showError(e);
  }
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError(null);
    const button = $("login-submit");
    button.disabled = true;
    try {
      const s = await api("POST", "/v1/console/session", { api_key: $("api-key").value.trim() },
                          { redirect: false });
      setCsrf(s.csrf_token);
      location.replace(next());
    } catch (e) {
      if (e.status === 401) e.message = "That key is not valid.";
      else if (e.status === 403) e.message = "That key is not an admin key.";
      showError(e);
      button.disabled = false;
    }
  });
}

main();

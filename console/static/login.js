// Signs in with an admin API key: the gateway answers with the session cookie.
const form = document.getElementById("login");
const error = document.getElementById("error");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.textContent = "";
  const res = await fetch("/v1/console/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ api_key: form.elements.api_key.value }),
  });
  if (res.ok) {
    window.location.assign("/console/");
    return;
  }
  const body = await res.json().catch(() => null);
  error.textContent = body?.error?.message ?? `sign-in failed (${res.status})`;
});

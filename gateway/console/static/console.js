// The fleet page updates itself: a server-sent event says the fleet changed, the table is fetched again.
(function () {
  const fleet = document.getElementById("fleet");
  const live = document.getElementById("live");
  if (!fleet || !window.EventSource) return;
  let pending = false, again = false;
  async function refresh() {
    if (pending) { again = true; return; }     // a change during a fetch: fetch once more after it
    pending = true;
    try {
      const answer = await fetch(fleet.dataset.src, {credentials: "same-origin", cache: "no-store"});
      if (answer.status === 401) { location.href = "/login?next=/"; return; }
      if (answer.ok) fleet.innerHTML = await answer.text();
    } finally {
      pending = false;
      if (again) { again = false; refresh(); }
    }
  }
  const events = new EventSource("/events");
  events.addEventListener("fleet", refresh);
  events.onopen = () => { live.textContent = "● " + live.dataset.live; live.classList.remove("down"); };
  events.onerror = () => { live.textContent = "○ " + live.dataset.reconnecting; live.classList.add("down"); };
})();

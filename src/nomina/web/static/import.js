// An import's progress page: polls the import's status and updates the progress bar; reloads the page
// once the import has ended, to show its outcome. Without scripts the page refreshes itself instead.
"use strict";
(function () {
  const section = document.getElementById("import-job");
  if (!section || section.getAttribute("data-state") !== "running") { return; }
  const url = section.getAttribute("data-status-url");
  const bar = document.getElementById("import-progress");
  const counts = document.getElementById("import-counts");
  const message = document.getElementById("import-message");
  const state = document.getElementById("import-state");
  let failures = 0;

  function show(status) {
    bar.max = Math.max(1, status.total);
    bar.value = status.done;
    bar.textContent = status.done + " of " + status.total;
    counts.textContent = status.done + " of " + status.total + " rows done.";
    message.textContent = status.message;
    state.textContent = status.state;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (status) {
        failures = 0;
        show(status);
        if (status.state === "running") { window.setTimeout(poll, 1000); } else { window.location.reload(); }
      })
      .catch(function () {
        failures += 1;
        if (failures > 5) { message.textContent = "lost touch with the server; reload the page to see the import's state"; return; }
        window.setTimeout(poll, 3000);
      });
  }
  window.setTimeout(poll, 500);
})();

// Station page: keep the connectors, the current transaction, the command history and the
// configuration up to date without reloading the page. Every 2 s while a command waits
// for the charger's answer (the server says so in X-Commands-Pending), every 15 s
// otherwise; not while the tab is hidden. Without this script a reload shows the same.
(function () {
  "use strict";
  var state = document.getElementById("station-live");
  if (!state || !window.fetch || !window.DOMParser) return;
  var url = state.getAttribute("data-live-url");
  var FAST = 2000;
  var SLOW = 15000;
  var timer = null;

  function schedule() {
    clearTimeout(timer);
    var pending = state.getAttribute("data-pending") === "1";
    timer = setTimeout(refresh, pending ? FAST : SLOW);
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    fresh.querySelectorAll("[data-live-part]").forEach(function (part) {
      var name = part.getAttribute("data-live-part");
      var current = document.querySelector('[data-live-part="' + name + '"]');
      if (!current) return;
      // Keep open <details> (long answers) open across refreshes.
      var open = [];
      current.querySelectorAll("tr[data-command] details[open]").forEach(function (d) {
        open.push(d.closest("tr").getAttribute("data-command"));
      });
      current.innerHTML = part.innerHTML;
      open.forEach(function (id) {
        var d = current.querySelector('tr[data-command="' + id + '"] details');
        if (d) d.open = true;
      });
    });
  }

  function refresh() {
    if (document.hidden) {
      schedule();
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        var pending = response.headers.get("X-Commands-Pending") === "1";
        return response.text().then(function (html) {
          swap(html);
          state.setAttribute("data-pending", pending ? "1" : "0");
        });
      })
      .catch(function () {
        // Logged out, network down: try again later, slowly.
        state.setAttribute("data-pending", "0");
      })
      .then(schedule);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
  schedule();
})();

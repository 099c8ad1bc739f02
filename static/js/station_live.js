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

  // Update `current` to look like `fresh` by changing only what differs: unchanged
  // elements stay the same nodes, so focus stays where it is and a screen reader hears
  // only what changed in the aria-live parts. Rows are matched by data-command (or id).
  function key(node) {
    if (node.nodeType !== 1) return null;
    return node.getAttribute("data-command") || node.id || null;
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName && key(a) === key(b);
  }

  function morphAttributes(current, fresh) {
    Array.prototype.slice.call(current.attributes).forEach(function (attr) {
      // <details open> is the user's choice, not the server's.
      if (attr.name !== "open" && !fresh.hasAttribute(attr.name)) current.removeAttribute(attr.name);
    });
    Array.prototype.slice.call(fresh.attributes).forEach(function (attr) {
      if (current.getAttribute(attr.name) !== attr.value) current.setAttribute(attr.name, attr.value);
    });
  }

  function morph(current, fresh) {
    if (current.nodeType === 3 || current.nodeType === 8) {
      if (current.nodeValue !== fresh.nodeValue) current.nodeValue = fresh.nodeValue;
      return;
    }
    morphAttributes(current, fresh);
    morphChildren(current, fresh);
  }

  function morphChildren(current, fresh) {
    var freshKids = Array.prototype.slice.call(fresh.childNodes);
    var i = 0;
    freshKids.forEach(function (freshKid) {
      var here = current.childNodes[i];
      if (here && sameKind(here, freshKid)) {
        morph(here, freshKid);
      } else {
        var k = key(freshKid);
        var match = null;
        if (k) {
          for (var j = i + 1; j < current.childNodes.length; j++) {
            if (sameKind(current.childNodes[j], freshKid)) { match = current.childNodes[j]; break; }
          }
        }
        if (match) {
          current.insertBefore(match, here || null);
          morph(match, freshKid);
        } else {
          current.insertBefore(document.importNode(freshKid, true), here || null);
        }
      }
      i++;
    });
    while (current.childNodes.length > i) current.removeChild(current.lastChild);
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var focused = document.activeElement;
    var focusedId = focused && focused !== document.body ? focused.id : "";
    fresh.querySelectorAll("[data-live-part]").forEach(function (part) {
      var name = part.getAttribute("data-live-part");
      document.querySelectorAll('[data-live-part="' + name + '"]').forEach(function (current) {
        morphChildren(current, part);
      });
    });
    // Focus stays on the same node; if that node went away, on its successor by id.
    if (focused && focused !== document.body && !document.contains(focused)) {
      var again = focusedId && document.getElementById(focusedId);
      if (again) again.focus({ preventScroll: true });
    }
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

// Every panel page: the top bar's menus and the error summary. The pages work without this
// script (the menus are <details>, the summary is a list of links); it adds what a keyboard
// and a screen reader user need on top.
(function () {
  "use strict";

  // --- Menus (Settings, account): one open at a time; Escape, a click outside or focus
  // moving out closes them. Escape returns focus to the menu's button.
  var menus = Array.prototype.slice.call(document.querySelectorAll("details.menu"));

  function close(menu, refocus) {
    if (!menu.open) return;
    menu.open = false;
    if (refocus) menu.querySelector("summary").focus();
  }

  menus.forEach(function (menu) {
    menu.addEventListener("toggle", function () {
      if (!menu.open) return;
      menus.forEach(function (other) {
        if (other !== menu) close(other, false);
      });
    });
    menu.addEventListener("focusout", function (event) {
      // relatedTarget is null when focus goes nowhere (a click on the page): the click
      // handler below decides then.
      var next = event.relatedTarget;
      if (next && !menu.contains(next)) close(menu, false);
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" && event.key !== "Esc") return;
    menus.forEach(function (menu) {
      if (menu.open) {
        close(menu, true);
        event.preventDefault();
      }
    });
  });

  document.addEventListener("click", function (event) {
    menus.forEach(function (menu) {
      if (menu.open && !menu.contains(event.target)) close(menu, false);
    });
  });

  // --- Error summary: a form that failed starts with one (templates/_error_summary.html).
  // Focus moves to it so a screen reader reads it and the keyboard starts there; its links
  // move focus to their field, not only the scroll position.
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      if (!link) return;
      var field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      var label = document.querySelector("label[for='" + field.id + "']");
      (label || field).scrollIntoView({ block: "center" });
      field.focus({ preventScroll: true });
    });
    // After load: the browser's scroll to a fragment (a command form posts to its own
    // #command-…) would otherwise take focus back to the document.
    var focusSummary = function () { setTimeout(function () { summary.focus(); }, 0); };
    if (document.readyState === "complete") focusSummary();
    else window.addEventListener("load", focusSummary);
  }
})();

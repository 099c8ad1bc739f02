// "Copy" buttons: <button data-copy="ELEMENT-ID"> copies that element's text to the
// clipboard and says so. Without this script (or a clipboard) the text stays selectable.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { button.textContent = button.getAttribute("data-done") || "Copied"; },
        function () { button.textContent = button.getAttribute("data-failed") || "Copy failed"; }
      );
    });
  });
})();

// Station settings: "Visible to customers" is disabled while the station lacks what
// visibility needs (the server renders it so). Enable it as soon as the fields on the page
// provide it, so a station can be set up and published in one save; the server checks again.
(function () {
  "use strict";
  var box = document.getElementById("id_visible");
  if (!box || !box.disabled) return;
  var AUTO_NAME = /^Created \d{4}-\d{2}-\d{2} \d{2}:\d{2}$/;
  var needed = ["id_name", "id_street", "id_city", "id_country", "id_latitude", "id_longitude"]
    .map(function (id) { return document.getElementById(id); })
    .filter(Boolean);
  var note = document.getElementById("visible-missing");
  var hasCpo = box.getAttribute("data-has-cpo") === "1";

  function ready() {
    if (!hasCpo) return false;
    return needed.every(function (input) {
      var value = input.value.trim();
      return value !== "" && !(input.id === "id_name" && AUTO_NAME.test(value));
    });
  }

  function update() {
    var ok = ready();
    box.disabled = !ok;
    if (!ok) box.checked = false;
    if (note) note.hidden = ok;
  }

  needed.forEach(function (input) { input.addEventListener("input", update); });
  update();
})();

// Add new station: label the identity field for the chosen protocol. The page works
// without this script (the label then reads "CBID (Chargebox Identity)" and the help
// text explains the other protocols).
(function () {
  "use strict";
  var protocol = document.getElementById("id_protocol");
  var label = document.getElementById("cbid-label");
  if (!protocol || !label) return;
  function update() {
    var text = label.getAttribute("data-label-" + protocol.value);
    if (text) label.textContent = text;
  }
  protocol.addEventListener("change", update);
  update();
})();

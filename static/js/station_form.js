// Add new station: label the identity field for the chosen protocol. The page works
// without this script (the label then reads "CBID (Chargebox Identity)" and the help
// text explains the other protocols).
(function () {
  "use strict";
  var protocol = document.getElementById("id_protocol");
  var label = document.getElementById("cbid-label");
  if (!protocol || !label) return;
  // OCPP only: the charger password; Ensto / Remotec: a note that nothing speaks them yet.
  var ocppOnly = document.getElementById("ocpp-only");
  var vendorNote = document.getElementById("vendor-protocol-note");
  function update() {
    var text = label.getAttribute("data-label-" + protocol.value);
    if (text) label.textContent = text;
    var ocpp = protocol.value === "ocpp";
    if (ocppOnly) ocppOnly.hidden = !ocpp;
    if (vendorNote) vendorNote.hidden = ocpp;
  }
  protocol.addEventListener("change", update);
  update();
})();

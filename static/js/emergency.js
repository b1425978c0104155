// /emergency: choosing a warning level shows its measures by county at once (the button
// stays for browsers without scripts).
(function () {
  "use strict";
  var select = document.getElementById("em-level");
  if (!select) { return; }
  select.addEventListener("change", function () {
    if (select.value) { select.form.submit(); }
  });
})();

// Relocation page: sort the enterprise table by clicking a column header (client-side).
(function () {
  "use strict";
  var table = document.getElementById("rl-table");
  if (!table) return;
  var tbody = table.tBodies[0];

  function cellValue(row, col, type) {
    var cell = row.cells[col];
    if (!cell) return type === "num" ? -Infinity : "";
    var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
    if (type === "num") {
      var n = parseFloat(raw);
      return isNaN(n) ? -Infinity : n;
    }
    return raw;
  }

  function sortBy(th, col, type) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(tbody.rows).filter(function (r) {
      return !r.classList.contains("rl-empty");
    });
    var collator = new Intl.Collator(document.documentElement.lang || "zh-CN", {numeric: true});
    rows.sort(function (a, b) {
      var x = cellValue(a, col, type), y = cellValue(b, col, type);
      var d = type === "num" ? x - y : collator.compare(x, y);
      return asc ? d : -d;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    var btn = th.querySelector("button");
    if (!btn) return;
    btn.addEventListener("click", function () {
      sortBy(th, col, btn.getAttribute("data-type") || "text");
    });
  });
})();

/* Parcel page (/parcel) and its print page: the three ways in as tabs (upload, draw, paste),
   the coordinate-system box, the polygons drawn with leaflet-draw collected into the form as
   GeoJSON, and the "show on map" buttons of the answer. The map is folium's; its variable
   name is in data-map-id and the system of its coordinates in data-map-crs ("gcj02" on an
   Amap basemap, where a drawing is sent as GCJ-02). Without script the page still works:
   every section shows and the server works out what was sent. */
(function () {
  "use strict";
  var form = document.getElementById("pc-form");
  var container = document.getElementById("ga-map-container");
  var mapName = container && container.getAttribute("data-map-id");
  var map = mapName && window[mapName];

  var printNow = document.getElementById("ck-print-now");
  if (printNow) printNow.addEventListener("click", function () { window.print(); });

  // "Show on map" buttons of each parcel.
  Array.prototype.forEach.call(document.querySelectorAll(".pc-zoom"), function (button) {
    button.addEventListener("click", function () {
      if (!map) return;
      try {
        map.fitBounds(JSON.parse(button.getAttribute("data-bounds")), {padding: [30, 30]});
      } catch (e) { return; }
      if (container.scrollIntoView) container.scrollIntoView({behavior: "smooth", block: "center"});
    });
  });

  if (!form) return;
  var mode = document.getElementById("pc-mode");
  var tabs = Array.prototype.slice.call(form.querySelectorAll(".pc-tab"));
  var panels = Array.prototype.slice.call(form.querySelectorAll(".pc-panel-body"));
  var crsBox = document.getElementById("pc-crs-box");
  var details = document.getElementById("pc-newcheck");

  function select(name) {
    mode.value = name;
    tabs.forEach(function (t) {
      var on = t.getAttribute("data-mode") === name;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
    });
    panels.forEach(function (p) { p.hidden = p.getAttribute("data-mode") !== name; });
    if (crsBox) crsBox.hidden = name === "draw";
  }
  tabs.forEach(function (t, i) {
    t.addEventListener("click", function () { select(t.getAttribute("data-mode")); });
    t.addEventListener("keydown", function (e) {
      var step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      var next = tabs[(i + step + tabs.length) % tabs.length];
      select(next.getAttribute("data-mode"));
      next.focus();
      e.preventDefault();
    });
  });
  select(mode.value || "file");

  // The EPSG box only with "EPSG 代码".
  var crs = document.getElementById("pc-crs");
  var epsgLabel = document.getElementById("pc-epsg-label");
  if (crs && epsgLabel) {
    var epsgToggle = function () { epsgLabel.hidden = crs.value !== "epsg"; };
    crs.addEventListener("change", epsgToggle);
    epsgToggle();
  }

  // Drawn parcels: every polygon or rectangle drawn (or edited) goes into the hidden field.
  var geojson = document.getElementById("pc-geojson");
  var drawCrs = document.getElementById("pc-draw-crs");
  var status = document.getElementById("pc-drawn");
  var clear = document.getElementById("pc-clear-drawing");
  var drawn = [];
  if (drawCrs && container) drawCrs.value = container.getAttribute("data-map-crs") || "wgs84";

  function update() {
    var features = drawn.map(function (layer, i) {
      var f = layer.toGeoJSON();
      f.properties = {id: String(i + 1), name: ""};
      return f;
    });
    geojson.value = features.length ?
      JSON.stringify({type: "FeatureCollection", features: features}) : "";
    var n = features.length;
    status.textContent = n ? status.getAttribute("data-some").replace("{n}", n) :
      status.getAttribute("data-none");
    status.classList.toggle("pc-has-drawing", n > 0);
  }

  if (map && geojson && window.L) {
    // A drawing sent back with a refused check is shown again (not editable: draw anew).
    if (geojson.value) {
      try {
        L.geoJSON(JSON.parse(geojson.value), {style: {color: "#d62728", weight: 3, fillOpacity: 0.1}})
          .eachLayer(function (layer) { layer.addTo(map); drawn.push(layer); });
        update();
      } catch (e) { geojson.value = ""; }
    }
    map.on("draw:created", function (e) {
      drawn.push(e.layer);
      update();
      if (details) details.open = true;
      select("draw");
    });
    map.on("draw:edited", update);
    map.on("draw:deleted", function (e) {
      e.layers.eachLayer(function (layer) {
        var k = drawn.indexOf(layer);
        if (k >= 0) drawn.splice(k, 1);
      });
      update();
    });
    if (clear) {
      clear.addEventListener("click", function () {
        drawn.forEach(function (layer) {
          // out of leaflet-draw's editable group too, so its edit tools forget it
          Object.keys(layer._eventParents || {}).forEach(function (k) {
            var group = layer._eventParents[k];
            if (group && group.removeLayer) group.removeLayer(layer);
          });
          map.removeLayer(layer);
        });
        drawn = [];
        update();
      });
    }
  } else if (clear) {
    clear.hidden = true;
  }
})();

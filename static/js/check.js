/* Site check page: fill the form from the phone's location or a map click, pick a site,
   show DMS hints. The map is folium's; its variable name is in data-map-id, and the system
   its coordinates are in (what a click gives) in data-map-crs: "gcj02" on an Amap basemap
   (the overlays are shifted to GCJ-02 there), "wgs84" otherwise. A click is sent in that
   system and the server converts it; the phone's location is always WGS84. */
(function () {
  "use strict";
  var form = document.getElementById("ck-point-form");
  var lon = document.getElementById("ck-lon");
  var lat = document.getElementById("ck-lat");
  var crs = document.getElementById("ck-crs");

  var container = document.getElementById("ga-map-container");
  var mapCrs = (container && container.getAttribute("data-map-crs")) || "wgs84";
  var CRS_LABELS = {wgs84: "WGS84", gcj02: "GCJ-02"};

  function setPoint(system, lonValue, latValue) {
    if (!form) return;
    crs.value = system;
    crs.dispatchEvent(new Event("change"));
    lon.value = lonValue.toFixed(6);
    lat.value = latValue.toFixed(6);
  }

  // The device's accuracy of "my location" goes with the inspection recorded for that
  // point (apart from the point itself): kept for this tab until the answer page is shown.
  var FIX_KEY = "geoapp.check.fix";
  function rememberFix(lonText, latText, accuracy) {
    try {
      window.sessionStorage.setItem(FIX_KEY, JSON.stringify(
        {lon: lonText, lat: latText, accuracy: accuracy}));
    } catch (e) { /* private mode: the accuracy is not recorded */ }
  }
  function restoreFix() {
    var field = document.getElementById("ck-accuracy");
    var record = document.getElementById("ck-record-form");
    if (!field || !record) return;
    var fix;
    try { fix = JSON.parse(window.sessionStorage.getItem(FIX_KEY) || "null"); } catch (e) { fix = null; }
    if (!fix || typeof fix.accuracy !== "number" || !isFinite(fix.accuracy)) return;
    var rlon = record.querySelector("input[name=lon]");
    var rlat = record.querySelector("input[name=lat]");
    if (!rlon || !rlat || rlon.value !== fix.lon || rlat.value !== fix.lat) return;
    field.value = fix.accuracy.toFixed(1);
    var note = document.getElementById("ck-accuracy-note");
    if (note) {
      note.textContent = (note.getAttribute("data-template") || "±{m} m").replace("{m}", Math.round(fix.accuracy));
      note.hidden = false;
    }
  }
  restoreFix();
  // A fix is used for one record only: once that record is sent it is forgotten, so it
  // never rides along with a later record of the same point.
  var recordForm = document.getElementById("ck-record-form");
  if (recordForm) {
    recordForm.addEventListener("submit", function () {
      try { window.sessionStorage.removeItem(FIX_KEY); } catch (e) { /* nothing kept */ }
    });
  }

  var locate = document.getElementById("ck-locate");
  if (locate) {
    if (!("geolocation" in navigator)) { locate.disabled = true; }
    locate.addEventListener("click", function () {
      var original = locate.textContent;
      locate.disabled = true;
      locate.textContent = "…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        // Browser geolocation is WGS84 whatever the basemap; the server draws it shifted.
        setPoint("wgs84", pos.coords.longitude, pos.coords.latitude);
        rememberFix(lon.value, lat.value, pos.coords.accuracy);
        form.submit();
      }, function (err) {
        locate.disabled = false;
        locate.textContent = original;
        window.alert((document.documentElement.lang === "en" ? "Location unavailable: " : "无法获取位置：") + err.message);
      }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 30000});
    });
  }

  var mapName = container && container.getAttribute("data-map-id");
  var map = mapName && window[mapName];
  if (map && form) {
    map.on("click", function (e) {
      var ll = e.latlng.wrap();
      // The map's own system: a GCJ-02 point on Amap, sent as crs=gcj02.
      setPoint(mapCrs, ll.lng, ll.lat);
      if (window.L && L.popup) {
        var box = document.createElement("div");
        box.className = "ck-pick";
        var text = document.createElement("span");
        text.className = "ck-pick-coords";
        text.textContent = ll.lng.toFixed(6) + ", " + ll.lat.toFixed(6) + " (" +
          (CRS_LABELS[mapCrs] || mapCrs) + ") ";
        var ok = document.createElement("button");
        ok.type = "submit";
        ok.className = "ga-button ck-pick-ok";
        ok.setAttribute("form", "ck-point-form");
        ok.textContent = container.getAttribute("data-pick-label") || "OK";
        box.appendChild(text);
        box.appendChild(ok);
        L.popup().setLatLng(ll).setContent(box).openOn(map);
      }
    });
  }

  if (crs) {
    var dmsToggle = function () {
      var isDms = crs.value === "dms";
      lat.required = false;
      lat.closest("label").style.display = isDms ? "none" : "";
      if (isDms) lat.value = "";
      lon.setAttribute("inputmode", isDms ? "text" : "decimal");
    };
    crs.addEventListener("change", dmsToggle);
    dmsToggle();
  }

  var printNow = document.getElementById("ck-print-now");
  if (printNow) printNow.addEventListener("click", function () { window.print(); });
})();

/* Site check page: fill the form from the phone's location or a map click, pick a site,
   show DMS hints. The map is folium's; its variable name is in data-map-id. */
(function () {
  "use strict";
  var form = document.getElementById("ck-point-form");
  var lon = document.getElementById("ck-lon");
  var lat = document.getElementById("ck-lat");
  var crs = document.getElementById("ck-crs");

  function setWgs84(lonValue, latValue) {
    if (!form) return;
    crs.value = "wgs84";
    lon.value = lonValue.toFixed(6);
    lat.value = latValue.toFixed(6);
  }

  var locate = document.getElementById("ck-locate");
  if (locate) {
    if (!("geolocation" in navigator)) { locate.disabled = true; }
    locate.addEventListener("click", function () {
      var original = locate.textContent;
      locate.disabled = true;
      locate.textContent = "…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        setWgs84(pos.coords.longitude, pos.coords.latitude);
        form.submit();
      }, function (err) {
        locate.disabled = false;
        locate.textContent = original;
        window.alert((document.documentElement.lang === "en" ? "Location unavailable: " : "无法获取位置：") + err.message);
      }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 30000});
    });
  }

  var container = document.getElementById("ga-map-container");
  var mapName = container && container.getAttribute("data-map-id");
  var map = mapName && window[mapName];
  if (map && form) {
    map.on("click", function (e) {
      var ll = e.latlng.wrap();
      setWgs84(ll.lng, ll.lat);
      if (window.L && L.popup) {
        L.popup().setLatLng(ll).setContent(ll.lng.toFixed(6) + ", " + ll.lat.toFixed(6) +
          ' <button type="submit" form="ck-point-form" class="ga-button">OK</button>').openOn(map);
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

// Planner pages. On the site page: a small map to pick the new site of a relocation by a
// click (fills the coordinate fields as WGS84). Works without tiles (intranet, no internet).
(function () {
  'use strict';
  var box = document.getElementById('pl-pick-map');
  if (!box || typeof L === 'undefined') { return; }
  var lonIn = document.getElementById('pl-new-lon');
  var latIn = document.getElementById('pl-new-lat');
  var crsIn = document.getElementById('pl-crs');
  var lon = parseFloat(box.dataset.lon), lat = parseFloat(box.dataset.lat);
  var map = null, marker = null;

  function show() {
    if (map) { map.invalidateSize(); return; }
    map = L.map(box, {attributionControl: false}).setView([lat || 35.2, lon || 113.2], 11);
    if (box.dataset.tiles === 'osm') {
      L.tileLayer('https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png', {maxZoom: 18}).addTo(map);
    }
    L.circleMarker([lat, lon], {radius: 6, color: '#111', fillOpacity: 0.8}).addTo(map);
    var nlon = parseFloat(lonIn.value), nlat = parseFloat(latIn.value);
    if (crsIn.value === 'wgs84' && isFinite(nlon) && isFinite(nlat)) {
      marker = L.circleMarker([nlat, nlon], {radius: 7, color: '#d62728'}).addTo(map);
    }
    map.on('click', function (e) {
      lonIn.value = e.latlng.lng.toFixed(6);
      latIn.value = e.latlng.lat.toFixed(6);
      crsIn.value = 'wgs84';
      if (marker) { marker.setLatLng(e.latlng); } else {
        marker = L.circleMarker(e.latlng, {radius: 7, color: '#d62728'}).addTo(map);
      }
    });
  }
  var details = box.closest('details');
  if (details && !details.open) {
    details.addEventListener('toggle', function () { if (details.open) { show(); } });
  } else { show(); }
})();

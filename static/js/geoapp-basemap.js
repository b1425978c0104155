// geoappBasemap: the app's own basemap (TILES=local), drawn with nothing from the internet.
//
// Written by geoapp.maps.base.LocalTiles as geoappBasemap.add(map, spec):
// - spec.mode "raster": a plain L.tileLayer on the app's /tiles/{z}/{x}/{y}.png|jpg|webp;
// - spec.mode "vector": Mapbox vector tiles from the app's /tiles/{z}/{x}/{y}.pbf drawn on
//   canvas by the vendored protomaps-leaflet (static/vendor/protomaps-leaflet, no worker);
// - spec.mode "inline": a map file opened from disk: the same layers carried in the file as
//   GeoJSON (spec.layers) and drawn on canvas, labels as plain text markers.
// The layers of the city's own package (city, counties, urban_core, rivers, yellow_river,
// canal, places) have the style below; any other vector layer a bureau's file holds gets a
// plain grey one. When the base has drawn, window.__geoappBasemapDrawn is set (for tests).
(function () {
  "use strict";
  if (window.geoappBasemap) { return; }

  var BACKGROUND = "#f2efe9";
  // Painted in this order (first at the bottom).
  var STYLE = [
    {layer: "city", kind: "fill", fill: "#fbfaf6", stroke: "#7a6a58", width: 2.2},
    {layer: "counties", kind: "fill", fill: "#f7f4ec", opacity: 0.0, stroke: "#a89a88",
     width: 1, dash: [5, 3]},
    {layer: "urban_core", kind: "fill", fill: "#e8ddd0", opacity: 0.9, stroke: "#d2c2ae", width: 0.8},
    {layer: "canal", kind: "line", color: "#6fa8dc", width: 1.6},
    {layer: "rivers", kind: "line", color: "#7fb2e5", width: 1.4},
    {layer: "yellow_river", kind: "line", color: "#5b9bd5", width: 4}
  ];
  var KNOWN = {places: true};
  STYLE.forEach(function (s) { KNOWN[s.layer] = true; });

  function drawn() { window.__geoappBasemapDrawn = true; }

  function vectorRules(spec) {
    var P = window.protomapsL;
    var paint = [];
    var labels = [];
    var others = (spec.layers || []).filter(function (name) { return !KNOWN[name]; });
    others.forEach(function (name) {
      paint.push({dataLayer: name, symbolizer: new P.PolygonSymbolizer({fill: "#e4e0d8", opacity: 0.6}),
                  filter: function (z, f) { return f.geomType === P.GeomType.Polygon; }});
      paint.push({dataLayer: name, symbolizer: new P.LineSymbolizer({color: "#b9b2a6", width: 1}),
                  filter: function (z, f) { return f.geomType === P.GeomType.Line; }});
      labels.push({dataLayer: name, symbolizer: new P.CenteredTextSymbolizer({
        labelProps: ["name:zh", "name"], fill: "#555", stroke: "#fff", width: 2,
        font: "12px sans-serif"}),
                   filter: function (z, f) { return f.geomType === P.GeomType.Point; }});
    });
    STYLE.forEach(function (s) {
      if (s.kind === "fill") {
        paint.push({dataLayer: s.layer, symbolizer: new P.PolygonSymbolizer({
          fill: s.fill, opacity: s.opacity === undefined ? 1 : s.opacity})});
        paint.push({dataLayer: s.layer, symbolizer: new P.LineSymbolizer({
          color: s.stroke, width: s.width, dash: s.dash})});
      } else {
        paint.push({dataLayer: s.layer, symbolizer: new P.LineSymbolizer({
          color: s.color, width: s.width, lineCap: "round", lineJoin: "round"})});
      }
    });
    labels.push({dataLayer: "places", symbolizer: new P.CenteredTextSymbolizer({
      labelProps: ["name"], fill: "#5a4a3a", stroke: "#ffffff", width: 2.5,
      font: "13px sans-serif"})});
    return {paint: paint, labels: labels};
  }

  function bounds(spec) { return spec.bounds ? L.latLngBounds(spec.bounds) : undefined; }

  function vector(map, spec) {
    var rules = vectorRules(spec);
    map.getContainer().style.background = BACKGROUND;
    var layer = window.protomapsL.leafletLayer({
      url: spec.url, paintRules: rules.paint, labelRules: rules.labels,
      backgroundColor: BACKGROUND, maxDataZoom: spec.maxzoom, minZoom: 0,
      maxZoom: map.getMaxZoom() || 19, bounds: bounds(spec),
      attribution: spec.attribution || ""
    });
    layer.on("load", drawn);
    return layer.addTo(map);
  }

  function raster(map, spec) {
    var layer = L.tileLayer(spec.url, {
      minZoom: 0, maxZoom: map.getMaxZoom() || 19, minNativeZoom: spec.minzoom,
      maxNativeZoom: spec.maxzoom, bounds: bounds(spec), attribution: spec.attribution || ""
    });
    layer.on("load", drawn);
    return layer.addTo(map);
  }

  function inline(map, spec) {
    var pane = map.getPane("geoappBase") || map.createPane("geoappBase");
    pane.style.zIndex = 250;  // above the tile pane (200), below every overlay (400)
    pane.style.pointerEvents = "none";
    var renderer = L.canvas({pane: "geoappBase", padding: 0.5});
    map.getContainer().style.background = BACKGROUND;
    var group = L.layerGroup();
    var layers = spec.layers || {};
    STYLE.forEach(function (s) {
      var data = layers[s.layer];
      if (!data) { return; }
      var style = s.kind === "fill"
        ? {color: s.stroke, weight: s.width, fillColor: s.fill,
           fillOpacity: s.opacity === undefined ? 1 : s.opacity,
           dashArray: s.dash ? s.dash.join(" ") : null}
        : {color: s.color, weight: s.width, lineCap: "round", lineJoin: "round"};
      group.addLayer(L.geoJSON(data, {pane: "geoappBase", renderer: renderer,
                                      interactive: false, style: style}));
    });
    ((layers.places || {}).features || []).forEach(function (f) {
      var c = f.geometry.coordinates;
      var label = document.createElement("span");
      label.textContent = String(f.properties.name || "");
      group.addLayer(L.marker([c[1], c[0]], {
        pane: "geoappBase", interactive: false, keyboard: false,
        icon: L.divIcon({className: "geoapp-base-label", html: label.outerHTML,
                         iconSize: null})
      }));
    });
    group.addTo(map);
    drawn();
    return group;
  }

  window.geoappBasemap = {
    style: STYLE,
    add: function (map, spec) {
      spec = spec || {};
      if (spec.mode === "vector") { return vector(map, spec); }
      if (spec.mode === "raster") { return raster(map, spec); }
      if (spec.mode === "inline") { return inline(map, spec); }
      return null;
    }
  };
})();

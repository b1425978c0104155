#!/usr/bin/env bash
# Refresh the browser assets under static/vendor/ from the npm registry (maintainers only:
# the files are committed, so installs and intranet servers never need the network).
# The versions are the ones folium asks for from CDNs; geoapp.maps.assets maps each CDN URL
# to the local copy.
set -euo pipefail
cd "$(dirname "$0")/.."
out=static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() {  # fetch NAME@VERSION DEST_SUBDIR FILE...
  local spec=$1 dest=$2; shift 2
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  local tgz; tgz=$(ls -t "$work"/*.tgz | head -1)
  mkdir -p "$work/x" "$out/$dest"
  tar xzf "$tgz" -C "$work/x" --warning=no-unknown-keyword
  for f in "$@"; do cp -r "$work/x/package/$f" "$out/$dest/"; done
  rm -rf "$work/x" "$tgz"
}
rm -rf "$out"
fetch leaflet@1.9.3 leaflet dist/leaflet.js dist/leaflet.css dist/images LICENSE
fetch jquery@3.7.1 jquery dist/jquery.min.js LICENSE.txt
fetch bootstrap@5.2.2 bootstrap dist/js/bootstrap.bundle.min.js dist/css/bootstrap.min.css LICENSE
fetch leaflet.awesome-markers@2.0.5 awesome-markers dist/leaflet.awesome-markers.js dist/leaflet.awesome-markers.css dist/images
fetch @fortawesome/fontawesome-free@6.2.0 fontawesome css webfonts LICENSE.txt
fetch leaflet-measure@2.1.7 leaflet-measure dist/leaflet-measure.js dist/leaflet-measure.css dist/images
fetch leaflet.fullscreen@3.0.0 leaflet-fullscreen Control.FullScreen.js Control.FullScreen.css icon-fullscreen.svg LICENSE
fetch leaflet.markercluster@1.1.0 markercluster dist/leaflet.markercluster.js dist/MarkerCluster.css dist/MarkerCluster.Default.css
fetch leaflet-mouse-position@1.2.0 mouse-position src/L.Control.MousePosition.js src/L.Control.MousePosition.css
fetch leaflet-draw@1.0.2 leaflet-draw dist/leaflet.draw.js dist/leaflet.draw.css dist/images
# The vector-tile renderer of TILES=local (docs/basemap.md); its source map is not shipped.
fetch protomaps-leaflet@5.1.0 protomaps-leaflet dist/protomaps-leaflet.js LICENSE
sed -i '/^\/\/# sourceMappingURL=/d' "$out/protomaps-leaflet/protomaps-leaflet.js"
# leaflet-measure compiles its templates with new Function (needs CSP 'unsafe-eval') and
# crashes on canvas maps; the patch writes the templates out and guards the canvas case.
git apply scripts/patches/leaflet-measure-no-eval.patch
# Font Awesome: keep the minified stylesheet and the woff2/ttf fonts it names.
find "$out/fontawesome/css" -type f ! -name 'all.min.css' -delete
echo "vendored into $out:"; du -sh "$out"/*

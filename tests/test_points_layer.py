"""The canvas point layer (geoapp.maps.points): its browser code is a static file, linked by
pages from the app and inlined into standalone files; its words come through gettext; its
payload carries styles, segments and hits compactly."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import geopandas as gpd
import pytest
from babel.messages.pofile import read_po

from geoapp.maps.assets import OWN_ASSETS, UnknownAsset, localize_assets, own_asset
from geoapp.maps.base import base_map
from geoapp.maps.points import add_fast_points, encode_points

ROOT = Path(__file__).resolve().parent.parent


def _sites(n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": [f"S{i}" for i in range(n)], "name": [f"企业{i}" for i in range(n)],
         "kind": ["a", "b", "c"][:n]},
        geometry=gpd.points_from_xy([113.1 + i / 100 for i in range(n)], [35.2] * n),
        crs="EPSG:4326")


def _payloads(html: str) -> list[dict]:
    return [json.loads(m) for m in
            re.findall(r"new window\.GeoappPoints\((\{.*?\})\);\n", html)]


def test_every_own_asset_is_a_file_in_static_and_ships_in_the_wheel():
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    shipped = wheel["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert shipped["static"] == "geoapp/static"  # the whole folder, js/ and css/ included
    for path in OWN_ASSETS:
        assert (ROOT / "static" / path).is_file(), path
    with pytest.raises(UnknownAsset):
        own_asset("js/not-there.js")


def test_the_layer_script_defines_the_layer_once_and_is_no_python_string():
    js = (ROOT / "static/js/geoapp-points.js").read_text("utf-8")
    assert "window.GeoappPoints = L.Layer.extend(" in js
    assert "if (window.GeoappPoints) { return; }" in js  # a second copy changes nothing
    assert "geoappPopup: function (i)" in js  # what the stored-XSS browser test opens
    source = (ROOT / "geoapp/maps/points.py").read_text("utf-8")
    assert "L.Layer.extend" not in source and "getContext" not in source


@pytest.mark.parametrize("cdn", [True, False])
def test_own_assets_become_static_urls_whatever_the_intranet_setting(cdn):
    m = base_map((35.2, 113.2), 10, "none")
    add_fast_points(m, _sites(), "企业")
    localize_assets(m.get_root(), lambda p: "/app/static/" + p, cdn=cdn)
    html = m.get_root().render()
    assert '<script src="/app/static/js/geoapp-points.js"></script>' in html
    assert '<link rel="stylesheet" href="/app/static/css/geoapp-points.css"/>' in html
    assert "geoapp-static:" not in html
    # Leaflet itself stays on its CDN unless the CDN links are rewritten too.
    assert ("/app/static/vendor/leaflet/leaflet.js" in html) is cdn


def test_popup_words_come_through_gettext_and_default_to_chinese():
    english = {"编号": "ID", "类别": "Category", "规则命中": "Rule hits", "无命中": "No hits",
               "详情": "Details", "、": "; "}
    zh = encode_points(_sites(), "t")["labels"]
    assert zh == {"id": "编号", "cat": "类别", "hits": "规则命中", "nohits": "无命中",
                  "link": "详情", "sep": "、"}
    en = encode_points(_sites(), "t", gettext=lambda s: english.get(s, s))["labels"]
    assert en == {"id": "ID", "cat": "Category", "hits": "Rule hits", "nohits": "No hits",
                  "link": "Details", "sep": "; "}
    own = encode_points(_sites(), "t", gettext=lambda s: english.get(s, s), id_label="",
                        hits_label="Rule hits at the new site")["labels"]
    assert own["id"] == "" and own["hits"] == "Rule hits at the new site"


def test_english_catalogue_translates_the_layers_words():
    po = ROOT / "geoapp/translations/en/LC_MESSAGES/messages.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    for msgid in ("编号", "类别", "规则命中", "无命中", "详情", "、"):
        assert catalog.get(msgid) is not None and catalog.get(msgid).string, msgid


def test_styles_per_category_in_the_short_keys_the_browser_reads():
    p = encode_points(_sites(), "t", colour_by="kind",
                      categories={"a": ("甲", "#ff0000"), "b": ("乙", "#00ff00")},
                      styles={"b": {"stroke": "#123456", "weight": 3, "radius": 8,
                                    "dash": (6, 4)}},
                      default_style={"fill_opacity": 0.5})
    assert p["cats"] == [["", "#1f77b4"], ["甲", "#ff0000"], ["乙", "#00ff00"]]
    assert p["c"] == [1, 2, 0]
    assert p["st"] == [{"fa": 0.5}, None, {"s": "#123456", "w": 3, "r": 8, "dash": [6, 4]}]
    assert "st" not in encode_points(_sites(), "t")  # no styles: no table
    with pytest.raises(ValueError, match="colour"):
        encode_points(_sites(), "t", default_style={"colour": "#fff"})


def test_segments_carry_their_ends_and_drop_rows_without_one():
    sites = _sites()
    ends = gpd.GeoSeries(gpd.points_from_xy([113.5, None, 113.7], [35.5, None, 35.7]),
                         crs="EPSG:4326")
    p = encode_points(sites, "t", ends=ends)
    assert p["id"] == ["S0", "S2"]
    assert p["x2"] == [113_500_000, 113_700_000] and p["y2"] == [35_500_000, 35_700_000]
    with pytest.raises(ValueError, match="segment ends"):
        encode_points(sites, "t", ends=ends.iloc[:2])


def test_hit_without_a_distance_stays_unknown_not_zero():
    p = encode_points(_sites(), "t", hits={"S0": [("r1", None, "河"), ("r2", 12.25, "")]},
                      rules={"r1": ("规则一", "high")})
    assert p["hits"]["S0"] == [[0, None, "河"], [1, 12.2, ""]]
    assert p["rules"] == [["规则一", "high"], ["r2", ""]]


def test_tooltip_and_popup_class_only_when_asked():
    plain = encode_points(_sites(), "t")
    assert "tip" not in plain and "cls" not in plain
    p = encode_points(_sites(), "t", tooltip=2, popup_class="rl-new")
    assert p["tip"] == 2 and p["cls"] == "rl-new"


def test_names_that_look_like_script_cannot_end_the_inline_script():
    sites = _sites(1).assign(name=["</script><script>alert(1)</script>"])
    m = base_map((35.2, 113.2), 10, "none")
    add_fast_points(m, sites, "企业")
    html = m.get_root().render()
    assert "</script><script>alert(1)" not in html
    assert _payloads(html)[0]["name"] == ["</script><script>alert(1)</script>"]

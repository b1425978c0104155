"""The house rule of the layers: domain imports no I/O, web or mapping library."""

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "geoapp"
FORBIDDEN_IN_DOMAIN = ("flask", "folium", "geopandas", "shapely", "pyproj", "pandas",
                       "sqlite3", "geoapp.web", "geoapp.storage", "geoapp.spatial",
                       "geoapp.maps", "geoapp.services")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_domain_imports_nothing_from_flask_folium_or_the_upper_layers():
    files = sorted((PKG / "domain").rglob("*.py"))
    assert files
    for f in files:
        for mod in _imports(f):
            assert not any(mod == bad or mod.startswith(bad + ".") for bad in FORBIDDEN_IN_DOMAIN), \
                f"{f.name} imports {mod}"


def test_only_crs_module_names_epsg_codes():
    """CRS choices live in spatial/crs.py; elsewhere a code may appear in help text only."""
    code_literal = re.compile(r"""["'](?:EPSG|epsg):\d+["']|epsg\s*=\s*\d+|from_epsg\(\d""")
    offenders = [str(f.relative_to(PKG)) for f in PKG.rglob("*.py")
                 if f.name != "crs.py" and code_literal.search(f.read_text(encoding="utf-8"))]
    assert offenders == []


#: What web/ may not import: the map and data libraries (maps are built by services through
#: geoapp.maps) and the layers under the services.
FORBIDDEN_IN_WEB = ("folium", "branca", "geopandas", "shapely", "pandas", "numpy", "pyproj",
                    "matplotlib", "geoapp.maps", "geoapp.storage", "geoapp.exports")


def test_web_imports_no_map_or_data_library_and_nothing_under_the_services():
    files = sorted((PKG / "web").rglob("*.py"))
    assert files
    offenders = [f"{f.name} imports {mod}" for f in files for mod in sorted(_imports(f))
                 if any(mod == bad or mod.startswith(bad + ".") for bad in FORBIDDEN_IN_WEB)]
    assert offenders == []


def test_the_web_import_rule_sees_imports_inside_functions(tmp_path):
    """The rule above would miss nothing: an import in a function body counts too."""
    f = tmp_path / "route.py"
    f.write_text("def page():\n    import folium\n    from geoapp.maps.base import base_map\n",
                 encoding="utf-8")
    assert {"folium", "geoapp.maps.base"} <= _imports(f)


def test_no_route_builds_a_content_disposition_header_by_hand():
    """Downloads go through web/common.send_download (flask.send_file, RFC 6266 names)."""
    hand_made = [f.name for f in sorted((PKG / "web").rglob("*.py"))
                 if f.name != "common.py"
                 and re.search(r"""\[["']Content-Disposition["']\]\s*=|["']Content-Disposition["']\s*:""",
                               f.read_text(encoding="utf-8"))]
    assert hand_made == []


def test_one_helper_gives_routes_the_core_object():
    """No web module keeps its own copy of "the core from current_app.extensions"."""
    copies = [f.name for f in sorted((PKG / "web").rglob("*.py"))
              if f.name != "common.py" and re.search(r"def _?core\(", f.read_text(encoding="utf-8"))]
    assert copies == []


def test_routes_call_services_never_the_repository():
    """Every module that defines pages (a Blueprint) reads and writes through services."""
    offenders = []
    for f in sorted((PKG / "web").rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        if "Blueprint(" not in text:
            continue
        offenders += [f"{f.name}:{node.lineno}" for node in ast.walk(ast.parse(text))
                      if isinstance(node, ast.Attribute) and node.attr == "repo"]
    assert offenders == []


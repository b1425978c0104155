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

"""The layer management page's table: every source layer with its titles, feature count, last
replacement and whether only an admin may replace it.

Counts and the last change come from one cheap query each (no layer is read): the page must
stay quick however large the hotspot grid or the river network grows.
"""

from __future__ import annotations

from typing import Any

from geoapp.services.core import Geoapp
from geoapp.services.layer_import import PROTECTED_LAYERS
from geoapp.storage.vector_in import configure_gdal


def layer_summary(app: Geoapp) -> list[dict[str, Any]]:
    """One row per source layer (city.toml order): name, title_zh, title_en, count,
    protected, changed_at ("YYYY-MM-DD HH:MM:SS" UTC, "" if never replaced), changed_by."""
    counts = app.repo.feature_counts()
    last = app.repo.latest_changes("layer")
    rows = []
    for name, count in counts.items():
        spec = app.city.layers.get(name)
        rec = last.get(name)
        rows.append({"name": name, "title_zh": spec.title_zh if spec else name,
                     "title_en": spec.title_en if spec else name, "count": count,
                     "protected": name in PROTECTED_LAYERS,
                     "changed_at": str(rec["at"])[:19].replace("T", " ") if rec else "",
                     "changed_by": rec["user"] if rec else ""})
    return rows


def prepare_uploads() -> None:
    """Switch off GDAL's remote and code-running features before any uploaded file is read
    (idempotent; the readers do it again)."""
    configure_gdal()

"""A Simplified Chinese font for server-side images.

matplotlib's bundled DejaVu fonts have no CJK glyphs: county names and titles would come out
as empty boxes. The project's own install brings Noto Sans CJK SC (SIL OFL) through the
``mplfonts`` wheel, so no system package is needed; a system Noto CJK (Debian's
``fonts-noto-cjk``) is the fallback. The font file is registered with matplotlib once per
process and then named explicitly wherever text is drawn.

The wheel's folder is found without importing it (importing mplfonts loads all of matplotlib),
and matplotlib itself is imported by the functions that need it: it adds about 0.5 s to the
start of every process that loads this module.
"""

from __future__ import annotations

import importlib.util
import logging
from functools import cache
from pathlib import Path

from geoapp.domain.errors import ConfigError

log = logging.getLogger(__name__)

#: Preferred files inside the mplfonts wheel, best first.
_PACKAGED = ("NotoSansCJKsc-Regular.otf", "SourceHanSerifSC-Regular.otf")
#: System locations tried when the wheel is missing.
_SYSTEM = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


@cache
def cjk_font_path() -> Path:
    """The CJK font file the exports use; ConfigError if none is installed."""
    spec = importlib.util.find_spec("mplfonts")
    for package in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(package).resolve() / "fonts"
        for name in _PACKAGED:
            if (folder / name).is_file():
                return folder / name
    for cand in _SYSTEM:
        if Path(cand).is_file():
            return Path(cand)
    raise ConfigError("no Simplified Chinese font found: install the project's dependencies "
                      "(the mplfonts package) or the system package fonts-noto-cjk")


@cache
def register_cjk_font() -> str:
    """Register the CJK font with matplotlib and return its family name."""
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    log.debug("CJK font %s from %s", name, path)
    return name


def cjk_font_properties(size: float = 10.0):
    """FontProperties pointing at the CJK file itself, so nothing can fall back silently."""
    from matplotlib.font_manager import FontProperties

    register_cjk_font()
    return FontProperties(fname=str(cjk_font_path()), size=size)

"""Settings as data: every setting has a default, a type and help text.

Precedence, lowest first: the defaults below <- ``geoapp.toml`` in the instance folder <-
``GEOAPP_<NAME>`` environment variables <- the mapping passed to ``create_app(config)``.
README.md and docs/configuration.md list the same table; a test keeps them in step.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import sys
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoapp.domain.errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIX = "GEOAPP_"
INSTANCE_FILE = "geoapp.toml"
#: Environment variable naming the instance folder (database, geoapp.toml).
INSTANCE_ENV = "GEOAPP_INSTANCE_PATH"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    type: type
    help: str


def _package_root() -> Path:
    return Path(__file__).resolve().parent


def default_instance_path(package_dir: str | os.PathLike | None = None,
                          prefix: str | None = None) -> Path:
    """The instance folder ``create_app`` uses when given none: Flask's rule for the geoapp
    package, ``instance/`` beside the package in a checkout and ``<prefix>/var/
    geoapp-instance`` when it is installed into Python or a virtualenv.

    Worked out here rather than by Flask so that commands which serve no page do not import
    Flask (about 220 ms); a test keeps the two in step. ``package_dir`` (the folder holding
    the ``geoapp`` package) and ``prefix`` (``sys.prefix``) are for tests.
    """
    where = Path(os.path.abspath(package_dir or _package_root().parent))
    base = Path(os.path.abspath(prefix or sys.prefix))
    if where.is_relative_to(base):  # installed into this Python
        return base / "var" / "geoapp-instance"
    if where.name.lower() == "site-packages":  # installed into a virtualenv
        parent = where.parent
        if parent.name.lower() == "lib":  # Windows: prefix/lib/site-packages
            return parent.parent / "var" / "geoapp-instance"
        if parent.parent.name.lower() == "lib":  # prefix/lib/pythonX.Y/site-packages
            return parent.parent.parent / "var" / "geoapp-instance"
        return parent / "var" / "geoapp-instance"
    return where / "instance"  # a checkout


def instance_path(environ: Mapping[str, str] | None = None) -> Path:
    """The instance folder of the command line, ``geoapp serve`` and the production entry:
    ``GEOAPP_INSTANCE_PATH`` if set, else :func:`default_instance_path` — never the
    working directory, so every command finds the same database wherever it is run."""
    env = os.environ if environ is None else environ
    given = (env.get(INSTANCE_ENV) or "").strip()
    if given:
        return Path(given).expanduser().absolute()
    return default_instance_path()


def default_data_dir() -> Path:
    """The embedded data: inside the installed wheel, or the checkout's data/ folder."""
    here = _package_root()
    for cand in (here / "data", here.parent / "data"):
        if (cand / "city.toml").is_file():
            return cand
    return here.parent / "data"


SETTINGS: tuple[Setting, ...] = (
    Setting("DATA_DIR", "", str,
            "Folder with the city's source data (city.toml, boundaries/, sites/). "
            "Empty: the embedded Jiaozuo data."),
    Setting("DATABASE", "", str,
            "Path of the GeoPackage database. Empty: geoapp.gpkg in the instance folder. "
            "Built from DATA_DIR on first start."),
    Setting("STORAGE_BACKEND", "gpkg", str,
            "Storage backend by name: gpkg (GeoPackage, embedded) or postgis (PostgreSQL "
            "with PostGIS at DATABASE_URL, shared by several servers)."),
    Setting("DATABASE_URL", "", str,
            "postgresql:// URL of the PostGIS database, for STORAGE_BACKEND=postgis "
            "(docs/postgis.md)."),
    Setting("RULES_FILE", "", str,
            "YAML file with the restriction rules. Empty: rules.yaml in DATA_DIR."),
    Setting("METRIC_CRS", "", str,
            "CRS distances are measured in, e.g. EPSG:4547. Empty: city.toml's metric_crs, "
            "else the CGCS2000 3-degree Gauss-Krüger zone of the city's centroid."),
    Setting("TILES", "osm", str,
            "Basemap tiles: osm, tianditu (needs TIANDITU_KEY), amap (overlays shifted to "
            "GCJ-02), local (the app's own tile file LOCAL_TILES, no internet; the default "
            "when INTRANET is on) or none."),
    Setting("LOCAL_TILES", "", str,
            "PMTiles or MBTiles file (raster or vector tiles) served at /tiles for "
            "TILES=local; a relative path is in the instance folder. Empty: the city's own "
            "basemap package, basemap/basemap.pmtiles in DATA_DIR (docs/basemap.md)."),
    Setting("TIANDITU_KEY", "", str, "Tianditu (天地图) API key, for TILES=tianditu."),
    Setting("INTRANET", False, bool,
            "Serve every script, stylesheet and font from static/ so pages work with no "
            "internet. `geoapp serve` turns it on unless set to false."),
    Setting("SECRET_KEY", "dev-insecure-change-me", str,
            "Key that signs session cookies. Production (`geoapp serve --prod`, "
            "geoapp.web.prod) refuses to start with the default, one under 32 characters or "
            "a low-entropy one (few distinct characters, repeats, whitespace)."),
    Setting("COOKIE_SECURE", True, bool,
            "In production, mark the session cookie Secure so browsers send it over HTTPS "
            "only. Set false on a plain-HTTP intranet, or nobody can stay logged in. The "
            "development server never sets it."),
    Setting("HSTS_MAX_AGE", 0, int,
            "Strict-Transport-Security max-age in seconds sent with every response; 0 sends "
            "no header. Only for sites served over HTTPS."),
    Setting("TRUSTED_PROXIES", "", str,
            "Comma-separated addresses (or CIDR networks) of reverse proxies whose "
            "X-Forwarded-For is believed for the client address; the right-most address not "
            "in this list is the client. Empty: none, the direct peer is the client."),
    Setting("WORKERS", 0, int,
            "Worker processes of `geoapp serve --prod` (granian). 0: one per CPU core."),
    Setting("MAX_UPLOAD_MB", 50, int, "Largest accepted upload, in megabytes."),
    Setting("HEAVY_UPLOADS", 1, int,
            "File uploads (flag, layer, ledger, weekly imports) each server process works on "
            "at once; one more is answered 503 with Retry-After, so uploads never take every "
            "request thread from the inspectors' checks."),
    Setting("MAX_ROWS", 200000, int,
            "Most rows (or features) one uploaded file may hold; a bigger file is refused "
            "with a clear message instead of tying up the server."),
    Setting("PHOTO_MAX_MB", 15, int,
            "Largest inspection photo, in megabytes (each file; JPEG, PNG or WebP)."),
    Setting("PHOTO_MAX_COUNT", 12, int,
            "Most photos one inspection may keep; an upload that would pass it is refused "
            "whole."),
    Setting("PHOTO_MISMATCH_M", 200.0, float,
            "A photo whose EXIF GPS position is farther than this many metres from the "
            "checked point is marked 位置不符 (position mismatch)."),
    Setting("PHOTO_TIME_MISMATCH_H", 24.0, float,
            "A photo whose EXIF time is more than this many hours from its inspection's time "
            "is marked 拍摄时间与检查相差 N 天/小时 on the site page and the print view."),
    Setting("ENGINE_CACHE", True, bool,
            "Keep the built rule engine in the folder cache/ beside the database (the "
            "instance folder by default), so a new process (a geoapp command, a server "
            "worker) loads it instead of building it again while layers, sites, rules file "
            "and code are unchanged. The files are signed with a key derived from "
            "SECRET_KEY; false: always build."),
    Setting("DUE_SOON_DAYS", 14, int,
            "Days before a deadline (整改完成时限, a relocation milestone, a 两断三清 step) from "
            "which an open obligation shows as 即将到期 (due soon) on /overdue, the site page, "
            "the relocation map and the weekly bulletin (docs/deadlines.md)."),
    Setting("TWO_CUTS_DAYS", 7, int,
            "Days after a 散乱污 workshop's banned date by which water and power must be cut "
            "(断水, 断电); the data records only the dates they were done, so the due date is "
            "derived (docs/deadlines.md)."),
    Setting("THREE_CLEARS_DAYS", 15, int,
            "Days after a 散乱污 workshop's banned date by which raw materials, products and "
            "equipment must be cleared (清原料, 清产品, 清设备) (docs/deadlines.md)."),
    Setting("COMPLAINT_SOURCE_RADIUS_M", 500, int,
            "Ground distance in metres (measured in the city's metric CRS) within which a "
            "registered site of a matching type is listed as a suspected source (疑似污染源) of "
            "a 12369 complaint; the type mapping is [complaints.sources] in city.toml "
            "(docs/complaints.md)."),
    Setting("COMPLAINT_MAP_WEEKS", 4, int,
            "Weeks of 12369 complaints the overview map (一张图) draws: the last full week "
            "(or the latest earlier week with complaints) and the weeks before it."),
    Setting("INTERVIEW_WEEKS", 3, int,
            "Consecutive ISO weeks (Asia/Shanghai) a hotspot grid must be warned in, ending "
            "with the bulletin's week, to be on the 约谈 (interview) list on /interviews and in "
            "the weekly bulletin (docs/complaints.md)."),
    Setting("LANGUAGE", "zh", str, "Default UI language: zh (Simplified Chinese) or en."),
    Setting("LOG_LEVEL", "INFO", str, "Logging level: DEBUG, INFO, WARNING, ERROR."),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
DEFAULT_SECRET_KEY = SETTINGS_BY_NAME["SECRET_KEY"].default
MIN_SECRET_KEY_LENGTH = 32
#: A production key needs this many distinct characters and this many bits by the
#: character-frequency (Shannon) estimate. ``secrets.token_hex()`` (64 hex digits, the key
#: Flask's docs suggest) has all 16 digits only three times in four, hence 10, not 16;
#: ``secrets.token_urlsafe(48)`` has about 45 distinct characters and 340 bits.
MIN_SECRET_KEY_DISTINCT = 10
MIN_SECRET_KEY_BITS = 100


#: Largest share of a production key that words, keyboard runs or repeats of 5+ characters
#: may cover (random keys from ``secrets`` stay under about 0.25; word phrases exceed 0.45).
MAX_SECRET_KEY_WORDED = 0.35


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` is unfit to sign production cookies, or None: the default, too short,
    whitespace, too few distinct characters, a low Shannon-entropy estimate, one short piece
    repeated or a run of neighbouring characters (``abcdef...``, ``123456...``)."""
    if key == DEFAULT_SECRET_KEY:
        return "is the default"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"has {len(key)} characters"
    if any(c.isspace() for c in key):
        return "contains whitespace"
    distinct = len(set(key))
    if distinct < MIN_SECRET_KEY_DISTINCT:
        return f"has only {distinct} distinct characters"
    n = len(key)
    if any(n % k == 0 and key[:k] * (n // k) == key for k in range(1, n // 2 + 1)):
        return "repeats one short piece"
    steps = sum(abs(ord(b) - ord(a)) <= 1 for a, b in zip(key, key[1:], strict=False))
    if steps > (n - 1) / 2:
        return "is mostly a run of neighbouring characters"
    bits = -sum(c * math.log2(c / n) for c in Counter(key).values())
    if bits < MIN_SECRET_KEY_BITS:
        return f"looks guessable (about {bits:.0f} bits by character frequency)"
    # Words, keyboard runs and repeats (``geoapp-production-secret-key-2026``): zxcvbn finds
    # them; imported here because it costs ~40 ms and only a production start checks a key.
    from zxcvbn import zxcvbn

    found = zxcvbn(key[:100], user_inputs=["geoapp", DEFAULT_SECRET_KEY])["sequence"]
    worded = sum(len(m["token"]) for m in found
                 if m["pattern"] in ("dictionary", "spatial", "repeat") and len(m["token"]) >= 5)
    if worded > MAX_SECRET_KEY_WORDED * min(n, 100):
        return "is made of words, keyboard runs or repeats"
    return None


def check_production(values: dict[str, Any]) -> None:
    """Refuse to serve production with a guessable cookie-signing key.

    Anyone who knows the key can forge a session cookie and log in as any account, and the
    default is printed in the docs, so a production server must never start with it; nor
    with a key of repeated characters, whitespace or too few distinct characters.
    """
    key = str(values.get("SECRET_KEY") or "")
    what = secret_key_problem(key)
    if what is not None:
        raise ConfigError(
            f"SECRET_KEY {what}: production needs a random value of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters with at least {MIN_SECRET_KEY_DISTINCT} "
            "distinct ones and no whitespace. Set GEOAPP_SECRET_KEY (or SECRET_KEY in "
            "geoapp.toml), e.g. to the output of "
            "`python -c \"import secrets; print(secrets.token_urlsafe(48))\"`")


def worker_count(values: dict[str, Any]) -> int:
    """WORKERS, or one per CPU core when it is 0: granian does the HTTP work outside the GIL,
    so each worker keeps a core busy and more processes would only compete for the cores."""
    workers = int(values.get("WORKERS") or 0)
    if workers < 0:
        raise ConfigError(f"WORKERS must be 0 (automatic) or more, got {workers}")
    return workers or (os.cpu_count() or 1)


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    if setting.type is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{origin}: {setting.name} must be true or false, got {value!r}")
    if setting.type is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: {setting.name} must be a whole number, got {value!r}") from None
    return str(value)


def load_settings(instance_path: str | os.PathLike | None = None,
                  overrides: dict[str, Any] | None = None,
                  environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Resolve every setting from defaults, instance file, environment and overrides."""
    env = os.environ if environ is None else environ
    values = {s.name: s.default for s in SETTINGS}
    sources: list[tuple[str, dict[str, Any]]] = []
    if instance_path is not None:
        path = Path(instance_path) / INSTANCE_FILE
        if path.is_file():
            try:
                with path.open("rb") as fh:
                    data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: not valid TOML: {exc}") from None
            sources.append((str(path), {k.upper(): v for k, v in data.items()}))
    sources.append(("environment", {k[len(ENV_PREFIX):]: v for k, v in env.items()
                                    if k.startswith(ENV_PREFIX)}))
    if overrides:
        sources.append(("create_app config", {k.upper(): v for k, v in overrides.items()}))
    given: set[str] = set()
    for origin, mapping in sources:
        given.update(mapping)
        for key, value in mapping.items():
            setting = SETTINGS_BY_NAME.get(key)
            if setting is None:
                if key == "INSTANCE_PATH":  # where this file lives, not a setting
                    continue
                if origin == "environment":
                    log.warning("ignoring unknown setting %s%s", ENV_PREFIX, key)
                    continue
                # Flask's own keys (TESTING, SERVER_NAME...) pass through untouched.
                values[key] = value
                continue
            values[key] = _coerce(setting, value, origin)
    if not values["DATA_DIR"]:
        values["DATA_DIR"] = str(default_data_dir())
    if instance_path is not None and not values["DATABASE"]:
        values["DATABASE"] = str(Path(instance_path) / "geoapp.gpkg")
    if not values["RULES_FILE"]:
        values["RULES_FILE"] = str(Path(values["DATA_DIR"]) / "rules.yaml")
    _local_tiles(values, instance_path, tiles_given="TILES" in given)
    if values["LANGUAGE"] not in ("zh", "en"):
        raise ConfigError(f"LANGUAGE must be zh or en, got {values['LANGUAGE']!r}")
    if values["HSTS_MAX_AGE"] < 0:
        raise ConfigError(f"HSTS_MAX_AGE must be 0 (off) or more, got {values['HSTS_MAX_AGE']}")
    for name in ("COMPLAINT_SOURCE_RADIUS_M", "COMPLAINT_MAP_WEEKS", "INTERVIEW_WEEKS"):
        if values[name] < 1:
            raise ConfigError(f"{name} must be 1 or more, got {values[name]}")
    for name in ("DUE_SOON_DAYS", "TWO_CUTS_DAYS", "THREE_CLEARS_DAYS"):
        if values[name] < 0:
            raise ConfigError(f"{name} must be 0 or more, got {values[name]}")
    trusted_proxies(values["TRUSTED_PROXIES"])  # a typo is an error now, not at a login
    return values


#: Every TILES choice (geoapp.maps.base.TILES names the same).
TILES_CHOICES = ("osm", "tianditu", "amap", "none", "local")
#: The city's own basemap package inside DATA_DIR (LOCAL_TILES empty).
DEFAULT_LOCAL_TILES = Path("basemap") / "basemap.pmtiles"


def _local_tiles(values: dict[str, Any], instance_path, *, tiles_given: bool) -> None:
    """TILES checked; LOCAL_TILES made an absolute path (relative: in the instance folder;
    empty: the package in DATA_DIR). INTRANET without an explicit TILES means TILES=local,
    or none (with a warning) when there is no package to serve."""
    if values["TILES"] not in TILES_CHOICES:
        raise ConfigError(f"TILES must be osm, tianditu, amap, local or none, got "
                          f"{values['TILES']!r}")
    given = str(values.get("LOCAL_TILES") or "").strip()
    if not given:
        path = Path(values["DATA_DIR"]) / DEFAULT_LOCAL_TILES
    else:
        path = Path(given).expanduser()
        if not path.is_absolute() and instance_path is not None:
            path = Path(instance_path) / path
    values["LOCAL_TILES"] = str(path)
    if values["INTRANET"] and not tiles_given:
        if path.is_file():
            values["TILES"] = "local"
        else:
            log.warning("INTRANET is on but there is no basemap file %s: no basemap "
                        "(set LOCAL_TILES, docs/basemap.md)", path)
            values["TILES"] = "none"


def trusted_proxies(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """TRUSTED_PROXIES parsed: each comma-separated entry an address or a CIDR network."""
    nets = []
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or network") \
                from None
    return tuple(nets)

"""The built rule engine kept on disk, so a new process (a ``geoapp`` command, a server
worker) loads it instead of building it again.

A cache file is ``cache/engine-<name>.pickle`` beside the database (the instance folder by
default). Its key names everything the engine is built from:

* the rules file's path and the SHA-256 of its content;
* the newest audit row that can change the engine (id and time), the database's identity
  (the GeoPackage file's resolved path, device and inode — a restore renames a new file over
  it —, or the PostGIS database's host, port and name) and its build facts (built_at,
  content hash), so a restored older backup followed by as many edits never reuses the file
  written before the restore;
* the city and the metric CRS;
* the code: the contents of ``geoapp.spatial``, ``geoapp.domain``, the module building the
  engine and this one, the Python version and the versions of numpy, shapely, pyproj,
  pandas and geopandas — an upgraded install never unpickles an object of another one.

The file is authenticated before anything in it is unpickled: a BLAKE2b MAC keyed with a key
derived from SECRET_KEY covers the header, the key and the pickled bytes. A file that is
truncated, changed, written under another SECRET_KEY or for another key is ignored (with a
warning) and the engine is built again. Files are written to a temporary name and renamed
into place, so a reader never sees half a file; a failure to write (a read-only folder, a
full disk) is logged and the built engine used all the same. The newest ``KEEP`` files are
kept, older ones removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import pickle
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geoapp.services import Geoapp
    from geoapp.spatial.engine import RuleEngine

log = logging.getLogger(__name__)

#: First bytes of every cache file (the layout's version is part of it).
MAGIC = b"GEOAPP-ENGINE-CACHE\x001\n"
MAC_SIZE = 32
_LEN_SIZE = 4
PREFIX, SUFFIX = "engine-", ".pickle"
#: Cache files kept in the folder (the newest by modification time; a load touches its file).
KEEP = 3
#: A temporary file older than this is left over from a writer that died: removed.
STALE_TEMP_S = 3600
#: Packages whose objects the engine holds (or whose behaviour it was built with).
PACKAGES = ("numpy", "shapely", "pyproj", "pandas", "geopandas")

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # geoapp/


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the sources that build the engine, the Python version and the versions of
    the packages it is made of: computed once per process."""
    h = hashlib.sha256()
    files = sorted([*(_PACKAGE_DIR / "spatial").rglob("*.py"),
                    *(_PACKAGE_DIR / "domain").rglob("*.py"),
                    _PACKAGE_DIR / "services" / "checks.py", Path(__file__).resolve()])
    for f in files:
        h.update(f.relative_to(_PACKAGE_DIR).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    h.update(f"{sys.version}|{platform.machine()}|{pickle.HIGHEST_PROTOCOL}".encode())
    for name in PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"|{name}={version}".encode())
    return h.hexdigest()


def cache_folder(settings: dict[str, Any]) -> Path | None:
    """``cache/`` beside DATABASE: the instance folder unless DATABASE names another (for
    PostGIS too, DATABASE names a file there); None when there is none."""
    db = str(settings.get("DATABASE") or "")
    return Path(db).absolute().parent / "cache" if db else None


def enabled(settings: dict[str, Any]) -> bool:
    return bool(settings.get("ENGINE_CACHE", True)) and cache_folder(settings) is not None


def mac_key(secret: str) -> bytes:
    """The key of the files' MAC, derived from SECRET_KEY (never the key itself)."""
    return hashlib.blake2b(secret.encode("utf-8"), digest_size=32,
                           person=b"geoapp-engine").digest()


def database_identity(app: Geoapp) -> dict[str, Any]:
    """Which database this is: the same id in two databases must not look alike."""
    backend = str(app.settings.get("STORAGE_BACKEND") or "gpkg").strip().lower()
    if backend == "postgis":
        return {"backend": backend, "where": getattr(app.repo, "where", repr(app.repo))}
    path = Path(str(app.settings.get("DATABASE") or "")).resolve()
    try:
        st = path.stat()
        stamp = [st.st_dev, st.st_ino]
    except OSError:
        stamp = None
    return {"backend": backend, "path": str(path), "file": stamp}


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def disk_key(app: Geoapp, exclude: tuple[str, ...]) -> dict[str, Any]:
    """Everything the engine is built from, as JSON-able data (see the module's text)."""
    rules = Path(app.settings["RULES_FILE"])
    last = app.repo.last_change(exclude=exclude) or {}
    meta = app.repo.meta()
    return {
        "rules": {"path": str(rules.absolute()), "sha256": _sha256(rules)},
        "change": {"id": int(last.get("id") or 0), "at": str(last.get("at") or "")},
        "database": database_identity(app),
        "built": {"at": str(meta.get("built_at") or ""),
                  "content": str(meta.get("content_hash") or "")},
        "city": app.city.name,
        "metric_crs": app.metric_crs,
        "code": code_fingerprint(),
    }


@dataclass(frozen=True)
class EngineCache:
    """The cache file of one key in one folder."""

    folder: Path
    key: bytes  # the key as canonical JSON
    secret: bytes  # the MAC key

    @classmethod
    def for_app(cls, app: Geoapp, key: dict[str, Any]) -> EngineCache | None:
        if not enabled(app.settings):
            return None
        folder = cache_folder(app.settings)
        assert folder is not None
        text = json.dumps(key, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        return cls(folder, text.encode("ascii"), mac_key(str(app.settings.get("SECRET_KEY") or "")))

    @property
    def path(self) -> Path:
        # Named by a keyed hash: two SECRET_KEYs (a command run without the server's) keep
        # files of their own instead of overwriting each other's.
        name = hashlib.blake2b(self.key, key=self.secret, digest_size=16).hexdigest()
        return self.folder / f"{PREFIX}{name}{SUFFIX}"

    def _mac(self, parts: list[bytes | memoryview]) -> bytes:
        h = hashlib.blake2b(key=self.secret, digest_size=MAC_SIZE, person=b"engine-file")
        for part in parts:
            h.update(part)
        return h.digest()

    def load(self) -> RuleEngine | None:
        """The engine in the cache file, or None: no file, another key, or a file that fails
        its MAC (never unpickled)."""
        path = self.path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("engine cache %s cannot be read (%s); building the engine", path, exc)
            return None
        view = memoryview(data)
        head = len(MAGIC) + MAC_SIZE + _LEN_SIZE
        ok = len(data) >= head and view[:len(MAGIC)] == MAGIC
        if ok:
            size = int.from_bytes(view[head - _LEN_SIZE:head], "big")
            ok = len(data) >= head + size
        if ok:
            mac = bytes(view[len(MAGIC):len(MAGIC) + MAC_SIZE])
            ok = hmac.compare_digest(mac, self._mac([view[:len(MAGIC)],
                                                     view[len(MAGIC) + MAC_SIZE:]]))
        if not ok:
            log.warning("engine cache %s failed its check (changed, truncated or written "
                        "under another SECRET_KEY): ignored, building the engine", path)
            return None
        if view[head:head + size] != self.key:
            log.warning("engine cache %s was written for other inputs: ignored", path)
            return None
        try:
            engine = pickle.loads(view[head + size:])
        except Exception as exc:  # authentic but unreadable here: build instead
            log.warning("engine cache %s cannot be unpickled (%s): ignored", path, exc)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # the newest used file is the last pruned
        return engine

    def store(self, engine: RuleEngine) -> Path | None:
        """Write the cache file atomically (temporary file, then rename); None and a log
        line when it cannot be written — never an error."""
        path = self.path
        tmp = None
        try:
            payload = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
            length = len(self.key).to_bytes(_LEN_SIZE, "big")
            mac = self._mac([MAGIC, length, self.key, payload])
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp",
                                        dir=self.folder)
            tmp = Path(name)
            with os.fdopen(fd, "wb") as fh:
                for part in (MAGIC, mac, length, self.key, payload):
                    fh.write(part)
            os.replace(tmp, path)
            tmp = None
        except Exception as exc:  # the engine is built; only the next process pays again
            log.warning("engine cache %s not written: %s", path, exc)
            return None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        prune(self.folder, keep=path)
        return path


def prune(folder: Path, keep: Path | None = None, count: int = KEEP) -> list[Path]:
    """Remove all but the newest ``count`` cache files (never ``keep``) and temporary files
    left by a writer that died; the paths removed."""
    removed = []
    try:
        entries = [(p, p.stat().st_mtime) for p in folder.iterdir()
                   if p.name.startswith((PREFIX, f".{PREFIX}"))]
    except OSError:
        return removed
    now = time.time()
    files = sorted(((p, m) for p, m in entries if p.name.endswith(SUFFIX)),
                   key=lambda e: e[1], reverse=True)
    old = [p for p, _ in files[count:] if p != keep]
    old += [p for p, m in entries if p.name.endswith(".tmp") and now - m > STALE_TEMP_S]
    for p in old:
        try:
            p.unlink()
            removed.append(p)
        except OSError as exc:
            log.info("engine cache %s not removed: %s", p, exc)
    return removed

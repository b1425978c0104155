"""The rule engine on disk (services/engine_cache.py): a new process loads the engine its
inputs built instead of building it again; any change of those inputs, a restored backup or
a file it did not write itself makes it build."""

from __future__ import annotations

import gc
import logging
import os
import pickle
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from geoapp.config import load_settings
from geoapp.services import checks, engine_cache, open_geoapp
from geoapp.services.maintenance import backup_database, restore_database

from webutil import on_postgis

RULES = Path(__file__).resolve().parent.parent / "data" / "rules.yaml"
#: A few points in and around Jiaozuo, with the site types the rules tell apart.
POINTS = [(113.24, 35.22, "livestock_farm"), (113.20, 35.25, "enterprise"),
          (113.35, 35.10, "scattered_workshop"), (112.95, 35.30, "enterprise"),
          (113.60, 35.05, "livestock_farm")]


def _open(instance: Path, **overrides):
    return open_geoapp(load_settings(instance, overrides=overrides or None, environ={}),
                       init=False)


def _engine(app) -> tuple[object, str]:
    eng = checks.engine(app)
    return eng, app.cache["engine"].source


def _files(instance: Path) -> list[Path]:
    return sorted((instance / "cache").glob("engine-*.pickle"))


def _answers(eng) -> list:
    return [eng.check_point(x, y, site_type=t) for x, y, t in POINTS]


def _close(*apps) -> None:
    for app in apps:
        app.repo.close()
        app.cache.clear()
    gc.collect()


def test_a_new_process_loads_the_engine_its_inputs_built(instance: Path, caplog):
    first = _open(instance)
    built, source = _engine(first)
    assert source == "built"
    assert len(_files(instance)) == 1
    fresh = _answers(built)
    _close(first)
    second = _open(instance)  # a fresh core: nothing in memory
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="geoapp.services.checks"):
        loaded, source = _engine(second)
    assert source == "disk"
    assert any("loaded from" in r.getMessage() and "engine-" in r.getMessage()
               for r in caplog.records)
    assert not any("rule engine built" in r.getMessage() for r in caplog.records)
    assert _answers(loaded) == fresh
    assert any(r.hits for r in fresh)  # the points do break rules: a real comparison
    # the engine in memory is used from then on; off, the file is neither read nor written
    assert checks.engine(second) is loaded
    _close(second)
    off = _open(instance, ENGINE_CACHE=False)
    assert _engine(off)[1] == "built"
    assert checks.engine_cache_file(off) is None
    _close(off)


def _edit_layer(app) -> None:
    name = sorted({r.stored_layer for r in checks.engine(app).rules if r.stored_layer})[0]
    gdf = app.repo.layer(name)
    app.repo.replace_layer(name, gdf.iloc[:-1].copy(), user="test")


def _edit_site(app) -> None:
    site = app.repo.sites().iloc[0]
    app.repo.update_site(site["id"], {"name": f"{site['name']}（改）"}, user="test",
                         expected_version=int(site["version"]))


@pytest.mark.parametrize("edit", [_edit_layer, _edit_site], ids=["layer", "site"])
def test_an_edit_to_a_layer_or_site_changes_the_key_and_rebuilds(instance: Path, edit):
    app = _open(instance)
    assert _engine(app)[1] in ("built", "disk")
    before = checks.engine_cache_file(app)
    edit(app)
    _close(app)
    app = _open(instance)
    assert checks.engine_cache_file(app).path != before.path
    assert _engine(app)[1] == "built"
    assert len(_files(instance)) == 2
    _close(app)
    again = _open(instance)
    assert _engine(again)[1] == "disk"
    _close(again)


@pytest.mark.backends("gpkg")
def test_the_rules_files_content_is_in_the_key_not_only_its_stamp(instance: Path,
                                                                   tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    shutil.copyfile(RULES, rules)
    app = _open(instance, RULES_FILE=str(rules))
    assert _engine(app)[1] == "built"
    before = checks.engine_cache_file(app).path
    _close(app)
    # same size, same modification time, other content: a distance changed by one digit
    st = rules.stat()
    text = rules.read_text(encoding="utf-8")
    changed = text.replace("distance_m: 500", "distance_m: 600", 1)
    assert changed != text and len(changed.encode()) == len(text.encode())
    rules.write_text(changed, encoding="utf-8")
    os.utime(rules, ns=(st.st_atime_ns, st.st_mtime_ns))
    app = _open(instance, RULES_FILE=str(rules))
    assert checks.engine_cache_file(app).path != before
    assert _engine(app)[1] == "built"
    _close(app)


class _Marker:
    """Unpickling this creates a file: proof that a payload was run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _forge(cache: engine_cache.EngineCache, payload: bytes, secret: bytes) -> None:
    """Write ``payload`` at ``cache``'s path in the file layout, with a MAC under ``secret``."""
    length = len(cache.key).to_bytes(4, "big")
    forged = engine_cache.EngineCache(cache.folder, cache.key, secret)
    mac = forged._mac([engine_cache.MAGIC, length, cache.key, payload])
    cache.path.write_bytes(engine_cache.MAGIC + mac + length + cache.key + payload)


@pytest.mark.backends("gpkg")
def test_a_file_the_app_did_not_write_is_never_unpickled(instance: Path, tmp_path: Path,
                                                        caplog):
    app = _open(instance)
    assert _engine(app)[1] == "built"
    cache = checks.engine_cache_file(app)
    good = cache.path.read_bytes()
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(_Marker(marker))
    assert not marker.exists()
    pickle.loads(evil)  # the payload does what it says...
    assert marker.exists()
    marker.unlink()
    cases = {
        "one byte flipped": good[:-100] + bytes([good[-100] ^ 1]) + good[-99:],
        "truncated": good[:len(good) // 2],
        "header only": good[:len(engine_cache.MAGIC) + 10],
    }
    with caplog.at_level(logging.WARNING, logger="geoapp.services.engine_cache"):
        for what, data in cases.items():
            cache.path.write_bytes(data)
            assert cache.load() is None, what
        # ...but not here: a MAC under another key, or a valid-looking file with no MAC
        _forge(cache, evil, engine_cache.mac_key("some other secret key"))
        assert cache.load() is None
        _forge(cache, evil, b"\0" * 32)
        assert cache.load() is None
    assert not marker.exists()
    assert sum("failed its check" in r.getMessage() for r in caplog.records) == 5
    # with the app's own key the same bytes would be run: the MAC is what stops them
    _forge(cache, pickle.dumps("harmless"), cache.secret)
    assert cache.load() == "harmless"
    # end to end: a flipped byte makes the next process build, and the file is rewritten
    cache.path.write_bytes(cases["one byte flipped"])
    _close(app)
    app = _open(instance)
    with caplog.at_level(logging.WARNING, logger="geoapp.services.engine_cache"):
        assert _engine(app)[1] == "built"
    assert cache.path.read_bytes() != cases["one byte flipped"]
    _close(app)
    assert _engine(app2 := _open(instance))[1] == "disk"
    _close(app2)


@contextmanager
def _read_only(folder: Path):
    """``folder`` read-only, for root too (an immutable directory); skips where it cannot."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.backends("gpkg")
def test_a_read_only_cache_folder_still_works(instance: Path, caplog):
    folder = instance / "cache"
    folder.mkdir()
    with _read_only(folder):
        app = _open(instance)
        with caplog.at_level(logging.WARNING, logger="geoapp.services.engine_cache"):
            eng, source = _engine(app)
        assert source == "built" and eng.check_point(113.24, 35.22) is not None
        assert any("not written" in r.getMessage() for r in caplog.records)
        assert not list(folder.iterdir())  # no temporary file left either
        _close(app)
    app = _open(instance)
    assert _engine(app)[1] == "built"
    _close(app)
    with _read_only(folder):  # a file written before is still read
        app = _open(instance)
        assert _engine(app)[1] == "disk"
        _close(app)


def test_a_restored_backup_with_as_many_edits_has_another_key(instance: Path,
                                                              tmp_path: Path):
    settings = load_settings(instance, environ={})
    backup = tmp_path / ("b.dump" if on_postgis(settings) else "b.gpkg")
    backup_database(settings, backup)
    app = _open(instance)
    _edit_site(app)
    written = engine_cache.disk_key(app, checks._NOT_ENGINE_INPUTS)
    old = checks.engine_cache_file(app).path
    _close(app)
    restore_database(settings, backup)
    app = _open(instance)
    _edit_site(app)
    now = engine_cache.disk_key(app, checks._NOT_ENGINE_INPUTS)
    if not on_postgis(settings):  # the same change id, in another database file
        assert now["change"]["id"] == written["change"]["id"]
        assert now["database"]["file"] != written["database"]["file"]
    assert now != written
    assert checks.engine_cache_file(app).path != old
    _close(app)

"""Settings behave as documented: precedence, types, and the docs table matches the code."""

import re
from pathlib import Path

import pytest

from geoapp.config import SETTINGS, load_settings
from geoapp.domain.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _doc_rows(path: Path) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([A-Z_]+)` \| `GEOAPP_\1` \| `([^`]*)` \| (.+) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def _shown(default) -> str:
    if default == "":
        return "(empty)"
    return str(default).lower() if isinstance(default, bool) else str(default)


@pytest.mark.parametrize("doc", ["docs/configuration.md", "README.md"])
def test_every_setting_is_documented_with_its_default_and_help(doc):
    rows = _doc_rows(ROOT / doc)
    assert set(rows) == {s.name for s in SETTINGS}
    for s in SETTINGS:
        assert rows[s.name] == (_shown(s.default), s.help), s.name


def test_defaults_apply_without_instance_file_or_environment(tmp_path):
    values = load_settings(tmp_path, environ={})
    assert values["TILES"] == "osm"
    assert values["DATABASE"] == str(tmp_path / "geoapp.gpkg")
    assert values["RULES_FILE"].endswith("rules.yaml")


def test_environment_beats_instance_file_and_overrides_beat_both(tmp_path):
    (tmp_path / "geoapp.toml").write_text('TILES = "none"\nMAX_UPLOAD_MB = 7\n', encoding="utf-8")
    assert load_settings(tmp_path, environ={})["TILES"] == "none"
    env = {"GEOAPP_TILES": "amap", "GEOAPP_INTRANET": "yes"}
    values = load_settings(tmp_path, environ=env)
    assert (values["TILES"], values["MAX_UPLOAD_MB"], values["INTRANET"]) == ("amap", 7, True)
    assert load_settings(tmp_path, overrides={"TILES": "osm"}, environ=env)["TILES"] == "osm"


def test_wrong_type_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="MAX_UPLOAD_MB"):
        load_settings(tmp_path, environ={"GEOAPP_MAX_UPLOAD_MB": "lots"})
    with pytest.raises(ConfigError, match="TILES"):
        load_settings(tmp_path, environ={"GEOAPP_TILES": "google"})


@pytest.mark.parametrize("name", ["DUE_SOON_DAYS", "TWO_CUTS_DAYS", "THREE_CLEARS_DAYS"])
def test_a_negative_number_of_days_is_refused_at_start(tmp_path, name):
    with pytest.raises(ConfigError, match=name):
        load_settings(tmp_path, environ={f"GEOAPP_{name}": "-1"})
    assert load_settings(tmp_path, environ={f"GEOAPP_{name}": "0"})[name] == 0


def test_broken_instance_file_is_a_clear_error(tmp_path):
    (tmp_path / "geoapp.toml").write_text("TILES = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize("doc", ["docs/configuration.md", "README.md"])
def test_the_instance_folder_variable_is_in_the_settings_table(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    row = [line for line in text.splitlines() if line.startswith("| (instance folder) | ")]
    assert len(row) == 1 and "`GEOAPP_INSTANCE_PATH`" in row[0]
    assert "whatever the working directory" in row[0]

"""The command line finds its instance the same way from anywhere, says where it looked,
tells one story about the first account, and lists a check's layers by their names."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from geoapp import config
from geoapp.cli import main
from geoapp.storage import open_repository
from geoapp.web import prod

from webutil import copy_database, on_postgis

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "Zq3v-Lm8xT2pW9rY_kB4nH7cJ1dF6gS0aE5u"


# --------------------------------------------------------------------------- instance folder
def test_the_default_instance_folder_is_the_web_apps_own() -> None:
    assert config.default_instance_path() == Path(Flask("geoapp").instance_path)


@pytest.mark.parametrize("package_dir, prefix, expected", [
    ("/srv/geoapp", "/usr", "/srv/geoapp/instance"),
    ("/usr/lib/python3.12/site-packages", "/usr", "/usr/var/geoapp-instance"),
    ("/opt/venv/lib/python3.12/site-packages", "/usr", "/opt/venv/var/geoapp-instance"),
    ("/opt/venv/Lib/site-packages", "/usr", "/opt/venv/var/geoapp-instance"),
])
def test_the_default_follows_flasks_rule_for_installed_packages(package_dir, prefix,
                                                                 expected) -> None:
    assert config.default_instance_path(package_dir, prefix) == Path(expected)


def test_the_environment_names_the_instance_folder(tmp_path) -> None:
    env = {"GEOAPP_INSTANCE_PATH": str(tmp_path / "inst")}
    assert config.instance_path(env) == tmp_path / "inst"
    assert config.instance_path({}) == config.default_instance_path()
    assert prod.instance_path() == config.instance_path()


def test_every_working_directory_looks_in_the_same_place_and_says_where(
        tmp_path, monkeypatch) -> None:
    empty = tmp_path / "default-instance"
    monkeypatch.delenv("GEOAPP_INSTANCE_PATH", raising=False)
    monkeypatch.delenv("GEOAPP_DATABASE", raising=False)
    monkeypatch.setattr(config, "default_instance_path", lambda: empty)
    messages = []
    for cwd in (tmp_path / "a", tmp_path / "b" / "deeper"):
        cwd.mkdir(parents=True)
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(main, ["users", "list"])
        assert result.exit_code == 2
        messages.append(result.stderr)
        assert not (cwd / "instance").exists()
        assert f"In use: {empty}" in " ".join(CliRunner().invoke(main, ["--help"]).output
                                              .split())
    saved = CliRunner().invoke(main, ["backup", "-o", str(tmp_path / "b.gpkg")])
    assert saved.exit_code == 2 and saved.stderr == messages[0]
    assert messages[0] == messages[1]
    assert f"No database at {empty / 'geoapp.gpkg'}" in messages[0]
    assert "geoapp init-db" in messages[0] and "GEOAPP_INSTANCE_PATH" in messages[0]
    assert not empty.exists()  # nothing was built where nobody asked for it


def test_the_cli_finds_the_same_instance_from_another_directory(instance, tmp_path) -> None:
    geoapp = Path(sys.executable).parent / "geoapp"
    plain = {k: v for k, v in os.environ.items() if k != "GEOAPP_INSTANCE_PATH"}
    given = {**plain, "GEOAPP_INSTANCE_PATH": str(instance)}
    helps, listings = [], []
    for cwd in (ROOT, tmp_path):
        shown = subprocess.run([geoapp, "--help"], cwd=cwd, env=plain, capture_output=True,
                               text=True, timeout=120)
        helps.append(shown.stdout.split("In use:")[1].split()[0])
        done = subprocess.run([geoapp, "init-db"], cwd=cwd, env=given, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        listings.append(json.loads(done.stdout)["path"])
    assert helps == [str(config.default_instance_path())] * 2
    settings = config.load_settings(instance, environ={})
    if on_postgis(settings):  # the database named without its password
        name = settings["DATABASE_URL"].rsplit("/", 1)[1]
        assert listings[0] == listings[1] and listings[0].startswith("postgresql://")
        assert listings[0].endswith(f"/{name}")
    else:
        assert listings == [str(instance / "geoapp.gpkg")] * 2


# --------------------------------------------------------------------------- first account
def test_one_story_for_the_first_account(jiaozuo_db, tmp_path, monkeypatch) -> None:
    inst = tmp_path / "inst"
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(inst))
    monkeypatch.setenv("GEOAPP_SECRET_KEY", GOOD_KEY)
    served = []
    monkeypatch.setattr(prod, "run_granian", lambda *a, **k: served.append(a))
    runner = CliRunner()
    create = ["users", "create", "--username", "chief", "--role", "admin",
              "--password", "Chief-of-the-Bureau-2026"]
    early = runner.invoke(main, create)  # before any database: says where to build it
    assert early.exit_code == 2 and "geoapp init-db" in early.stderr
    assert not inst.exists()
    copy_database(jiaozuo_db, inst)  # what `geoapp init-db` builds
    built = runner.invoke(main, ["init-db"])
    assert built.exit_code == 0 and '"status": "unchanged"' in built.output, built.output
    assert runner.invoke(main, create).exit_code == 0
    first = runner.invoke(main, ["serve", "--prod", "--port", "1", "--workers", "1"])
    assert first.exit_code == 0, first.output
    assert served and "created administrator" not in first.output  # chief already exists

    other = copy_database(jiaozuo_db, tmp_path / "other").parent
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(other))
    started = runner.invoke(main, ["serve", "--prod", "--port", "1", "--workers", "1"])
    assert started.exit_code == 0, started.output
    password = re.search(r"created administrator 'admin' with password (\S+)", started.output)
    assert password, started.output
    again = runner.invoke(main, ["serve", "--prod", "--port", "1", "--workers", "1"])
    assert "created administrator" not in again.output
    repo = open_repository(config.load_settings(other, environ={}))
    try:
        assert [u["username"] for u in repo.list_users()] == ["admin"]
    finally:
        repo.close()


def test_readme_and_help_tell_the_same_story() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    help_text = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    for text in (readme, help_text):
        assert "`geoapp serve` (with or without --prod) creates the administrator `admin`" \
            in text
        assert "`geoapp init-db`" in text and "`geoapp users create" in text
    assert "GEOAPP_INSTANCE_PATH" in readme


# --------------------------------------------------------------------------- check
def test_check_lists_layers_by_their_chinese_names_nearest_first(instance, monkeypatch) -> None:
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    result = CliRunner().invoke(main, ["check", "--lon", "113.24", "--lat", "35.22"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("最近要素 Nearest feature per layer:\n")[1].splitlines()
    rows = [re.match(r"  (\S+)\s+([\d.]+) m  ", line) for line in lines if line.strip()]
    assert rows and all(rows), lines
    titles = [m.group(1) for m in rows]
    distances = [float(m.group(2)) for m in rows]
    assert distances == sorted(distances)
    repo = open_repository(config.load_settings(instance, environ={}))
    try:
        city = repo.city()
    finally:
        repo.close()
    assert city.layers["rivers"].title_zh in titles
    assert not set(titles) & set(city.layers)  # no layer keys such as "rivers"
    assert all(re.search(r"[\u4e00-\u9fff]", t) for t in titles)


def test_a_point_without_lat_is_refused_by_the_one_service_check(instance, monkeypatch) -> None:
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    result = CliRunner().invoke(main, ["check", "--lon", "113.24"])
    assert result.exit_code == 2 and "请填写经度和纬度" in result.stderr


# --------------------------------------------------------------------------- services package
def test_every_service_module_imports_first_without_a_cycle() -> None:
    names = sorted(p.stem for p in (ROOT / "geoapp" / "services").glob("*.py")
                   if p.stem != "__init__")
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    for m in [m for m in sys.modules if m.startswith('geoapp.services')]:\n"
            "        del sys.modules[m]\n"
            "    importlib.import_module('geoapp.services.' + name)\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_services_package_imports_at_its_top_only() -> None:
    tree = ast.parse((ROOT / "geoapp" / "services" / "__init__.py").read_text("utf-8"))
    first_def = min(n.lineno for n in tree.body
                    if isinstance(n, ast.FunctionDef | ast.ClassDef))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            assert node.lineno < first_def, f"import on line {node.lineno}"

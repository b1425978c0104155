"""Command line: thin wrappers that parse input, call one service, format output.

Domain errors become a clear message on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import click

from geoapp.domain.errors import GeoappError

log = logging.getLogger(__name__)


def _instance_path() -> Path:
    """Where `geoapp` keeps its database and instance config when run from the CLI."""
    return Path(os.environ.get("GEOAPP_INSTANCE_PATH") or Path.cwd() / "instance")


def _settings(**overrides):
    from geoapp.config import load_settings

    inst = _instance_path()
    return load_settings(inst, overrides={k: v for k, v in overrides.items() if v is not None})


def handle_errors(fn):
    """Turn domain errors into a message and exit status 2 (no traceback for users)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GeoappError as exc:
            click.echo(f"错误 Error: {exc.message}", err=True)
            if exc.details:
                click.echo(json.dumps(exc.details, ensure_ascii=False, indent=2, default=str),
                           err=True)
            raise SystemExit(2) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more (DEBUG).")
def main(verbose: bool) -> None:
    """geoapp: the environmental one-map (一张图) of a city ecology and environment bureau.

    Settings come from instance/geoapp.toml and GEOAPP_* environment variables
    (see README). The instance folder is ./instance unless GEOAPP_INSTANCE_PATH is set.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads.")
@click.option("--debug", is_flag=True, help="Flask's development server with reloader.")
@handle_errors
def serve(host: str, port: int, threads: int, debug: bool) -> None:
    """Run the web app (builds the database on first start)."""
    from geoapp.web import create_app

    overrides = {"INSTANCE_PATH": str(_instance_path())}
    if "GEOAPP_INTRANET" not in os.environ:
        overrides["INTRANET"] = True
    app = create_app(overrides)
    click.echo(f"geoapp: {app.extensions['geoapp'].city.name} on http://{host}:{port}/")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress import serve as waitress_serve

    waitress_serve(app, host=host, port=port, threads=threads, ident="geoapp")


@main.command("init-db")
@click.option("--force", is_flag=True, help="Rebuild from the source files even if it exists.")
@handle_errors
def init_db(force: bool) -> None:
    """Build the GeoPackage database from the city's source files (idempotent)."""
    from geoapp import services

    report = services.init_db(_settings(), force=force)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))

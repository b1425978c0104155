"""Command line: thin wrappers that parse input, call one service, format output.

Domain errors become a clear message on stderr and exit status 2. Every command finds the
instance folder the same way from any working directory (``geoapp.config.instance_path``).

The services, the web app, GDAL and the domain's numpy-backed modules are imported inside
the commands that use them: ``python -X importtime`` gives about 0.7 s for
``geoapp.services`` (pandas, geopandas, folium), over 1 s for ``geoapp.web``, 0.5 s for
GDAL's bindings and 0.06 s for ``geoapp.domain.results``, which ``geoapp --help`` and a
mistyped option should not pay.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import signal
import unicodedata
from pathlib import Path

import click

from geoapp.config import INSTANCE_ENV, instance_path, load_settings, worker_count
from geoapp.domain.errors import GeoappError

log = logging.getLogger(__name__)


def _settings(**overrides):
    return load_settings(instance_path(),
                         overrides={k: v for k, v in overrides.items() if v is not None})


def handle_errors(fn):
    """Turn domain errors into a message and exit status 2 (no traceback for users)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GeoappError as exc:
            click.echo(f"错误 Error: {exc.message}", err=True)
            if exc.details:
                click.echo(json.dumps(exc.to_dict()["details"], ensure_ascii=False, indent=2,
                                      default=str), err=True)
            raise SystemExit(2) from None

    return wrapper


MAIN_HELP = f"""geoapp: the environmental one-map (一张图) of a city ecology and environment bureau.

Settings come from geoapp.toml in the instance folder and GEOAPP_* environment variables
(see README). The instance folder holds the database (geoapp.gpkg): {INSTANCE_ENV} if set,
else the web app's own instance folder, whatever the working directory. In use:

\b
  {{instance}}

The first account: `geoapp serve` (with or without --prod) creates the administrator
`admin` with a random password, printed once, when the database has no account. To choose
it yourself, run `geoapp init-db` and then `geoapp users create --role admin` before the
first `serve`. Only `serve` and `init-db` build a missing database; the other commands say
where they looked.
"""


class _Main(click.Group):
    def get_help(self, ctx: click.Context) -> str:
        self.help = MAIN_HELP.format(instance=instance_path())
        return super().get_help(ctx)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more (DEBUG).")
def main(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.debug("instance folder %s", instance_path())
    from geoapp.storage.vector_in import configure_gdal  # ~0.5 s (pyogrio, GDAL)

    configure_gdal()  # GDAL's remote and code-running features off before any file is read


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", type=int, default=None,
              help="Threads per process (default: 8; with --prod, 2 per worker).")
@click.option("--debug", is_flag=True, help="Flask's development server with reloader.")
@click.option("--prod", is_flag=True,
              help="granian with several worker processes; needs a real SECRET_KEY.")
@click.option("--workers", type=int, default=None,
              help="Worker processes for --prod (default: the WORKERS setting).")
@handle_errors
def serve(host: str, port: int, threads: int | None, debug: bool, prod: bool,
          workers: int | None) -> None:
    """Run the web app. The first start builds the database; when it has no account yet,
    the administrator `admin` is created with a random password printed once."""
    from geoapp.web import create_app

    if prod:
        _serve_prod(host, port, threads, workers)
        return
    overrides = {"INSTANCE_PATH": str(instance_path())}
    if "GEOAPP_INTRANET" not in os.environ:
        overrides["INTRANET"] = True
    app = create_app(overrides)
    _first_account(app.extensions["geoapp"])
    click.echo(f"geoapp: {app.extensions['geoapp'].city.name} on http://{host}:{port}/")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress import serve as waitress_serve

    from geoapp.services import checks

    checks.warm_engine(app.extensions["geoapp"])
    waitress_serve(app, host=host, port=port, threads=threads or 8, ident="geoapp")


def _first_account(core) -> None:
    """With no account at all nobody could log in: make an admin with a random password and
    print it once (change it at /admin/users or with `geoapp users set-password`)."""
    from geoapp.services import accounts

    if core.repo.list_users():
        return
    password = secrets.token_urlsafe(12)
    accounts.create_user(core, "admin", password, "admin", by="first-start")
    click.echo("geoapp: no account existed; created administrator 'admin' with password "
               f"{password} (shown once; change it after logging in)")


def _serve_prod(host: str, port: int, threads: int | None, workers: int | None) -> None:
    """Check the settings, build the database once, then hand over to granian."""
    from geoapp.web import prod

    inst = instance_path()
    settings = prod.check_instance(inst)
    count = workers if workers is not None else worker_count(settings)
    if count < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--workers")
    per = threads or prod.PROD_THREADS
    if per < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--threads")
    ready = prod.prepare_database(inst)
    core = _open_core()
    _first_account(core)
    core.repo.close()  # the workers open their own connections
    click.echo(f"geoapp: {ready['city']} on http://{host}:{port}/ "
               f"(granian, {count} workers x {per} threads)")
    prod.run_granian(inst, host=host, port=port, workers=count, threads=per,
                     log_level=settings["LOG_LEVEL"])


@main.command("init-db")
@click.option("--force", is_flag=True, help="Rebuild from the source files even if it exists.")
@handle_errors
def init_db(force: bool) -> None:
    """Build the GeoPackage database from the city's source files (idempotent; --force keeps
    accounts and inspection records). It makes no account: see `geoapp --help`."""
    from geoapp import services

    report = services.init_db(_settings(), force=force)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))


def _open_core():
    """The core on the instance's database; a missing one is an error naming its path."""
    from geoapp.services import open_geoapp

    return open_geoapp(_settings(), build=False)


def _print_check(result: dict, nearest: list[dict]) -> None:
    """A readable Chinese/English table of one check; ``nearest`` per layer, nearest first,
    under the layers' Chinese names."""
    from geoapp.domain.results import Verdict

    p = result["point"]
    verdict = Verdict(result["verdict"])
    click.echo(f"位置 Point (WGS84): {p['lon']:.6f}, {p['lat']:.6f}    "
               f"结论 Verdict: {verdict.zh} {verdict.en}")
    click.echo(f"  {verdict.sentence_zh}")
    click.echo(f"  {verdict.sentence_en}")
    new_site = "（新址 new site）"
    if result["hits"]:
        click.echo("\n命中规则 Rule hits:")
        for h in result["hits"]:
            where = new_site if h.get("point") == "new_site" else ""
            click.echo(f"  [{h['severity']}] {h['title']['zh']} {h['title']['en']}{where}")
            click.echo(f"      {h['feature_name']} ({h['feature_id']})  距离 {h['distance_m']:.1f} m")
            click.echo(f"      依据 Basis: {h['basis']}")
            if h.get("basis_note"):
                click.echo(f"      依据说明 Basis note: {h['basis_note']}")
            click.echo(f"      措施 Action: {h['action']}")
    if result.get("conditional_hits"):
        click.echo("\n待核实规则 Rules that apply if (give the missing facts and check again):")
        for h in result["conditional_hits"]:
            where = new_site if h.get("point") == "new_site" else ""
            click.echo(f"  [{h['severity']}] {h['sentence']['zh']}{where}")
            click.echo(f"      {h['sentence']['en']}")
            click.echo(f"      缺少 Missing: {', '.join(h['missing'])}")
    click.echo("\n最近要素 Nearest feature per layer:")
    width = max((_display_width(n["title"]) for n in nearest), default=0)
    for n in nearest:
        pad = " " * (width - _display_width(n["title"]))
        click.echo(f"  {n['title']}{pad} {n['distance_m']:>10.1f} m  {n['feature_name']}")


def _display_width(text: str) -> int:
    """Columns a terminal gives ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@main.command("check")
@click.option("--lon", "lon", help="Longitude, or easting x for --crs gk / EPSG; DMS text for --crs dms.")
@click.option("--lat", "lat", help="Latitude, or northing y.")
@click.option("--crs", default="wgs84", show_default=True,
              help="wgs84, cgcs2000, gcj02, bd09, gk, dms or EPSG:n.")
@click.option("--site-type", help="enterprise, livestock_farm or scattered_workshop (or 中文).")
@click.option("--industry", help="Industry category, e.g. 化工, 商混站, 畜禽养殖.")
@click.option("--site", "site_id", help="Check a stored site by id instead of a point.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE",
              help="Another attribute a rule reads, e.g. --attr fuel=燃煤 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def check(lon, lat, crs, site_type, industry, site_id, attrs, as_json) -> None:
    """Check one point or one stored site against every restriction rule."""
    from geoapp.services import checks
    from geoapp.services.inspection import nearest_by_layer

    extra = {}
    for item in attrs:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--attr expects NAME=VALUE, got {item!r}")
        extra[name.strip()] = value.strip()
    app = _open_core()
    if site_id:
        result = checks.check_site(app, site_id)
    else:
        result = checks.check_point(app, lon, lat, crs, site_type=site_type, industry=industry,
                                    attrs=extra or None)
    data = result.to_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        _print_check(data, nearest_by_layer(app, result))


def _print_parcels(data: dict) -> None:
    """A readable Chinese/English summary of a parcel check, one block per parcel."""
    from geoapp.domain.results import Verdict

    src = data["source"]
    click.echo(f"地块来源 Source: {src.get('filename') or src.get('format')}    "
               f"坐标系 CRS: {src.get('crs')}")
    for w in data["warnings"]:
        click.echo(f"提示 Warning: {w.get('message')}")
    for p in data["parcels"]:
        v = Verdict(p["verdict"])
        a = p["area"]
        click.echo(f"\n地块 Parcel {p['id']} {p.get('name') or ''}")
        click.echo(f"  面积 Area: {a['m2']:,.1f} m²  {a['mu']:,.2f} 亩  {a['ha']:,.4f} 公顷")
        click.echo(f"  结论 Verdict: {v.zh} {v.en}")
        if p["counties"]:
            click.echo("  区县 County: " + "、".join(
                f"{c['name']} {c['share'] * 100:.1f}%" for c in p["counties"]))
        for h in p["hits"]:
            overlap = f"  重叠 {h['overlap_m2']:,.1f} m²" if h.get("overlap_m2") else ""
            click.echo(f"  [{h['severity']}] {h['title']['zh']}: {h['feature_name']}  "
                       f"距离 {h['distance_m']:,.1f} m{overlap}")
            click.echo(f"      依据 Basis: {h['basis']}")
            click.echo(f"      措施 Action: {h['action']}")
        for h in p["conditional_hits"]:
            click.echo(f"  [待核实] {h['sentence']['zh']}  缺少 Missing: {', '.join(h['missing'])}")
        for o in p["overlaps"]:
            click.echo(f"  重叠 Overlap: {o['layer_title']} {o['feature_name'] or o['feature_id']}"
                       f"  {o['area_m2']:,.1f} m² ({o['share'] * 100:.2f}%)")
        for u in p["units"]:
            click.echo(f"  管控单元 Unit: {u['code']} {u.get('name') or ''}（{u.get('category')}）"
                       f"  {u['overlap_m2']:,.1f} m² ({u['share'] * 100:.2f}%)")
            for f in u["flagged_lines"]:
                click.echo(f"      【涉及本行业】{f['part_name']}：{f['line']}")


def _towgs84(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        values = [float(v) for v in text.replace("，", ",").split(",")]
    except ValueError:
        raise click.UsageError(f"--towgs84 expects 3 or 7 numbers separated by commas, "
                               f"got {text!r}") from None
    if len(values) not in (3, 7):
        raise click.UsageError(f"--towgs84 expects 3 or 7 numbers, got {len(values)}")
    return values


@main.command("parcel")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--crs", default=None,
              help="Coordinate system of the file when it does not say: wgs84, cgcs2000, "
                   "gcj02, bd09 or EPSG:n (e.g. EPSG:4547 for a CAD drawing in zone 38).")
@click.option("--towgs84", default=None, metavar="DX,DY,DZ[,RX,RY,RZ,S]",
              help="Datum parameters for a Xi'an 80 / Beijing 54 survey file.")
@click.option("--site-type", help="enterprise, livestock_farm or scattered_workshop (or 中文).")
@click.option("--industry", help="The project's industry, e.g. 化工, 商混站, 畜禽养殖.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE",
              help="Another attribute a rule reads, e.g. --attr fuel=燃煤 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Also write the answer: .docx (项目选址环境合理性预判报告), .xlsx, .gpkg or "
                   ".json, by extension.")
@handle_errors
def parcel(file, crs, towgs84, site_type, industry, attrs, as_json, output) -> None:
    """Check the parcels of a file (land-survey coordinate file, GeoJSON, KML/KMZ,
    GeoPackage, zipped Shapefile or DXF) for a project: ground area, overlaps, every rule
    with its distance, the 三线一单 control units and their 准入清单."""
    from geoapp.services import parcels as parcel_service

    extra = {}
    for item in attrs:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--attr expects NAME=VALUE, got {item!r}")
        extra[name.strip()] = value.strip()
    app = _open_core()
    report = parcel_service.check_parcel_file(
        app, Path(file), filename=Path(file).name, crs=crs, towgs84=_towgs84(towgs84),
        site_type=site_type, industry=industry, attrs=extra or None)
    if output:
        parcel_service.write_answer(app, report, output)
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        _print_parcels(data)
        if output:
            click.echo(f"\n已写出 Written: {output}")


@main.command("flag")
@click.argument("input_file", required=False, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Output file; format from the extension (.csv .xlsx .geojson .gpkg .parquet).")
@click.option("--lon-col", default="lon", show_default=True)
@click.option("--lat-col", default="lat", show_default=True)
@click.option("--crs", default=None,
              help="Coordinate system of the input (default: a `crs` column, else wgs84).")
@click.option("--type-col", default="site_type", show_default=True)
@click.option("--industry-col", default="industry", show_default=True)
@click.option("--site-type", "default_site_type", default=None,
              help="Site type for every row when the file has no type column.")
@click.option("--skip-bad", is_flag=True,
              help="Flag the good rows; bad rows come out with verdict 坐标错误 (error) and "
                   "the reason.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the added columns' headers and text (zh: 结论, 触发规则…; "
                   "en: verdict, rules…).")
@click.option("--all", "all_sites", is_flag=True, help="Re-flag every stored site instead.")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Refuse a file with more data rows than this (default: any size).")
@click.option("--cluster", default=None, metavar="tcp://HOST:PORT",
              help="Flag on a running Dask cluster: its scheduler's address. The workers read "
                   "CSV and Parquet inputs from the same path, so put them where every worker "
                   "sees them.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Flag on a local Dask cluster of this many worker processes.")
@click.option("--partition-rows", type=click.IntRange(min=1), default=None,
              help="Rows per partition (default 250,000): the unit of work and of memory.")
@handle_errors
def flag(input_file, output, lon_col, lat_col, crs, type_col, industry_col, default_site_type,
         skip_bad, lang, all_sites, max_rows, cluster, workers, partition_rows) -> None:
    """Flag every row of a file (or every stored site) against the rules.

    Every row gets its verdict (不符合/符合/待核实/超出本市数据范围), the rules it breaks with
    their basis and action, the rules that need a missing attribute, and the hits as JSON;
    any column named like an attribute a rule reads (e.g. fuel) is passed to the rules.

    INPUT is CSV, XLSX, GeoJSON, GeoPackage, Parquet/GeoParquet or a folder of Parquet
    files; it is read a partition at a time, so any number of rows fits in memory."""
    from geoapp.services import checks, command_line_limits
    from geoapp.services.flagfile import FlagOptions, flag_file

    app = _open_core()
    if all_sites:
        click.echo(json.dumps(checks.flag_all(app, user="cli"), ensure_ascii=False, indent=2))
        return
    if not input_file or not output:
        raise click.UsageError("give INPUT and -o OUTPUT (or --all)")
    opts = FlagOptions(lon_col=lon_col, lat_col=lat_col, crs=crs, type_col=type_col,
                       industry_col=industry_col, skip_bad=skip_bad,
                       default_site_type=checks.parse_site_type(default_site_type), lang=lang)
    # SIGTERM (a service manager, `kill`) ends the command as Ctrl-C does: nothing written
    signal.signal(signal.SIGTERM, _interrupted)
    if cluster and workers:
        raise click.UsageError("give --cluster or --workers, not both")
    summary = flag_file(app, input_file, output, opts, limits=command_line_limits(max_rows),
                        cluster=cluster, workers=workers, partition_rows=partition_rows)
    click.echo(json.dumps(summary, ensure_ascii=False, indent=2))


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


@main.group("rules")
def rules_group() -> None:
    """The restriction rules file."""


@rules_group.command("validate")
@click.argument("rules_file", required=False, type=click.Path(dir_okay=False))
@handle_errors
def rules_validate(rules_file) -> None:
    """Validate a rules file (default: the configured one) against the schema and the city."""
    from geoapp.services.checks import read_rules
    from geoapp.storage.sources import load_city

    settings = _settings()
    path = rules_file or settings["RULES_FILE"]
    city = load_city(settings["DATA_DIR"])
    rules = read_rules(path, list(city.layers))
    click.echo(f"{path}: {len(rules)} rules OK ({', '.join(r.id for r in rules)})")


@main.group("users")
def users_group() -> None:
    """Accounts: viewer, inspector, planner, admin."""


@users_group.command("create")
@click.option("--username", required=True)
@click.option("--role", required=True, help="viewer, inspector, planner or admin.")
@click.option("--password", help="Prompted for (hidden, twice) when not given.")
@click.option("--display-name", default="", help="Name shown in the page header.")
@handle_errors
def users_create(username, role, password, display_name) -> None:
    """Create an account (the first one is usually an admin)."""
    from geoapp.services import accounts

    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    app = _open_core()
    row = accounts.create_user(app, username, password, role, display_name=display_name,
                               by="cli")
    click.echo(f"created user {row['username']} ({row['role']})")


@users_group.command("list")
@handle_errors
def users_list() -> None:
    """List accounts (never their password hashes)."""
    from geoapp.services import accounts
    from geoapp.services.site_page import local_time

    for u in accounts.list_users(_open_core()):
        state = "active" if u["active"] else "disabled"
        last = local_time(u["last_login_at"]) or "never"
        click.echo(f"{u['username']:<20} {u['role']:<10} {state:<8} last login {last}")


@users_group.command("set-password")
@click.option("--username", required=True)
@click.option("--password", help="Prompted for when not given.")
@handle_errors
def users_set_password(username, password) -> None:
    """Set a new password for an account."""
    from geoapp.services import accounts

    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    accounts.set_password(_open_core(), username, password, by="cli")
    click.echo(f"password of {username} changed")


@users_group.command("token")
@click.option("--username", required=True, help="The account the token acts as.")
@click.option("--name", default="", help="A label, such as the GIS client it is for.")
@handle_errors
def users_token(username, name) -> None:
    """Make an API token for a GIS client (Authorization: Bearer …), printed once on stdout.

    The token has the account's role; it stops working when revoked (revoke-token,
    /admin/users) or when the account is disabled or given another role."""
    from geoapp.services import accounts

    token, row = accounts.issue_token(_open_core(), username, name, by="cli")
    click.echo(f"token {row['id']} for {row['username']} ({row['role']}): shown only now, "
               "keep it like a password", err=True)
    click.echo(token)


@users_group.command("tokens")
@click.option("--username", help="Only this account's tokens.")
@handle_errors
def users_tokens(username) -> None:
    """List API tokens: id, account, role, state, created, last used, name (never a token)."""
    from geoapp.services import accounts
    from geoapp.services.site_page import local_time

    for t in accounts.list_tokens(_open_core(), username):
        last = local_time(t["last_used_at"]) or "never"
        click.echo(f"{t['id']:>4} {t['username'] or '-':<20} {t['role']:<10} {t['state']:<14} "
                   f"created {local_time(t['created_at'])}  last used {last}  {t['name']}")


@users_group.command("revoke-token")
@click.option("--id", "token_id", required=True, type=int, help="The token's id (users tokens).")
@handle_errors
def users_revoke_token(token_id) -> None:
    """Revoke an API token: refused from the next request on."""
    from geoapp.services import accounts

    row = accounts.revoke_token(_open_core(), token_id, by="cli")
    click.echo(f"token {row['id']} of {row['username'] or '-'} revoked")


@main.group("ledger")
def ledger_group() -> None:
    """The enterprise ledger (整治工作台账) in the bureau's Excel template."""


@ledger_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", default="cli", show_default=True, help="Name kept in the change log.")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Refuse a file with more data rows than this (default: any size).")
@handle_errors
def ledger_import(file, user, max_rows) -> None:
    """Import a ledger workbook: every row valid, or nothing is imported."""
    from geoapp.services import command_line_limits
    from geoapp.services.ledger import import_ledger

    report = import_ledger(_open_core(), file, user=user, limits=command_line_limits(max_rows))
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@ledger_group.command("export")
@click.option("--district", help="Only this district (辖区), e.g. 解放区.")
@click.option("--with-hits", is_flag=True, help="Add the rule hits as extra columns.")
@click.option("--with-deadlines", is_flag=True,
              help="Add the 整改完成时限's status (时限状态) and days overdue (逾期天数).")
@click.option("--as-of", help="Judge the deadlines on this day (YYYY-MM-DD; default today).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output .xlsx file.")
@handle_errors
def ledger_export(district, with_hits, with_deadlines, as_of, output) -> None:
    """Export the ledger in the template (all enterprises or one district)."""
    from geoapp.services import deadlines
    from geoapp.services.ledger import export_ledger

    report = export_ledger(_open_core(), output, district=district, with_hits=with_hits,
                           with_deadlines=with_deadlines,
                           as_of=deadlines.as_of_day(as_of).date)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@main.group("export")
def export_group() -> None:
    """Downloads for other tools."""


@export_group.command("layer")
@click.argument("name")
@click.option("--format", "fmt", required=True,
              type=click.Choice(["gpkg", "geojson", "kml", "shp"]),
              help="shp writes a zip with .shp/.dbf/.shx/.prj/.cpg.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@handle_errors
def export_layer(name, fmt, output) -> None:
    """Write a layer (enterprises, farms, workshops or a zone layer name) for GIS tools."""
    from geoapp.services.interchange import export_layer as run

    click.echo(json.dumps(run(_open_core(), name, fmt, output), ensure_ascii=False, indent=2))


@main.group("report")
def report_group() -> None:
    """Reports: the weekly hotspot-grid warning and 12369 hotline bulletin."""


@report_group.command("weekly")
@click.option("--week", default=None,
              help="ISO week, e.g. 2026-W47. Default: the last full week (Asia/Shanghai).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for bulletin.txt, map.html, map.png, bulletin.docx, bulletin.xlsx.")
@click.option("--warnings", "warnings_file", type=click.Path(dir_okay=False, exists=True),
              help="Report on this warnings file (CSV/XLSX) instead of the stored table.")
@click.option("--complaints", "complaints_file", type=click.Path(dir_okay=False, exists=True),
              help="Report on this complaints file (CSV/XLSX) instead of the stored table.")
@handle_errors
def report_weekly(week, out_dir, warnings_file, complaints_file) -> None:
    """Write the weekly bulletin of one ISO week into a folder."""
    from geoapp.services import events
    from geoapp.services.weekly import weekly_report, write_weekly

    app = _open_core()
    warnings = events.load_events(app, "warnings", warnings_file) if warnings_file else None
    complaints = (events.load_events(app, "complaints", complaints_file)
                  if complaints_file else None)
    report = weekly_report(app, week, warnings=warnings, complaints=complaints)
    paths = write_weekly(app, report, out_dir)
    click.echo(f"{report.week} ({report.date_range}): {report.warnings_total} warnings, "
               f"{report.complaints_total} complaints")
    for path in paths.values():
        click.echo(f"  {path}")


@main.group("import")
def import_group() -> None:
    """Import event files (all-or-nothing, row-by-row report of bad rows)."""


@import_group.command("warnings")
@click.argument("input_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Refuse a file with more data rows than this (default: any size).")
@handle_errors
def import_warnings(input_file, max_rows) -> None:
    """Import hotspot-grid warnings: grid_code, warned_at, pollutant[, value]."""
    from geoapp.services import command_line_limits, events

    result = events.import_events(_open_core(), "warnings", input_file, user="cli",
                                  limits=command_line_limits(max_rows))
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@import_group.command("complaints")
@click.argument("input_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Refuse a file with more data rows than this (default: any size).")
@handle_errors
def import_complaints(input_file, max_rows) -> None:
    """Import 12369 complaints: received_at, category[, lon, lat, crs, district, id, summary]."""
    from geoapp.services import command_line_limits, events

    result = events.import_events(_open_core(), "complaints", input_file, user="cli",
                                  limits=command_line_limits(max_rows))
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@main.group("layer")
def layer_group() -> None:
    """Manage the city's geometry layers."""


@layer_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--crs", default=None,
              help="Coordinate system when the shapefile has no .prj (e.g. EPSG:4547).")
@click.option("--encoding", default=None,
              help="Text encoding of the .dbf (default: the .cpg, else UTF-8 or GBK detected).")
@click.option("--user", default="cli", show_default=True, help="Name recorded in the audit log.")
@handle_errors
def layer_import_cmd(name, file, crs, encoding, user) -> None:
    """Replace layer NAME from FILE (zipped Shapefile, GeoJSON or GeoPackage)."""
    from geoapp.services.layer_import import import_layer

    report = import_layer(_open_core(), name, file, user=user, is_admin=True, crs=crs,
                          encoding=encoding)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))


@main.command("backup")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Backup file to write (a complete GeoPackage).")
@handle_errors
def backup(output) -> None:
    """Copy the database while the server runs (consistent), verify it, print its counts."""
    from geoapp.services.maintenance import backup_database

    report = backup_database(_settings(), output)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))


@main.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--other-city", is_flag=True,
              help="Restore a backup of another city than this instance's.")
@handle_errors
def restore(backup_file, yes, other_city) -> None:
    """Replace the database with a backup (stop the server first; the current one is kept).
    A backup of another city is refused unless --other-city."""
    from geoapp.services.maintenance import check_city, inspect_backup, restore_database
    from geoapp.storage.postgis import shown_url

    settings = _settings()
    info = inspect_backup(settings, backup_file)
    if not other_city:
        check_city(settings, info, backup_file)
    if not yes:
        target = (shown_url(str(settings.get("DATABASE_URL") or ""))
                  if str(settings.get("STORAGE_BACKEND")).lower() == "postgis"
                  else settings["DATABASE"])
        click.confirm(f"Replace {target} with {backup_file} ({info['city']}, "
                      f"{info['counts'].get('sites', 0)} sites)?", abort=True)
    report = restore_database(settings, backup_file, other_city=other_city)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))


@report_group.command("quarterly")
@click.option("--year", required=True, help="Year of the report (one with targets).")
@click.option("--quarter", required=True, help="Quarter 1 to 4.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for programme-YYYYQn.xlsx and programme-YYYYQn.docx.")
@handle_errors
def report_quarterly(year, quarter, out_dir) -> None:
    """Write the 百企退城 quarterly progress report (XLSX and DOCX) into a folder."""
    from geoapp.services import programme as prog

    app = _open_core()
    q = prog.parse_report_quarter(app, year, quarter)
    report = prog.quarterly_report(app, q)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    click.echo(f"{report.title} {report.deadline_text}")
    for fmt in ("xlsx", "docx"):
        click.echo(f"  {prog.write_quarterly(app, report, fmt, out / f'programme-{q}.{fmt}')}")

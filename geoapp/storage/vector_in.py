"""Safe reading of uploaded vector files: GeoJSON, GeoPackage and (extracted) Shapefile.

GDAL picks a reader from a file's *content*, and several of its formats follow references:
an OGR VRT names any path or URL, a GeoJSON ``crs`` link is fetched over HTTP, a SQLite
view or virtual table can reach outside the file. So nothing an upload holds reaches GDAL
before this module has judged it:

- the format is decided from the declared extension *and* the content (JSON object text,
  the SQLite header plus ``gpkg_contents``, the shapefile magic numbers); both must agree;
- the file GDAL opens is always our own copy under a fixed name in a fresh temporary folder
  (never a user-chosen name, never ``/vsi…``, never a symlink, never the app's database);
- GeoJSON is parsed here first and GDAL reads a *sanitised* copy: GDAL matches member names
  without regard to case and follows a ``crs`` in the document, a feature or a geometry
  (a link is fetched over HTTP, a name may be a PROJ string naming grid files), so every
  member named crs in any case is removed; the one accepted is a top-level named EPSG/OGC
  system, which is applied with pyproj after reading; features are counted;
- a GeoPackage is opened read-only (``immutable=1``) with SQLite first: quick_check, exactly
  one feature table, no views, no virtual tables but R-trees, no generated columns, no
  foreign triggers, table/page/feature counts checked before a full read, and every
  ``gpkg_spatial_ref_sys`` row judged like a ``.prj``;
- a coordinate system text (``.prj``, GeoPackage srs row) must be WKT without anything that
  makes PROJ open a file or a URL (``+init``, grids, ``PARAMETERFILE``, ``@`` lists), and the
  system read must be 2-D geographic or projected;
- GDAL is told the driver (``GeoJSON:`` / ``GPKG:`` prefixes; a shapefile is checked to be
  opened by ``ESRI Shapefile``), and :func:`configure_gdal` switches off the remote and
  code-running features at process start.

Every failure is an :class:`InvalidInput` naming the upload and the format expected; GDAL's
own text (with temporary paths) only goes to the log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pyproj
import pyproj.network

from geoapp.domain.errors import GeoappError, InvalidInput
from geoapp.domain.messages import Text as _l
from geoapp.spatial.crs import is_flat_crs

log = logging.getLogger(__name__)

#: Format kind -> GDAL driver that must read it.
DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shapefile": "ESRI Shapefile", "dxf": "DXF"}
#: Declared extension -> format kind (a zip holds a shapefile).
EXTENSIONS = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".zip": "zip",
              ".shp": "shapefile"}
_NAMES = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "zip": _l("压缩的 Shapefile（.zip）"),
          "shapefile": "Shapefile", "vrt": "GDAL VRT / XML", "csv": _l("文本"), "dxf": "DXF",
          None: _l("未知格式")}

MAX_GPKG_TABLES = 32
#: Names of the triggers GeoPackage writers (GDAL, QGIS, ArcGIS) create themselves.
_STANDARD_TRIGGER = re.compile(r"^(rtree_|gpkg_|trigger_)", re.IGNORECASE)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SHP_MAGIC = b"\x00\x00\x27\x0a"
_DXF_BINARY = b"AutoCAD Binary DXF\r\n\x1a\x00"
#: An ASCII DXF begins with group code 0 and SECTION, after optional 999 comments.
_DXF_TEXT = re.compile(rb"\A(?:\s*999\r?\n[^\r\n]*\r?\n)*\s*0\r?\n\s*SECTION\s*\r?\n")
#: How GDAL's DXF driver reads a drawing: closed LWPOLYLINE/POLYLINE as polygons (HATCH is
#: a polygon anyway), blocks not inlined (an INSERT is a point: nested blocks cannot
#: multiply a small file into millions of shapes).
DXF_OPEN_OPTIONS = {"CLOSED_LINE_AS_POLYGON": "TRUE", "INLINE_BLOCKS": "FALSE"}
#: The DXF header variables that say how text is encoded: the drawing's version (AutoCAD
#: 2007, AC1021, and later write UTF-8 whatever the code page says) and its code page.
_DXF_ACADVER = re.compile(rb"\$ACADVER[ \t]*\r?\n[ \t]*1[ \t]*\r?\n[ \t]*AC(\d{4})")
_DXF_CODEPAGE = re.compile(rb"\$DWGCODEPAGE[ \t]*\r?\n[ \t]*3[ \t]*\r?\n[ \t]*([\w-]+)")
_DXF_HEADER = re.compile(rb"(?:^|\n)[ \t]*0[ \t]*\r?\n[ \t]*SECTION[ \t]*\r?\n[ \t]*2[ \t]*\r?\n"
                         rb"[ \t]*HEADER[ \t]*\r?\n")
#: DXF code pages and the names GDAL's iconv reads them by (ANSI_936 is Simplified Chinese:
#: GB18030 reads GBK and GB2312 too).
_DXF_CODEPAGES = {"ANSI_936": "GB18030", "GB2312": "GB18030", "ANSI_950": "CP950",
                  "BIG5": "CP950", "ANSI_932": "CP932", "ANSI_949": "CP949",
                  "ANSI_1252": "CP1252", "UTF-8": "UTF-8", "UTF8": "UTF-8"}
_DBF_VERSIONS = {0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0x8E,
                 0xCB, 0xE5, 0xF5, 0xFB}
_WKT_START = re.compile(r"^\s*(GEOGCS|PROJCS|GEOCCS|COMPD_CS|GEOGCRS|PROJCRS|GEODCRS|"
                        r"GEOGRAPHICCRS|PROJECTEDCRS|GEODETICCRS|BOUNDCRS|COMPOUNDCRS)\s*\[",
                        re.IGNORECASE)
#: Largest coordinate system text (.prj, GeoPackage srs definition) judged and accepted.
MAX_CRS_TEXT = 65536
#: What makes PROJ open a file or a URL while building or using a CRS: init files, grids
#: (nadgrids, geoidgrids, the grids= of gridshift/deformation steps), the file= of tinshift,
#: the model= of defmodel, WKT2 PARAMETERFILE, pipelines, and "@" (optional) grid lists.
_PROJ_FILE_USE = re.compile(r"(\+\s*init\b|\binit\s*=|grids|\bfile\s*=|\bmodel\s*=|"
                            r"parameterfile|pipeline|@)", re.IGNORECASE)
#: The one harmless grid: "+nadgrids=@null" is built into PROJ (GDAL writes it for
#: EPSG:3857 in a GeoPackage's EXTENSION["PROJ4", ...]).
_NULL_GRID = re.compile(r"\+?\s*nadgrids\s*=\s*@null(?=[\s\"\]+]|$)", re.IGNORECASE)
_PROJ4_EXTENSION = re.compile(r"EXTENSION\s*\[\s*\"PROJ4", re.IGNORECASE)
#: GDAL's own "no system" row (srs_id 99999, organization GDAL) of a GeoPackage written
#: without a coordinate system.
_UNDEFINED_SRS = re.compile(r'^\s*LOCAL_CS\s*\[\s*"Undefined SRS"', re.IGNORECASE)
_ORGANIZATION = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
#: GeoJSON member names (lower case) whose content is never interpreted as a structure.
_GEOJSON_DATA = {"properties", "coordinates", "bbox"}
#: GeoJSON-like CRS members removed from the copy GDAL reads (``coordRefSys`` is JSON-FG's).
_GEOJSON_CRS_MEMBERS = {"crs", "coordrefsys"}
#: OGC CRS names -> the EPSG system with the same (lon/lat) meaning.
_OGC_CRS = {"crs84": 4326, "crs83": 4269, "crs27": 4267}
_EPSG_NAME = re.compile(r"^(?:urn:ogc:def:crs:epsg:[\w.]*:|epsg:{1,2}|"
                        r"https?://www\.opengis\.net/def/crs/epsg/[\w.]+/)(\d{1,6})$",
                        re.IGNORECASE)
_OGC_NAME = re.compile(r"^(?:urn:ogc:def:crs:ogc:[\w.]*:|ogc:|"
                       r"https?://www\.opengis\.net/def/crs/ogc/[\w.]+/)(crs84|crs83|crs27)$",
                       re.IGNORECASE)

#: GDAL configuration for a process that reads uploads. GDAL 3.12 has no single "network
#: off" switch: /vsicurl/ (and every http(s) path, which GDAL maps to it) is refused by an
#: extension no file has, the rest is refused by the content checks above.
GDAL_OPTIONS: dict[str, str] = {
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".geoapp-no-network",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "5",
    "GDAL_HTTP_CONNECTTIMEOUT": "2",
    "GDAL_DISABLE_READDIR_ON_OPEN": "TRUE",
    "CPL_ALLOW_VSISTDIN": "NO",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
    "VRT_ALLOW_MEM_DRIVER": "NO",
    "OGR_SQLITE_ALLOW_EXTERNAL_ACCESS": "NO",
    "OGR_SQLITE_DIALECT_ALLOW_CREATE_VIRTUAL_TABLE": "NO",
    "GDAL_ALLOW_REMOTE_RESOURCE_TO_ACCESS_LOCAL_FILE": "NO",
}


def configure_gdal() -> None:
    """Apply :data:`GDAL_OPTIONS` and switch PROJ's network access off for this process
    (idempotent; call at app/CLI start): no grid or CRS is ever fetched from a URL."""
    os.environ["PROJ_NETWORK"] = "OFF"
    pyproj.network.set_network_enabled(False)
    pyogrio.set_gdal_config_options(GDAL_OPTIONS)


@dataclass
class VectorFile:
    """What was read: the features, the format kind and the file's own CRS text."""

    gdf: gpd.GeoDataFrame
    kind: str


# ---------------------------------------------------------------------------- format
def kind_of_extension(label: str) -> str | None:
    return EXTENSIONS.get(Path(label).suffix.lower())


def sniff(path: Path) -> str | None:
    """The format the content says it is: geojson, gpkg, zip, shapefile, vrt, csv or None."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(_SQLITE_MAGIC):
        return "gpkg"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head.startswith(_SHP_MAGIC) and len(head) >= 100:
        return "shapefile"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "geojson"
    if text.startswith(b"<"):
        return "vrt"
    if head and b"\x00" not in head:
        return "csv"
    return None


def check_kind(path: Path, label: str, expected: str | None = None) -> str:
    """The upload's format kind; its extension and its content must agree."""
    declared = expected or kind_of_extension(label)
    found = sniff(path)
    if declared is None:
        raise InvalidInput(_l("不支持的文件类型：%(file)s", file=label))
    if found != declared:
        raise InvalidInput(_l("文件内容与扩展名不符：%(file)s 按名称是 %(named)s，内容却是 %(found)s，"
                              "已拒绝上传", file=label, named=_NAMES[declared],
                              found=_NAMES.get(found, _NAMES[None])))
    return declared


# ---------------------------------------------------------------------------- paths
def guard_source(path: Path, label: str, database: str | Path | None = None) -> None:
    """Refuse a symlink, anything but a regular file, and the app's own database files."""
    try:
        st = os.lstat(path)
    except OSError:
        raise InvalidInput(_l("找不到文件：%(file)s", file=label)) from None
    if stat.S_ISLNK(st.st_mode):
        raise InvalidInput(_l("不接受符号链接：%(file)s；请给出真实文件", file=label))
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(_l("不是普通文件：%(file)s", file=label))
    if database and _is_database(path, database):
        raise InvalidInput(_l("不能把本系统的数据库当作上传文件读取：%(file)s", file=label))


def _is_database(path: Path, database: str | Path) -> bool:
    real = os.path.realpath(path)
    db = os.path.realpath(database)
    if real in {db + s for s in ("", "-wal", "-shm", "-journal")}:
        return True
    try:
        return os.path.samefile(real, db)
    except OSError:
        return False


def _gdal_path(path: Path) -> str:
    """The string handed to GDAL: an absolute local path of ours, never a /vsi or URL form."""
    s = str(path.resolve())
    if not s.startswith("/") or s.startswith("/vsi") or "://" in s or "!" in s:
        raise InvalidInput(_l("无法读取文件：临时路径异常"))
    return s


# ---------------------------------------------------------------------------- reading
def read_vector(path: str | Path, *, label: str, kind: str | None = None,
                database: str | Path | None = None, max_rows: int = 0,
                encoding: str | None = None, undefined_srs: bool = False) -> VectorFile:
    """Judge and read one uploaded GeoJSON, GeoPackage or extracted shapefile (``.shp``).

    GeoJSON and GeoPackage files are copied under a fixed name into a fresh temporary
    folder before anything opens them; a shapefile must already be our own extraction
    (``extract_shapefile`` writes ``layer.*`` into a temporary folder).
    """
    path = Path(path)
    configure_gdal()  # idempotent; the app and the CLI already did it at start
    guard_source(path, label, database)
    kind = check_kind(path, label, kind)
    if kind == "zip":
        raise InvalidInput(_l("%(file)s：zip 须先解压", file=label))
    if kind == "shapefile":
        for ext in (".shx", ".dbf", ".prj", ".cpg"):
            part = path.with_suffix(ext)
            if part.exists() or part.is_symlink():
                guard_source(part, label, database)
        gdf = _read_shapefile(path, label, max_rows, encoding)
        check_crs_kind(gdf.crs, label)
        return VectorFile(gdf, kind)
    with tempfile.TemporaryDirectory(prefix="geoapp-vector-") as tmp:
        copy = Path(tmp) / f"upload.{kind}"
        shutil.copyfile(path, copy, follow_symlinks=False)
        if kind == "geojson":
            declared = _sanitise_geojson(copy, label, max_rows)
            gdf = _gdal_read(f"GeoJSON:{_gdal_path(copy)}", label, kind, encoding=None)
            gdf = gdf.set_crs(declared or _epsg_crs(4326, label), allow_override=True)
        else:
            table, undefined = _check_geopackage(copy, label, max_rows, undefined_srs)
            gdf = _gdal_read(f"GPKG:{_gdal_path(copy)}", label, kind, layer=table)
            if undefined:  # GDAL's "undefined" systems: no system at all, the caller's to name
                gdf = gdf.set_crs(None, allow_override=True)
    check_crs_kind(gdf.crs, label)
    return VectorFile(gdf, kind)


def looks_like_dxf(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a DXF drawing (ASCII or binary)."""
    return head.startswith(_DXF_BINARY) or bool(_DXF_TEXT.match(head.lstrip(b"\xef\xbb\xbf")))


def read_dxf(path: str | Path, *, label: str, database: str | Path | None = None,
             max_rows: int = 0) -> gpd.GeoDataFrame:
    """Judge and read the model-space entities of an uploaded DXF drawing (no CRS: DXF has
    none). The content must be DXF before GDAL sees it (GDAL would open any format by its
    content), the copy GDAL opens is ours, the driver is checked, and at most ``max_rows``
    entities are read."""
    path = Path(path)
    configure_gdal()
    guard_source(path, label, database)
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not looks_like_dxf(head):
        raise _cannot_read(label, "dxf", _l("不以 DXF 的 SECTION 开头"))
    data = path.read_bytes()
    encoding = dxf_encoding(data)
    options = dict(DXF_OPEN_OPTIONS)
    with tempfile.TemporaryDirectory(prefix="geoapp-vector-") as tmp:
        copy = Path(tmp) / "upload.dxf"
        if encoding is not None:
            options["ENCODING"] = encoding
            if not _DXF_HEADER.search(data[:65536]):  # GDAL applies ENCODING with a header
                newline = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
                data = newline.join([b"0", b"SECTION", b"2", b"HEADER", b"0", b"ENDSEC", b""]) \
                    + data.removeprefix(b"\xef\xbb\xbf")
            copy.write_bytes(data)
        else:
            shutil.copyfile(path, copy, follow_symlinks=False)
        gdf = _gdal_read(_gdal_path(copy), label, "dxf", layer="entities",
                         options=options, max_features=max_rows + 1 if max_rows else None)
    if max_rows and len(gdf) > max_rows:
        raise InvalidInput(_l("要素过多：%(file)s 有超过 %(max)s 个图元，超过接受的数量；请只导出用地红线所在的"
                              "图层", file=label, max=max_rows))
    return gdf


def dxf_encoding(data: bytes) -> str | None:
    """How the text of an ASCII DXF drawing is encoded, for GDAL's ENCODING open option:
    UTF-8 from AutoCAD 2007 (AC1021) on, whatever ``$DWGCODEPAGE`` says; else the code page
    (ANSI_936 -> GB18030); with no code page, UTF-8 when the text decodes as UTF-8, else
    GB18030 when it decodes as that (Chinese CAD's GBK). None: all ASCII, a binary DXF or a
    code page not known here (GDAL's own reading)."""
    if data.startswith(_DXF_BINARY):
        return None
    head = data[:262144]
    version = _DXF_ACADVER.search(head)
    if version and int(version.group(1)) >= 1021:
        return "UTF-8"
    page = _DXF_CODEPAGE.search(head)
    if page:
        return _DXF_CODEPAGES.get(page.group(1).decode("ascii").upper())
    if data.isascii():
        return None
    for codec, name in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            continue
        return name
    return None


def _cannot_read(label: str, kind: str, why: str = "") -> InvalidInput:
    if why:
        return InvalidInput(_l("无法读取文件：%(file)s 不是有效的 %(format)s 文件（%(why)s）",
                               file=label, format=_NAMES[kind], why=why))
    return InvalidInput(_l("无法读取文件：%(file)s 不是有效的 %(format)s 文件", file=label,
                           format=_NAMES[kind]))


def _too_many(label: str, n: int, max_rows: int) -> InvalidInput:
    return InvalidInput(_l("要素过多：%(file)s 有 %(count)s 个要素，超过接受的 %(max)s 个（MAX_ROWS）",
                           file=label, count=n, max=max_rows))


def _gdal_read(source: str, label: str, kind: str, *, layer: str | None = None,
               encoding: str | None = None, options: dict[str, str] | None = None,
               max_features: int | None = None) -> gpd.GeoDataFrame:
    kwargs: dict[str, Any] = dict(options or {})
    if layer is not None:
        kwargs["layer"] = layer
    if encoding:
        kwargs["encoding"] = encoding
    try:
        info = pyogrio.read_info(source, **kwargs)
        if info.get("driver") != DRIVERS[kind]:
            log.warning("upload %s opened by GDAL driver %s, expected %s; refused", label,
                        info.get("driver"), DRIVERS[kind])
            raise _cannot_read(label, kind)
        with warnings.catch_warnings():  # NaN coordinates: judged by the caller, named
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            gdf = pyogrio.read_dataframe(source, max_features=max_features, **kwargs)
    except GeoappError:
        raise
    except UnicodeDecodeError as exc:
        log.warning("upload %s: text decoding failed: %s", label, exc)
        raise InvalidInput(_l("文字编码错误：%(file)s 的文字不是 %(encoding)s；请在编码栏写明文件的编码",
                              file=label, encoding=encoding or "UTF-8")) from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        log.warning("upload %s: GDAL could not read it as %s: %s", label, kind, exc)
        raise _cannot_read(label, kind) from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise InvalidInput(_l("文件没有几何：%(file)s 没有几何列", file=label))
    return gdf


# ---------------------------------------------------------------------------- GeoJSON
class _JSONObject(dict):
    """A parsed JSON object that remembers whether a member name was given twice."""

    duplicated: bool = False


def _json_object(pairs: list[tuple[str, Any]]) -> _JSONObject:
    obj = _JSONObject(pairs)
    if any("\x00" in k for k, _ in pairs):
        # json-c (GDAL's parser) cuts a name at NUL: "crs\u0000x" would be "crs" to GDAL
        raise ValueError("a member name holds a NUL character")
    obj.duplicated = len(obj) != len(pairs)
    return obj


def _sanitise_geojson(path: Path, label: str, max_rows: int) -> Any:
    """Parse the GeoJSON at ``path``, judge it and rewrite it without any crs member.

    Returns the declared coordinate system (a pyproj CRS built from an EPSG code) or None.
    GDAL finds members whatever their case and reads a ``crs`` in the document and in each
    geometry (a link is fetched, a name goes to PROJ), so GDAL is given none at all.
    """
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"), object_pairs_hook=_json_object)
    except UnicodeDecodeError:
        raise InvalidInput(_l("文字编码错误：%(file)s 不是 UTF-8 文本（GeoJSON 按规定为 UTF-8）",
                              file=label)) from None
    except (ValueError, RecursionError) as exc:
        log.warning("upload %s: not JSON: %s", label, exc)
        raise _cannot_read(label, "geojson", _l("不是 JSON 文本")) from None
    if not isinstance(doc, dict) or doc.get("type") not in ("FeatureCollection", "Feature"):
        raise _cannot_read(label, "geojson", _l("应为 FeatureCollection 或 Feature"))
    _check_members(doc, label)
    top = _pop_crs_members(doc)
    if len(top) > 1:
        raise _crs_member_refused(label, _l("有多个 crs 成员"))
    declared = declared_geojson_crs(top[0], label) if top else None
    features = doc.get("features") if doc["type"] == "FeatureCollection" else [doc]
    if not isinstance(features, list):
        raise _cannot_read(label, "geojson", _l("features 不是列表"))
    if max_rows and len(features) > max_rows:
        raise _too_many(label, len(features), max_rows)
    # Every object below the top: features, geometries, nested geometry collections and
    # any foreign member (never inside properties or coordinates, which are data).
    stack: list[Any] = [v for k, v in doc.items() if k.lower() not in _GEOJSON_DATA]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
        elif isinstance(item, dict):
            _check_members(item, label)
            if _pop_crs_members(item):
                raise _crs_member_refused(label, _l("文档顶层以下有 crs 成员"))
            stack.extend(v for k, v in item.items()
                         if k.lower() not in _GEOJSON_DATA and isinstance(v, dict | list))
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return declared


def _check_members(obj: dict, label: str) -> None:
    """GDAL takes the first member whose name matches in any case: no two may match."""
    if getattr(obj, "duplicated", False) or len({k.lower() for k in obj}) != len(obj):
        raise _cannot_read(label, "geojson", _l("有成员名出现了两次"))


def _pop_crs_members(obj: dict) -> list[Any]:
    """Remove and return the values of the crs-like members of ``obj`` (any letter case)."""
    found = []
    for key in [k for k in obj if k.lower() in _GEOJSON_CRS_MEMBERS]:
        value = obj.pop(key)
        if key.lower() == "crs":
            found.append(value)
    return found


def _crs_member_refused(label: str, why: str) -> InvalidInput:
    return InvalidInput(_l("不接受的坐标系声明：%(file)s（%(why)s）：只接受文档顶层的一个 crs，且须为 "
                           "EPSG/OGC 坐标系名称（如 urn:ogc:def:crs:EPSG::4326），不接受链接、文件或 "
                           "PROJ 字符串；WGS84 数据请删除 crs 成员", file=label, why=why))


def declared_geojson_crs(crs: Any, label: str) -> Any:
    """The pyproj CRS a top-level ``crs`` member names: only an EPSG or OGC name."""
    name = None
    if isinstance(crs, dict):
        members = {k.lower(): v for k, v in crs.items()}
        props = members.get("properties")
        if str(members.get("type", "")).lower() == "name" and isinstance(props, dict):
            name = {k.lower(): v for k, v in props.items()}.get("name")
    text = name.strip() if isinstance(name, str) else ""
    epsg, ogc = _EPSG_NAME.match(text), _OGC_NAME.match(text)
    if not (epsg or ogc):
        raise _crs_member_refused(label, _l("不是 EPSG/OGC 坐标系名称"))
    return _epsg_crs(int(epsg.group(1)) if epsg else _OGC_CRS[ogc.group(1).lower()], label)


def _epsg_crs(code: int, label: str) -> Any:
    """A pyproj CRS from an EPSG code (PROJ's database only, nothing from the upload)."""
    try:
        return pyproj.CRS.from_epsg(code)
    except pyproj.exceptions.CRSError:
        raise InvalidInput(_l("未知的坐标系：%(file)s：%(code)s 不是 EPSG 代码；请写例如 EPSG:4326、"
                              "EPSG:4490 或 EPSG:4547", file=label, code="EPSG:" + str(code))) from None


# ---------------------------------------------------------------------------- GeoPackage
def _check_geopackage(path: Path, label: str, max_rows: int,
                      undefined_srs: bool = False) -> tuple[str, bool]:
    """Judge the GeoPackage with SQLite itself, read-only; return its one feature table and
    whether its system is an undefined one (accepted only with ``undefined_srs``)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _cannot_read(label, "gpkg", _l("不是 SQLite 文件"))
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if page_size < 512 or page_size & (page_size - 1) or size % page_size \
            or pages * page_size > size:
        raise _cannot_read(label, "gpkg", _l("已损坏或不完整"))
    uri = "file:" + _gdal_path(path) + "?mode=ro&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        log.warning("upload %s: sqlite cannot open it: %s", label, exc)
        raise _cannot_read(label, "gpkg") from None
    try:
        return _judge_geopackage(con, label, max_rows, undefined_srs)
    except sqlite3.Error as exc:
        log.warning("upload %s: sqlite error while checking it: %s", label, exc)
        raise _cannot_read(label, "gpkg") from None
    finally:
        con.close()


def _judge_geopackage(con: sqlite3.Connection, label: str, max_rows: int,
                      undefined_srs: bool = False) -> tuple[str, bool]:
    con.execute("PRAGMA trusted_schema=OFF")
    if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise _cannot_read(label, "gpkg", _l("数据库已损坏"))
    schema = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    names = {n for _, n, _, _ in schema}
    if "gpkg_contents" not in names or "gpkg_spatial_ref_sys" not in names:
        raise _cannot_read(label, "gpkg", _l("SQLite 文件中没有 gpkg_contents"))
    for typ, name, _, sql in schema:
        text = (sql or "").lower()
        if typ == "view":
            raise InvalidInput(_l("GeoPackage %(file)s 含视图（%(name)s）；请把图层导出为普通表",
                                  file=label, name=name))
        if typ == "trigger" and not _STANDARD_TRIGGER.match(name):
            raise InvalidInput(_l("GeoPackage %(file)s 含触发器（%(name)s）；请导出不带触发器的图层",
                                  file=label, name=name))
        if typ == "table" and text.startswith("create virtual table") \
                and not re.search(r"\busing\s+rtree\s*\(", text):
            raise InvalidInput(_l("GeoPackage %(file)s 含虚拟表（%(name)s）；请把图层导出为普通表",
                                  file=label, name=name))
    contents = con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall()
    if len(contents) > MAX_GPKG_TABLES:
        raise InvalidInput(_l("GeoPackage 表过多：%(file)s 列出了 %(count)s 个表，最多接受 %(max)s 个",
                              file=label, count=len(contents), max=MAX_GPKG_TABLES))
    features = [t for t, kind in contents if str(kind).lower() == "features"]
    if not features:
        raise InvalidInput(_l("GeoPackage %(file)s 没有要素表（只有属性，没有几何）；请导出带几何的图层",
                              file=label))
    if len(features) > 1:
        raise InvalidInput(_l("GeoPackage %(file)s 含多个图层：%(count)s 个要素表（%(names)s）；"
                              "每个文件只上传一个图层", file=label, count=len(features),
                              names=", ".join(features[:10])))
    table = features[0]
    if table not in names or any(typ != "table" for typ, n, _, _ in schema if n == table):
        raise _cannot_read(label, "gpkg", _l("缺少表 %(table)s", table=table))
    quoted = '"' + table.replace('"', '""') + '"'
    cols = con.execute(f"PRAGMA table_xinfo({quoted})").fetchall()
    if any(c[6] in (2, 3) for c in cols):  # hidden: 2 virtual, 3 stored generated column
        raise InvalidInput(_l("GeoPackage %(file)s 含计算列；请把图层导出为普通值", file=label))
    n = con.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
    if max_rows and n > max_rows:
        raise _too_many(label, n, max_rows)
    return table, _judge_srs_rows(con, label, table, undefined_srs)


def _judge_srs_rows(con: sqlite3.Connection, label: str, table: str,
                    undefined_srs: bool = False) -> bool:
    """Every ``gpkg_spatial_ref_sys`` row: nothing PROJ would open a file or URL for; the
    row the feature table uses: WKT (or "undefined"), a plain organization and code. With
    ``undefined_srs``, GDAL's own "Undefined SRS" (LOCAL_CS, srs_id 99999) is accepted too;
    returns whether the table's system is an undefined one (that, "undefined" rows such as
    the standard's -1 and 0).

    GDAL builds the CRS from the EPSG code when the row's organization is EPSG with its
    own srs_id as code, else from the definition text.
    """
    srs_cols = {r[1].lower() for r in con.execute("PRAGMA table_info(gpkg_spatial_ref_sys)")}
    wkt2 = ", definition_12_063" if "definition_12_063" in srs_cols else ", NULL"
    rows = con.execute("SELECT srs_id, organization, organization_coordsys_id, definition"
                       f"{wkt2} FROM gpkg_spatial_ref_sys").fetchall()
    used = {r[0] for r in con.execute(
        "SELECT srs_id FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?) "
        "UNION SELECT srs_id FROM gpkg_contents WHERE lower(table_name) = lower(?)",
        (table, table))}
    known = set()
    undefined: set[Any] = set()
    for srs_id, org, code, *texts in rows:
        known.add(srs_id)
        by_code = (isinstance(org, str) and org.upper() == "EPSG" and isinstance(code, int)
                   and code == srs_id)
        if not (isinstance(org, str) and _ORGANIZATION.match(org) and isinstance(code, int)
                and isinstance(srs_id, int)):
            raise _srs_refused(label, srs_id, _l("机构或代码不是普通的名称和数字"))
        for text in texts:
            if text is None or (srs_id not in used and not isinstance(text, str)):
                continue
            if not isinstance(text, str) or len(text) > MAX_CRS_TEXT:
                raise _srs_refused(label, srs_id, _l("定义不是 WKT 文本"))
            why = unsafe_crs_text(text, allow_proj4_extension=by_code)
            if why:
                raise _srs_refused(label, srs_id, why)
            if srs_id in used and (text.strip().lower() == "undefined" or (
                    undefined_srs and _UNDEFINED_SRS.match(text))):
                undefined.add(srs_id)
            elif srs_id in used and not _WKT_START.match(text):
                raise _srs_refused(label, srs_id, _l("定义不是 WKT 坐标系"))
    if not used <= known:
        raise _cannot_read(label, "gpkg", _l("图层的坐标系未列出"))
    return undefined_srs and bool(used) and used <= undefined


def _srs_refused(label: str, srs_id: Any, why: str) -> InvalidInput:
    return InvalidInput(_l("不接受的坐标系定义：%(file)s（gpkg_spatial_ref_sys srs_id %(srs)s）："
                           "%(why)s；请用 EPSG 坐标系导出图层", file=label, srs=str(srs_id)[:20],
                           why=why))


# ---------------------------------------------------------------------------- Shapefile
def _read_shapefile(shp: Path, label: str, max_rows: int,
                    encoding: str | None) -> gpd.GeoDataFrame:
    shx, dbf, prj, cpg = (shp.with_suffix(e) for e in (".shx", ".dbf", ".prj", ".cpg"))
    if not _starts(shx, _SHP_MAGIC, 100):
        raise _cannot_read(label, "shapefile", _l(".shx 不是 Shapefile 索引"))
    with dbf.open("rb") as fh:
        first = fh.read(32)
    if len(first) < 32 or first[0] not in _DBF_VERSIONS:
        raise _cannot_read(label, "shapefile", _l(".dbf 不是 dBase 表"))
    wkt = None
    if prj.is_file():
        wkt = _check_prj(prj, label)
    if cpg.is_file() and (cpg.stat().st_size > 64
                          or not re.fullmatch(rb"[\w .:-]*\s*", cpg.read_bytes())):
        raise _cannot_read(label, "shapefile", _l(".cpg 不是编码名称"))
    n = max(0, (shx.stat().st_size - 100) // 8)
    if max_rows and n > max_rows:
        raise _too_many(label, n, max_rows)
    gdf = _gdal_read(_gdal_path(shp), label, "shapefile", encoding=encoding)
    code = _root_epsg(wkt) if wkt else None
    if code is not None:  # the system the .prj names by its EPSG code, from PROJ's database
        gdf = gdf.set_crs(_epsg_crs(code, label), allow_override=True)
    elif wkt and gdf.crs is None:  # GDAL made nothing of it (a geocentric system): say why
        try:
            check_crs_kind(pyproj.CRS.from_wkt(wkt), label)  # judged safe above
        except pyproj.exceptions.CRSError:
            raise _prj_refused(label, NOT_WKT) from None
    return gdf


def _check_prj(prj: Path, label: str) -> str:
    """The .prj's WKT, judged before GDAL reads it (GDAL and PROJ act on what it says)."""
    if prj.stat().st_size > MAX_CRS_TEXT:
        raise _prj_refused(label, _l("大于 %(kb)s KB", kb=MAX_CRS_TEXT // 1024))
    try:
        wkt = prj.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        wkt = ""
    if not _WKT_START.match(wkt):
        raise _prj_refused(label, NOT_WKT)
    why = unsafe_crs_text(wkt)
    if why:
        raise _prj_refused(label, why)
    return wkt


NOT_WKT = _l("不是 WKT 坐标系")


def _prj_refused(label: str, why: str) -> InvalidInput:
    return InvalidInput(_l("无法读取坐标系：%(file)s 的 .prj %(why)s；请修正 .prj，或删除它并在坐标系栏写明"
                           "坐标系", file=label, why=why))


def _starts(path: Path, magic: bytes, min_size: int) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(min_size)
    except OSError:
        return False
    return len(head) >= min_size and head.startswith(magic)


# ---------------------------------------------------------------------------- CRS
def unsafe_crs_text(text: str, *, allow_proj4_extension: bool = False) -> str | None:
    """Why PROJ could open a file or a URL for this coordinate system text, else None.

    Refused: a PROJ string's ``+init``, grids (``+nadgrids`` but the built-in ``@null``,
    ``+geoidgrids``, ``grids=``), ``file=``, ``model=``, pipelines and ``@`` lists, WKT2
    ``PARAMETERFILE``, and any ``EXTENSION["PROJ4", ...]`` unless ``allow_proj4_extension``
    (a GeoPackage row GDAL builds from its EPSG code; GDAL writes one for EPSG:3857).
    """
    if _PROJ4_EXTENSION.search(text) and not allow_proj4_extension:
        return _l('带有 PROJ 字符串（EXTENSION["PROJ4", ...]）')
    found = _PROJ_FILE_USE.search(_NULL_GRID.sub(" ", text))
    if found:
        return _l("指定了要 PROJ 打开的文件或格网（%(what)s）；不接受格网、init 文件和链接",
                  what=found.group(0).strip()[:20])
    return None


def _root_epsg(wkt: str) -> int | None:
    """The EPSG code of the WKT's outermost system (its own AUTHORITY/ID), else None."""
    depth = 0
    token = re.compile(r'"[^"]*"|\[|\]|\b(?:AUTHORITY|ID)\s*\[\s*"EPSG"\s*,\s*"?(\d{1,6})"?'
                       r'\s*(?:,[^\[\]]*)?\]', re.IGNORECASE)
    code = None
    for m in token.finditer(wkt):
        if m.group(0) == "[":
            depth += 1
        elif m.group(0) == "]":
            depth -= 1
        elif m.group(1) and depth == 1:
            code = int(m.group(1))
    return code


def check_crs_kind(crs: Any, label: str) -> None:
    """A file's own system must be 2-D geographic or projected, as for typed-in points
    (``spatial.crs``): geocentric, vertical, 3-D and compound systems are refused."""
    if crs is None or is_flat_crs(crs):
        return
    base = crs.source_crs if crs.type_name == "Bound CRS" and crs.source_crs else crs
    raise InvalidInput(_l("不支持的坐标系：%(file)s：%(crs)s（%(kind)s）；只接受二维的地理坐标系（经纬度）"
                          "或投影坐标系（x/y），如 EPSG:4326、EPSG:4490 或 EPSG:4547", file=label,
                          crs=str(base.name)[:60], kind=base.type_name))


def unknown_datum(crs: Any) -> str | None:
    """The datum's name when no authority knows it (an invented "GCJ_02"), else None."""
    if crs is None:
        return None
    try:
        geo = crs.geodetic_crs or crs
        datum = geo.datum
    except Exception:  # noqa: BLE001 - an odd CRS object: judged by the caller's conversion
        return None
    if datum is None:
        return None
    info = datum.to_json_dict()
    if info.get("id") or info.get("ids"):
        return None
    try:
        pyproj.crs.Datum.from_name(datum.name)
        return None
    except Exception:  # noqa: BLE001 - pyproj raises CRSError for an unknown name
        return datum.name

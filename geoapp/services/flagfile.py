"""Batch flagging of a file of sites: CSV, XLSX, GeoJSON or GeoPackage in, the same out.

Every input row comes out with the verdict the single check gives the same site (不符合
fail, 符合 pass, 待核实 needs_info, 超出本市数据范围 out_of_area; ``domain.results.Verdict``),
the rules it breaks with their basis and action, the rules that would apply if a missing
attribute had the value they name, and the hits and conditional hits as JSON lists with the
API's keys. Headers and text are Chinese by default, English with ``lang="en"`` (see
``OUTPUT_HEADERS``). Every attribute a rule reads (``RuleSet.attributes()``: ``site_type``,
``industry``, ``fuel``…) is read from the input column of that name.

Rows whose coordinates are missing or impossible are reported with their row numbers;
without ``skip_bad`` the whole file is refused (exit 2, nothing written), with it they come
out with verdict ``error`` (坐标错误) and the reason, never dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import shapely

from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.domain.results import Severity, Verdict, row_verdicts
from geoapp.domain.rules import RuleSpec, applicability, condition_text, conditional_hit, make_hit
from geoapp.domain.text import document_text
from geoapp.domain.vocab import SiteType
from geoapp.exports.tables import neutralise
from geoapp.services import check_row_limit
from geoapp.services.catalogue import in_language
from geoapp.services.checks import engine
from geoapp.services.flagout import csv_field, open_writer, write_part  # noqa: F401 - csv_field: API
from geoapp.services.flagparts import (
    DEFAULT_PARTITION_ROWS,
    PARQUET_PARTITION_ROWS,
    CsvPart,
    Part,
    Source,
    csv_source,
    frame_source,
    parquet_source,
)
from geoapp.spatial.crs import array_to_wgs84, resolve_crs
from geoapp.spatial.engine import RuleEngine
from geoapp.storage.tables_in import Limits, read_frame
from geoapp.storage.vector_in import guard_source, read_vector, unknown_datum

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".geojson": "geojson", ".json": "geojson",
           ".gpkg": "gpkg", ".parquet": "parquet", ".geoparquet": "parquet"}
MAX_REPORTED_ROWS = 200

#: What each added column holds, in output order (the English headers are these names).
OUTPUT_KEYS = ("verdict", "rules", "rule_ids", "hit_count", "min_distance_m",
               "conditional_rules", "basis", "action", "error", "hits", "conditional_hits")
#: The headers of the added columns by language, in the order of ``OUTPUT_KEYS``. ``hits``
#: and ``conditional_hits`` (JSON, for programs) are named alike in both. An input column
#: of the same name keeps its name; the added one gets a suffix (``结论_1``).
OUTPUT_HEADERS: dict[str, tuple[str, ...]] = {
    "zh": ("结论", "触发规则", "规则编号", "命中数", "最近距离_m", "待核实规则", "依据", "处理措施",
           "错误原因", "hits", "conditional_hits"),
    "en": OUTPUT_KEYS,
}
LANGS = tuple(OUTPUT_HEADERS)
#: The verdict of a row whose coordinates are missing or impossible.
ERROR_VERDICT = {"zh": "坐标错误", "en": "error"}
#: Attributes read from the columns ``FlagOptions.type_col`` / ``industry_col`` name.
_OWN_COLUMNS = ("site_type", "industry")
#: The new site of a relocation (WGS84), checked by every rule as ``flag_all`` does.
_NEW_SITE = ("new_lon", "new_lat")


@dataclass
class FlagOptions:
    lon_col: str = "lon"
    lat_col: str = "lat"
    crs: str | None = None          # None: a `crs` column per row, else wgs84
    type_col: str = "site_type"
    industry_col: str = "industry"
    skip_bad: bool = False
    default_site_type: str | None = None
    lang: str = "zh"                # headers and text of the added columns: zh or en


def verdict_labels(lang: str) -> dict[str, str]:
    """What the verdict column says for each verdict (and ``error``) in ``lang``: the
    Chinese words, or in English the API's codes (fail, pass, needs_info, out_of_area)."""
    out = {v.value: (v.zh if lang == "zh" else v.value) for v in Verdict}
    out["error"] = ERROR_VERDICT[lang]
    return out


def output_headers(lang: str) -> tuple[str, ...]:
    """The headers of the added columns in ``lang`` (before any collision suffix)."""
    if lang not in OUTPUT_HEADERS:
        raise InvalidInput(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    return OUTPUT_HEADERS[lang]


def file_format(path: str | Path) -> str:
    """The format of ``path`` from its extension; a folder is a Parquet dataset."""
    if Path(path).is_dir():
        return "parquet"
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InvalidInput(f"{Path(path).name}: unsupported file type {ext or '(none)'}; "
                           f"use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[ext]


# -- reading -----------------------------------------------------------------------------
def open_source(src: Path, fmt: str, label: str, limits: Limits | None, partition_rows: int,
                database: Any = None) -> Source:
    """The input's columns, CRS and partitions (see ``services.flagparts``)."""
    if fmt == "csv":
        return csv_source(src, label, limits, partition_rows)
    if fmt == "parquet":
        return parquet_source(src, label, limits, partition_rows)
    if fmt == "xlsx":  # storage.tables_in: limits judged before parsing
        return frame_source(read_frame(src, name=label, limits=limits), partition_rows)
    # storage.vector_in: format from extension and content, GDAL's driver named, the
    # GeoPackage judged with SQLite first; GDAL only ever opens a private copy.
    guard_source(src, label, database)  # never a symlink, never the app's own database
    max_rows = limits.max_rows if limits is not None else None
    gdf = read_vector(src, label=label, kind=fmt, max_rows=max_rows or 0).gdf
    return frame_source(gdf, partition_rows,
                        gdf.crs.to_string() if gdf.crs is not None else None,
                        unknown_datum(gdf.crs))


def source_crs(source: Source, fmt: str, opts: FlagOptions) -> str | None:
    """The CRS a spatial input's geometry is read in (None for tables), judged once."""
    if source.geometry is None:
        return None
    file_crs = source.file_crs
    if file_crs is None:
        raise InvalidInput("the file declares no coordinate system; add one (GeoJSON is "
                           "WGS84 by definition) or convert it to CSV with a crs column")
    invented = source.crs_unknown_datum
    if invented and not opts.crs:
        raise InvalidInput(f"坐标系基准面未知 Unknown datum: the file's coordinate system "
                           f"names the datum {invented!r}, which no authority defines; "
                           "name the real system with --crs (the crs field), e.g. "
                           "cgcs2000 or wgs84")
    if invented:
        return opts.crs
    if opts.crs and resolve_crs(opts.crs) != resolve_crs(file_crs):
        raise InvalidInput(f"--crs {opts.crs} contradicts the file's own CRS {file_crs}")
    return file_crs


def _coordinates(table: pa.Table, df: pd.DataFrame, job: FlagJob,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, str]]:
    opts = job.opts
    n = len(df)
    if job.geometry is not None:
        wkb = table.column(job.geometry).to_numpy(zero_copy_only=False)
        geom = shapely.from_wkb(wkb, on_invalid="ignore")
        empty = shapely.is_missing(geom) | shapely.is_empty(geom)
        pts = shapely.point_on_surface(np.where(empty, None, geom))
        x = np.where(empty, np.nan, shapely.get_x(pts))
        y = np.where(empty, np.nan, shapely.get_y(pts))
        return array_to_wgs84(x, y, job.file_crs, job.metric_crs)
    for col in (opts.lon_col, opts.lat_col):
        if col not in job.columns:
            raise InvalidInput(f"no column {col!r}; the file has: {', '.join(job.columns)}"
                               "; name the coordinate columns with --lon-col/--lat-col")
    x, y = _numbers(table, df, opts.lon_col), _numbers(table, df, opts.lat_col)
    if opts.crs or "crs" not in df.columns:
        return array_to_wgs84(x, y, opts.crs or "wgs84", job.metric_crs)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    bad, reasons = np.zeros(n, dtype=bool), {}
    names = df["crs"].astype(object).fillna("").astype(str).str.strip().str.lower() \
        .replace("", "wgs84")
    codes, uniques = pd.factorize(names)
    for k, name in enumerate(uniques):
        rows = np.flatnonzero(codes == k)
        try:
            lo, la, b, r = array_to_wgs84(x[rows], y[rows], name, job.metric_crs)
        except InvalidInput as exc:
            lo, la, b = np.full(len(rows), np.nan), np.full(len(rows), np.nan), \
                np.ones(len(rows), dtype=bool)
            r = dict.fromkeys(range(len(rows)), exc.message)
        lon[rows], lat[rows], bad[rows] = lo, la, b
        reasons.update({int(rows[k2]): v for k2, v in r.items()})
    return lon, lat, bad, reasons


def _numbers(table: pa.Table, df: pd.DataFrame, name: str) -> np.ndarray:
    """A coordinate column as array_to_wgs84 takes it: numbers as floats; text as floats
    when every cell is a plain decimal number (Arrow parses them), else as the text, which
    ``array_to_wgs84`` judges cell by cell (and names what is wrong)."""
    col = table.column(name)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return col.to_numpy().astype(float)
    if pa.types.is_string(col.type) and col.null_count == 0:
        try:
            plain = pc.all(pc.match_substring_regex(col, _PLAIN_NUMBER)).as_py()
            if plain is not False:
                return pc.cast(col, pa.float64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return col.to_pandas().astype(object).to_numpy()


#: A decimal number as anyone types it (no exponent, no spaces, no thousands separator).
_PLAIN_NUMBER = r"^-?[0-9]{1,4}(\.[0-9]{1,15})?$"



def _row_number(fmt: str, i: int) -> int:
    """What the user sees: spreadsheet line numbers for tables, feature numbers otherwise."""
    return i + 2 if fmt in ("csv", "xlsx") else i + 1


# -- the attributes the rules read ----------------------------------------------------------
def _column(df: pd.DataFrame, name: str | None) -> np.ndarray | None:
    """A column as an object array, blank text as None; None when the file lacks it."""
    if not name or name not in df.columns or name == "geometry":
        return None
    col = df[name]
    return col.astype(object).where(col != "", None).to_numpy()


def _site_types(values: np.ndarray) -> np.ndarray:
    """Site types as the engine names them (``畜禽养殖场`` -> ``livestock_farm``), parsed once
    per distinct value; unknown text is passed on as given (it matches no rule's type)."""
    codes, uniques = pd.factorize(values)
    if not len(uniques):
        return values
    names = []
    for u in uniques:
        try:
            names.append(SiteType.parse(u).value)
        except ValueError:
            names.append(u)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = names
    table[-1] = None  # code -1: missing
    return table[codes]


def site_columns(df: pd.DataFrame, opts: FlagOptions,
                 attributes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every attribute a rule reads, from the input column of that name (site type and
    industry from ``type_col``/``industry_col``); an absent column is left out, so every
    rule reading it is decided as the single check decides a missing attribute."""
    n = len(df)
    cols: dict[str, np.ndarray] = {}
    st = _column(df, opts.type_col)
    if st is None:
        st = np.full(n, opts.default_site_type, dtype=object)
    cols["site_type"] = _site_types(st)
    industry = _column(df, opts.industry_col)
    if industry is not None:
        cols["industry"] = industry
    for attr in attributes:
        if attr not in _OWN_COLUMNS:
            values = _column(df, attr)
            if values is not None:
                cols[attr] = values
    if all(c in df.columns for c in _NEW_SITE):
        for c in _NEW_SITE:
            cols[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
    return cols


# -- output columns ----------------------------------------------------------------------
#: Stand-in distances: a hit's JSON is made once per distinct hit with one of these as its
#: distance and cut where it appears, so each hit only puts its own distance in between.
_MARKERS = (918273645.5, 827364591.5)


def _json_pieces(make: Callable[[float], dict[str, Any]]) -> list[str]:
    """``make(d)`` as compact JSON, cut at every place the distance ``d`` is written (the
    number, and a sentence's ``f"{d:.1f}"``, which is the same text for a distance in tenths
    of a metre)."""
    best: list[str] | None = None
    for marker in _MARKERS:  # a marker that also occurs in some text cuts more pieces
        text = json.dumps(make(marker), ensure_ascii=False, separators=(",", ":"))
        parts = text.split(repr(marker))
        if best is None or len(parts) < len(best):
            best = parts
    assert best is not None
    return best


def _factorize_rows(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct combinations of the columns' values (missing values alike),
    and the first row of each combination."""
    n = len(columns[0]) if columns else 0
    key = np.zeros(n, dtype=np.int64)
    for values in columns:
        codes, uniques = pd.factorize(values)
        key = key * (len(uniques) + 1) + (codes + 1)
        key = pd.factorize(key)[0]  # renumbered: many columns never overflow int64
    codes, uniques = pd.factorize(key)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)
    return codes, first


class _Pieces:
    """A JSON-list column kept as codes: row ``rows[i]``'s text is the concatenation of
    ``texts[items[starts[i]:ends[i]]]``; every other row's is ``[]``. Arrow gathers and
    joins the pieces (``to_arrow``), so no per-row or per-hit string is built in Python.
    ``hits`` holds each hit's first and last piece (without the list's brackets and commas),
    for the list-of-structs columns of Parquet."""

    def __init__(self, n: int, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 items: np.ndarray, texts: list[str],
                 hit_spans: tuple[np.ndarray, np.ndarray] | None = None,
                 hit_rows: np.ndarray | None = None) -> None:
        self.n, self.rows, self.starts, self.ends, self.items = n, rows, starts, ends, items
        self.texts = texts
        self.hit_spans = hit_spans
        self.hit_rows = hit_rows

    @classmethod
    def empty(cls, n: int) -> _Pieces:
        none = np.zeros(0, dtype=np.int64)
        return cls(n, none, none, none, none, [], (none, none), none)

    def to_arrow(self) -> pa.Array:
        """Every row's JSON text (``[]`` for a row without hits)."""
        empty_code = len(self.texts)
        texts = pa.array([*self.texts, "[]"], type=pa.large_string())
        counts = np.ones(self.n, dtype=np.int64)
        counts[self.rows] = self.ends - self.starts
        offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        codes = np.empty(int(offsets[-1]), dtype=np.int64)
        lone = np.ones(self.n, dtype=bool)
        lone[self.rows] = False
        slot = np.zeros(len(codes), dtype=bool)
        slot[offsets[:-1][lone]] = True
        codes[slot] = empty_code
        codes[~slot] = self.items
        values = texts.take(pa.array(codes))
        return pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), values),
                              pa.scalar("", pa.large_string()))

    def to_struct_lists(self, hit_type: pa.DataType) -> pa.Array:
        """Every row's hits as a list of structs (one JSON object per hit, parsed by Arrow's
        JSON reader with the hits' fixed schema)."""
        first, last = self.hit_spans
        rows = self.hit_rows
        per_row = np.bincount(rows, minlength=self.n) if len(rows) else \
            np.zeros(self.n, dtype=np.int64)
        offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(per_row, out=offsets[1:])
        if not len(rows):
            values = pa.array([], type=hit_type)
        else:
            lengths = last - first + 1
            code_rows = np.repeat(np.arange(len(first)), lengths)
            pos = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths,
                                                             lengths)
            codes = self.items[first[code_rows] + pos]
            newline = len(self.texts)
            ends = np.cumsum(lengths + 1) - 1
            flat = np.empty(int(ends[-1]) + 1, dtype=np.int64)
            mask = np.ones(len(flat), dtype=bool)
            mask[ends] = False
            flat[mask] = codes
            flat[ends] = newline
            texts = pa.array([*self.texts, "\n"], type=pa.large_string())
            joined = texts.take(pa.array(flat))
            data = pc.binary_join(pa.LargeListArray.from_arrays(
                pa.array([0, len(flat)], type=pa.int64()), joined),
                pa.scalar("", pa.large_string()))[0].as_buffer()
            parsed = pajson.read_json(pa.BufferReader(data), parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema(list(hit_type)), unexpected_field_behavior="error"),
                read_options=pajson.ReadOptions(block_size=max(1 << 20, min(len(data) + 1,
                                                                           1 << 30))))
            values = pa.StructArray.from_arrays(
                [parsed.column(f.name).combine_chunks() for f in hit_type], fields=list(hit_type))
        return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def _number_texts(values: np.ndarray) -> np.ndarray:
    """Numbers as pandas writes them into CSV (``str`` of each; NaN an empty field), made
    once per distinct value."""
    codes, uniques = pd.factorize(values)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = np.asarray(uniques).astype(str)
    table[-1] = ""  # code -1: NaN
    return table[codes]


def _hit_items(pieces: list[list[str]], combo: np.ndarray, dist: np.ndarray, row: np.ndarray,
               n: int) -> _Pieces:
    """Every row's JSON list of hits as codes: per hit its combination's pieces with its
    distance in every cut, ``[`` before a row's first hit, ``,`` between, ``]`` after."""
    first = np.r_[True, row[1:] != row[:-1]]
    last = np.r_[row[1:] != row[:-1], True]
    sizes = np.array([len(p) for p in pieces], dtype=np.int64)
    cuts = sizes - 1
    base_of = np.zeros(len(pieces), dtype=np.int64)
    np.cumsum(sizes[:-1], out=base_of[1:])
    flat = [q for p in pieces for q in p]
    dcodes, duniq = pd.factorize(dist)
    d0 = len(flat)
    texts = [*flat, *np.asarray(duniq).astype(str).tolist(), "[", "]", ","]
    opening, closing, comma = len(texts) - 3, len(texts) - 2, len(texts) - 1
    k = cuts[combo]
    count = 2 * k + 2 + first
    end = np.cumsum(count)
    off = end - count
    items = np.empty(int(end[-1]) if len(end) else 0, dtype=np.int64)
    items[off[first]] = opening
    base = off + first
    for j in range(int(cuts.max()) + 1 if len(cuts) else 0):
        has = np.flatnonzero(k >= j)
        items[base[has] + 2 * j] = base_of[combo[has]] + j
        more = has[k[has] > j]
        items[base[more] + 2 * j + 1] = d0 + dcodes[more]
    items[base + 2 * k + 1] = np.where(last, closing, comma)
    spans = (base, base + 2 * k)
    return _Pieces(n, row[first], off[first], end[last], items, texts, spans, row)


def row_runs(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each row's run of hits (the hits are sorted by row)."""
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else \
        np.zeros(0, dtype=np.int64)
    return starts, np.r_[starts[1:], len(row)].astype(np.int64)


def run_sets(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              size: int) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Per run, which distinct set of codes (< ``size``) it holds: (set number per run, the
    sets as ascending tuples). Bit masks when they fit in 62 bits, else per-run sets."""
    if not len(starts):
        return np.zeros(0, dtype=np.int64), []
    if size <= 62:
        masks = np.bitwise_or.reduceat(np.left_shift(np.int64(1), codes.astype(np.int64)),
                                       starts)
        uniq, inv = np.unique(masks, return_inverse=True)
        return inv.ravel(), [tuple(i for i in range(size) if (int(m) >> i) & 1)
                             for m in uniq.tolist()]
    items = codes.tolist()
    per = pd.Series([tuple(sorted(set(items[a:b])))
                     for a, b in zip(starts.tolist(), ends.tolist(), strict=True)],
                    dtype=object)
    inv, uniq = pd.factorize(per)
    return inv, list(uniq)


def _sort_hits(hits: pd.DataFrame) -> pd.DataFrame:
    """By row, then as ``Hit.sort_key`` (the API's order): worst severity, nearest, rule."""
    if not len(hits):
        return hits
    rank = hits["severity"].map({s.value: s.rank for s in Severity}).to_numpy(dtype=float)
    rule_codes = pd.factorize(hits["rule_id"].to_numpy(dtype=object), sort=True)[0]
    order = np.lexsort((rule_codes, hits["distance_m"].to_numpy(dtype=float), -rank,
                        hits["row"].to_numpy()))
    return hits.iloc[order].reset_index(drop=True)


def _static_hit(rule: RuleSpec, feature_id: Any, feature_name: Any, severity: str,
                point: str):
    """The ``Hit`` the single check makes for this decided rule, feature and point (its
    distance is set per row)."""
    feature = {"id": None if pd.isna(feature_id) else feature_id,
               "name": None if pd.isna(feature_name) else feature_name}
    return replace(make_hit(rule, 0.0, False, feature, point), severity=severity)


def _hit_json(table: pd.DataFrame, rules: list[RuleSpec], rule_idx: np.ndarray,
              variant: np.ndarray | None, variants: list[tuple] | None, n: int,
              text_ids: bool = False) -> _Pieces:
    """The JSON of every hit (conditional ones with their missing attributes, condition and
    sentence), made once per distinct (rule, condition, feature, severity, point); with
    ``text_ids`` feature ids are written as text (the list-of-structs columns' type)."""
    key_cols = [rule_idx if variant is None else variant,
                table["feature_id"].to_numpy(dtype=object),
                table["feature_name"].to_numpy(dtype=object),
                table["severity"].to_numpy(dtype=object), table["point"].to_numpy(dtype=object)]
    combo, first = _factorize_rows(key_cols)
    pieces = []
    for i in first.tolist():
        rule = rules[rule_idx[i]]
        fid = key_cols[1][i]
        if text_ids and not pd.isna(fid):
            fid = str(fid)
        hit = _static_hit(rule, fid, key_cols[2][i], str(key_cols[3][i]), str(key_cols[4][i]))
        if variant is None:
            pieces.append(_json_pieces(lambda d, h=hit: replace(h, distance_m=d).to_dict()))
        else:
            _, missing, cond = variants[variant[i]]
            pieces.append(_json_pieces(
                lambda d, h=hit, r=rule, m=missing, c=cond:
                conditional_hit(replace(h, distance_m=d), r, m, c).to_dict()))
    return _hit_items(pieces, combo, table["distance_m"].to_numpy(dtype=float).round(1),
                      table["row"].to_numpy(), n)


def _variants(rules: list[RuleSpec], rule_idx: np.ndarray, rows: np.ndarray,
              site: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[tuple]]:
    """Per conditional hit, which (rule, missing attributes, condition) it is: the domain's
    ``applicability`` and ``condition_text`` for each distinct set of the values the rule's
    filter reads (the site type too: it implies attributes). Numbered in rule order."""
    variant = np.zeros(len(rows), dtype=np.int64)
    out: list[tuple] = []
    number: dict[tuple, int] = {}  # many value sets give the same missing attributes
    for ri in np.unique(rule_idx).tolist():
        rule = rules[ri]
        sel = np.flatnonzero(rule_idx == ri)
        attrs = list(dict.fromkeys(["site_type", *(c.attr for clause in rule.applies_to.clauses
                                                   for c in clause)]))
        present = [a for a in attrs if a in site]
        codes, first = _factorize_rows([site[a][rows[sel]] for a in present]) if present \
            else (np.zeros(len(sel), dtype=np.int64), np.zeros(1 if len(sel) else 0,
                                                                dtype=np.int64))
        ids = []
        for i in first.tolist():
            values = {a: (site[a][rows[sel[i]]] if a in site else None) for a in attrs}
            _, missing = applicability(rule.applies_to, values)
            cond = condition_text(rule.applies_to, values)
            key = (rule.id, tuple(missing), cond["zh"], cond["en"])
            if key not in number:
                number[key] = len(out)
                out.append((rule, tuple(missing), cond))
            ids.append(number[key])
        variant[sel] = np.asarray(ids, dtype=np.int64)[codes]
    return variant, out


def _rule_texts(rule: RuleSpec, lang: str) -> tuple[str, str, str]:
    """(title, basis line, action line) of a rule in ``lang``; basis and action are the
    rules file's Chinese in both, prefixed by the rule's title."""
    title = rule.title_zh if lang == "zh" else rule.title_en
    if lang == "zh":
        basis = f"【{title}】{rule.basis}" + (f"（{rule.basis_note}）" if rule.basis_note else "")
        return title, basis, f"【{title}】{rule.action}"
    basis = f"[{title}] {rule.basis}" + (f" ({rule.basis_note})" if rule.basis_note else "")
    return title, basis, f"[{title}] {rule.action}"


def _conditional_text(rule: RuleSpec, missing: tuple[str, ...], condition: Mapping[str, str],
                      lang: str, column_of: Mapping[str, str]) -> str:
    """One rule of the conditional-rules column, naming the input columns to fill in."""
    cols = [column_of.get(a, a) for a in missing]
    if lang == "zh":
        return f"{rule.title_zh}（{condition['zh']}；缺少 {'、'.join(cols)}）"
    return f"{rule.title_en} ({condition['en']}; missing {', '.join(cols)})"


class _Coded:
    """A text column as codes into its distinct texts (-1: blank); ``lists`` holds, per
    text, the same content as a list (the rule ids), for formats with list columns."""

    def __init__(self, n: int) -> None:
        self.codes = np.full(n, -1, dtype=np.int64)
        self.texts: list[str] = []
        self.lists: list[list[str]] | None = None

    def put(self, rows: np.ndarray, sets: np.ndarray, texts: list[str],
            lists: list[list[str]] | None = None) -> None:
        self.codes[rows] = sets
        self.texts, self.lists = texts, lists

    def to_arrow(self, blank: str | None = "") -> pa.Array:
        """The texts, a blank row as ``blank`` (None: a null, an empty CSV field)."""
        idx = pa.array(self.codes, mask=self.codes < 0)
        out = pa.array(self.texts, type=pa.string()).take(idx)
        return out if blank is None else out.fill_null(blank)

    def to_list_arrow(self) -> pa.Array:
        lists = [*(self.lists or []), []]
        codes = np.where(self.codes < 0, len(lists) - 1, self.codes)
        return pa.array(lists, type=pa.list_(pa.string())).take(pa.array(codes))



def _hit_columns(eng: RuleEngine, hits: pd.DataFrame, n: int, site: Mapping[str, np.ndarray],
                 lang: str, column_of: Mapping[str, str],
                 text_ids: bool = False) -> dict[str, Any]:
    """Per input row, the added columns but verdict and error (see ``OUTPUT_KEYS``): texts
    as ``_Coded``, the JSON lists as ``_Pieces``, counts and distances as arrays.

    Every text is made once per distinct value (a rule, a set of rules, a hit less its
    distance) and gathered by code; Arrow joins the JSON pieces. Texts from the rules file
    are neutralised like input text.
    """
    rules = list(eng.rules)
    position = {r.id: i for i, r in enumerate(rules)}
    count = np.zeros(n, dtype=np.int64)
    min_d = np.full(n, np.nan)
    out = {k: _Coded(n) for k in ("rules", "rule_ids", "conditional_rules", "basis", "action")}
    json_cols = {k: _Pieces.empty(n) for k in ("hits", "conditional_hits")}
    is_cond = hits["conditional"].to_numpy(dtype=bool)
    texts = [_rule_texts(r, lang) for r in rules]
    join = "、" if lang == "zh" else "; "
    for conditional in (False, True):
        table = _sort_hits(hits.loc[is_cond == conditional])
        if not len(table):
            continue
        row = table["row"].to_numpy()
        rule_idx = table["rule_id"].map(position).to_numpy(dtype=np.int64)
        starts, ends = row_runs(row)
        rows = row[starts]
        if conditional:
            variant, variants = _variants(rules, rule_idx, row, site)
            json_cols["conditional_hits"] = _hit_json(table, rules, rule_idx, variant,
                                                      variants, n, text_ids)
            sets, members = run_sets(variant, starts, ends, len(variants))
            words = [_conditional_text(*variants[v], lang, column_of) for v in range(len(variants))]
            out["conditional_rules"].put(rows, sets, [neutralise(join.join(words[v] for v in m))
                                                      for m in members])
            continue
        json_cols["hits"] = _hit_json(table, rules, rule_idx, None, None, n, text_ids)
        count[rows] = ends - starts
        min_d[rows] = np.minimum.reduceat(table["distance_m"].to_numpy(dtype=float).round(1),
                                          starts)
        sets, members = run_sets(rule_idx, starts, ends, len(rules))
        for key, make in (("rules", lambda m: join.join(texts[i][0] for i in m)),
                          ("rule_ids", lambda m: ";".join(rules[i].id for i in m)),
                          ("basis", lambda m: "\n".join(texts[i][1] for i in m)),
                          ("action", lambda m: "\n".join(texts[i][2] for i in m))):
            out[key].put(rows, sets, [neutralise(make(m)) for m in members],
                         [[rules[i].id for i in m] for m in members] if key == "rule_ids"
                         else None)
    return {"rules": out["rules"], "rule_ids": out["rule_ids"], "hit_count": count,
            "min_distance_m": min_d, "conditional_rules": out["conditional_rules"],
            "basis": out["basis"], "action": out["action"], **json_cols}


def added_headers(lang: str, taken: Any) -> list[str]:
    """The added columns' headers in ``lang``; a header the input already has gets the
    first free suffix (``结论_1``, ``结论_2``…), so the input's own columns keep theirs."""
    taken = set(map(str, taken))
    out: list[str] = []
    for header in output_headers(lang):
        name, k = header, 0
        while name in taken:
            k += 1
            name = f"{header}_{k}"
        taken.add(name)
        out.append(name)
    return out


# -- one partition ---------------------------------------------------------------------
@dataclass(frozen=True)
class FlagJob:
    """What any process needs to flag a partition, besides the rule engine (small and
    picklable: it travels with every task to a cluster's workers)."""

    opts: FlagOptions
    lang: str
    fmt_in: str
    fmt_out: str
    columns: tuple[str, ...]       # the input's own columns, in order
    added: tuple[str, ...]         # the added columns' headers (``OUTPUT_KEYS`` order)
    metric_crs: str
    geometry: str | None = None    # a spatial input's WKB column
    file_crs: str | None = None    # ... and its CRS
    check_only: bool = False       # coordinates only: the file is refused anyway
    out_dir: str | None = None     # a folder output: each partition writes its own file

    @property
    def spatial_out(self) -> bool:
        return self.fmt_out in ("gpkg", "geojson", "parquet")

    def output_names(self) -> list[str]:
        names = list(self.columns)
        if self.geometry is not None and not self.spatial_out:
            names.append("geometry")  # the input's geometry as WKT text
        return names + list(self.added)


@dataclass
class PartResult:
    """A partition's answer: its output rows and what the summary counts."""

    index: int
    rows: int
    counts: dict[str, int]
    hits: int = 0
    conditional_hits: int = 0
    bad_rows: int = 0
    bad: list[dict[str, Any]] = field(default_factory=list)
    table: pa.Table | None = None
    data: bytes | list[bytes] | None = None  # CSV output: the rows' bytes (or their pieces)
    worker: str = "local"


#: The list-of-structs type of a hit in Parquet (``domain.results.Hit.to_dict``).
_ZH_EN = pa.struct([("zh", pa.string()), ("en", pa.string())])
HIT_FIELDS = [("rule_id", pa.string()), ("title", _ZH_EN), ("feature_id", pa.string()),
              ("feature_name", pa.string()), ("distance_m", pa.float64()),
              ("severity", pa.string()), ("basis", pa.string()), ("action", pa.string()),
              ("limit_m", pa.float64()), ("test", pa.string()), ("basis_note", pa.string()),
              ("point", pa.string())]
HIT_TYPE = pa.struct(HIT_FIELDS)
CONDITIONAL_HIT_TYPE = pa.struct([*HIT_FIELDS, ("missing", pa.list_(pa.string())),
                                  ("condition", _ZH_EN), ("sentence", _ZH_EN)])


def _neutralised(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Text cells as ``exports.tables.neutralise`` leaves them (characters no document can
    hold dropped, formula-like text behind an apostrophe), vectorised; blank as null."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return arr
    odd = pc.match_substring_regex(arr, _ODD_CHARACTERS)
    if pc.any(odd).as_py():
        values = np.asarray(arr.to_pylist(), dtype=object)
        rows = np.flatnonzero(odd.to_numpy(zero_copy_only=False))
        values[rows] = [document_text(v) for v in values[rows]]
        arr = pa.array(values.tolist(), type=arr.type)
    risky = pc.match_substring_regex(arr, "^[=+\\-@\t\r]")
    if pc.any(risky).as_py():
        arr = pc.if_else(risky, pc.binary_join_element_wise("'", arr, ""), arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


#: Anything ``domain.text.document_text`` would change (checked before any Python work).
_ODD_CHARACTERS = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\x{2028}\\x{2029}\\x{fffe}\\x{ffff}]"
#: The same, and a field starting like a formula, in a CSV file's bytes (a quick look at a
#: partition's bytes: where it finds nothing, no cell needs neutralising).
_RISKY_BYTES = re.compile(rb'(?:^|[,\n])"?(?:[=+\-@\t]|\r(?!\n))|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]'
                          rb"|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbf[\xbe\xbf]")


def _points(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """WGS84 points as WKB (null where there is no point)."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    wkb = np.full(len(lon), None, dtype=object)
    if ok.any():
        wkb[ok] = shapely.to_wkb(shapely.points(lon[ok], lat[ok]))
    return pa.array(wkb, type=pa.binary())


def _output_table(table: pa.Table, job: FlagJob, added: Mapping[str, Any], lon: np.ndarray,
                  lat: np.ndarray) -> pa.Table:
    """A partition's output rows: the input's own columns, then the added ones, each in
    the type its format holds (lists and structs in Parquet, texts elsewhere)."""
    fmt = job.fmt_out
    arrays: list[pa.Array] = []
    for name in job.columns:
        col = table.column(name)
        arrays.append(_neutralised(col) if fmt == "csv" else col.combine_chunks())
    if job.geometry is not None and not job.spatial_out:
        geom = shapely.from_wkb(table.column(job.geometry).to_numpy(zero_copy_only=False),
                                on_invalid="ignore")
        wkt = shapely.to_wkt(geom, rounding_precision=-1)
        arrays.append(pa.array(wkt, type=pa.string()))
    blank = None if fmt == "csv" else ""
    for key in OUTPUT_KEYS:
        value = added[key]
        if isinstance(value, _Coded):
            arrays.append(value.to_list_arrow() if key == "rule_ids" and fmt in (
                "parquet", "gpkg") else value.to_arrow(blank))
        elif isinstance(value, _Pieces):
            if fmt == "parquet":
                arrays.append(value.to_struct_lists(
                    HIT_TYPE if key == "hits" else CONDITIONAL_HIT_TYPE))
            else:
                arrays.append(value.to_arrow().cast(pa.string()))
        elif key == "min_distance_m" and fmt == "csv":
            texts = _number_texts(value)
            arrays.append(pa.array(texts, type=pa.string(), mask=texts == ""))
        elif key == "hit_count":
            arrays.append(pa.array(value, type=pa.int64()))
        elif key == "min_distance_m":
            arrays.append(pa.array(value, type=pa.float64(), mask=np.isnan(value)))
    names = job.output_names()
    if job.spatial_out:
        arrays.append(_points(lon, lat))
        names = [*names, "geometry"]
    return pa.Table.from_arrays(arrays, names=names)


# -- CSV straight from the input's bytes ----------------------------------------------------
def _escaped(texts: list[str]) -> np.ndarray:
    """Texts as CSV fields in UTF-8 (quoted as the csv module quotes), as an object array."""
    out = np.empty(len(texts), dtype=object)
    out[:] = [csv_field(t).encode("utf-8") for t in texts]
    return out


def _field_bytes(value: Any, n: int) -> np.ndarray | tuple[np.ndarray, _Pieces]:
    """An added column as per-row field bytes (references to one object per distinct
    value), or a JSON column as (escaped pieces, codes)."""
    if isinstance(value, _Coded):
        return _escaped([*value.texts, ""])[value.codes]
    if isinstance(value, _Pieces):
        table = np.empty(len(value.texts), dtype=object)
        table[:] = [t.replace('"', '""').encode("utf-8") for t in value.texts]
        if len(table):  # _hit_items' "[", "]", ",": the field is quoted
            table[-3:] = [b'"[', b']"', b","]
        return table, value
    codes, uniques = pd.factorize(value)  # counts and distances as pandas writes them
    table = _escaped([str(u) for u in np.asarray(uniques).tolist()] + [""])  # -1: NaN
    return table[codes]


def record_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (without the line break) of every non-blank record of CSV bytes:
    line breaks outside quotes end records (the same parity rule as the partitioning)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    q = np.flatnonzero(buf == 34)
    ends = nl[(np.searchsorted(q, nl) % 2) == 0] if len(q) else nl
    ends = np.r_[ends, len(buf)].astype(np.int64)
    starts = np.r_[0, ends[:-1] + 1]
    stop = ends.copy()
    if len(buf):
        cr = (stop > starts) & (buf[np.clip(stop - 1, 0, len(buf) - 1)] == 13)
        stop[cr] -= 1
    keep = stop > starts
    return starts[keep], stop[keep]


def _input_lines(part: Part, table: pa.Table, job: FlagJob) -> np.ndarray | None:
    """The partition's records as they are in the file (bytes without the line break), a
    record holding a cell to neutralise re-written as the csv module writes it; None when
    the records cannot be matched one to one with the parsed rows."""
    if not isinstance(part, CsvPart):
        return None
    with open(part.path, "rb") as f:
        f.seek(part.start)
        data = f.read(part.end - part.start)
    starts, stops = record_spans(data)
    if len(starts) != table.num_rows:
        return None
    mv = memoryview(data)
    lines = np.empty(len(starts), dtype=object)
    lines[:] = [bytes(mv[a:b]) for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]
    risky = np.zeros(table.num_rows, dtype=bool)
    for name in job.columns if _RISKY_BYTES.search(data) else ():
        col = table.column(name)
        if pa.types.is_string(col.type):
            hit = pc.match_substring_regex(col, "^[=+\\-@\t\r]|" + _ODD_CHARACTERS)
            risky |= hit.to_numpy(zero_copy_only=False).astype(bool)
    rows = np.flatnonzero(risky)
    if len(rows):
        sub = table.select(list(job.columns)).take(pa.array(rows)).to_pylist()
        for i, record in zip(rows.tolist(), sub, strict=True):
            lines[i] = ",".join(csv_field(neutralise(v)) if isinstance(v, str) else
                                ("" if v is None else str(v))
                                for v in record.values()).encode("utf-8")
    return lines


def _csv_bytes(lines: np.ndarray, added: Mapping[str, Any], plain: np.ndarray) -> list[bytes]:
    """The partition as CSV bytes: each record as it was, then the added fields; as a list
    of pieces whose concatenation is the text (written with ``os.writev``, so the pieces
    are copied once, by the kernel).

    The added text is escaped once per distinct value and the partition is a list of
    references to those texts and to the hits' JSON pieces, so nothing
    scans the long basis, action and JSON texts character by character (as a CSV writer
    does) or copies them more than once. ``plain`` rows (no hit, no conditional hit, no
    error: most of a file) differ only in the verdict: their added fields are one text per
    verdict."""
    m = len(lines)
    cols = [_field_bytes(added[k], m) for k in OUTPUT_KEYS]
    tails = np.full(m, None, dtype=object)
    rows = np.flatnonzero(plain)
    if len(rows):
        codes, first = _factorize_rows([cols[0][rows]])
        tails[rows] = np.array([b"," + b",".join(b"[]" if isinstance(c, tuple) else c[r]
                                                 for c in cols) + b"\n"
                                for r in rows[first].tolist()], dtype=object)[codes]
    full = np.flatnonzero(~plain)
    slot = np.cumsum(~plain) - 1  # a row's place among the full rows
    sizes = []
    for c in cols:
        size = np.ones(len(full), dtype=np.int64)
        if isinstance(c, tuple):
            pieces = c[1]
            size[slot[pieces.rows]] = pieces.ends - pieces.starts
        sizes.append(size)
    count = np.full(m, 2, dtype=np.int64)  # plain: line, tail
    count[full] = 2 + sum(1 + s for s in sizes)  # line, (comma, field) per column, newline
    end = np.cumsum(count)
    off = end - count
    flat = np.empty(int(end[-1]) if m else 0, dtype=object)
    flat[off] = lines
    flat[off[plain] + 1] = tails[plain]
    pos = off[full] + 1
    for c, size in zip(cols, sizes, strict=True):
        flat[pos] = b","
        pos = pos + 1
        if not isinstance(c, tuple):
            flat[pos] = c[full]
        else:
            table, pieces = c
            flat[pos] = b"[]"
            if len(pieces.rows):
                lengths = pieces.ends - pieces.starts
                which = np.repeat(np.arange(len(lengths)), lengths)
                local = slot[pieces.rows]
                at = pos[local][which] + (np.arange(len(pieces.items)) - pieces.starts[which])
                flat[at] = table[pieces.items]
        pos = pos + size
    flat[pos] = b"\n"
    return flat.tolist()


def _unknown_site_types(df: pd.DataFrame, opts: FlagOptions) -> dict[int, Any]:
    """Rows whose site type is text no site type answers to: the single check refuses such
    a value, so the row is not checked (blank is another thing: a missing type, 待核实)."""
    col = _column(df, opts.type_col)
    if col is None:
        return {}
    codes, uniques = pd.factorize(col)
    out: dict[int, Any] = {}
    for k, value in enumerate(uniques):
        try:
            SiteType.parse(value)
        except ValueError as exc:
            why = exc.args[0] if exc.args else str(exc)
            out.update(dict.fromkeys(np.flatnonzero(codes == k).tolist(), why))
    return out


def _not_points(table: pa.Table, job: FlagJob) -> dict[int, str]:
    """Rows of a spatial input whose geometry is not one point: a parcel or a line is not
    checked at one of its points (use ``geoapp parcel`` for parcels)."""
    if job.geometry is None:
        return {}
    geom = shapely.from_wkb(table.column(job.geometry).to_numpy(zero_copy_only=False),
                            on_invalid="ignore")
    kinds = shapely.get_type_id(geom)  # -1 missing, 0 point; an empty point is a bad point
    rows = np.flatnonzero(kinds > 0)
    return {int(i): f"不是点要素（{shapely.geometry.base.GEOMETRY_TYPES[kinds[i]]}）：只能检查点，"
                    "地块（用地红线）请用 geoapp parcel 检查 Not a point: only points are "
                    "checked; check parcels with geoapp parcel" for i in rows.tolist()}


def _frame(table: pa.Table, job: FlagJob, attributes: tuple[str, ...]) -> pd.DataFrame:
    """The columns the coordinates and the rules read, as a frame."""
    opts = job.opts
    wanted = {"crs", opts.type_col, opts.industry_col, *attributes, *_NEW_SITE}
    names = [c for c in job.columns if c in wanted]
    return table.select(names).to_pandas() if names else pd.DataFrame(index=range(table.num_rows))


def flag_part(eng: RuleEngine, job: FlagJob, part: Part) -> PartResult:
    """Flag one partition: read it (from the file, by whoever runs this), check its
    coordinates, decide every rule for every row, and build its output rows."""
    table = part.read()
    n = table.num_rows
    opts, lang = job.opts, job.lang
    df = _frame(table, job, eng.rules.attributes())
    lon, lat, bad, reasons = _coordinates(table, df, job)
    for more in (_unknown_site_types(df, job.opts), _not_points(table, job)):
        for i, why in more.items():
            if not bad[i]:
                bad[i], reasons[i] = True, why
    bad_idx = np.flatnonzero(bad)
    report = [{"row": _row_number(job.fmt_in, part.row0 + int(i)),
               "reason": in_language(reasons.get(int(i), "bad coordinates"), lang)}
              for i in bad_idx[:MAX_REPORTED_ROWS]]
    result = PartResult(part.index, n, {}, bad_rows=len(bad_idx), bad=report)
    if job.check_only or (len(bad_idx) and not opts.skip_bad):
        return result  # the file is refused: nothing to write
    site = site_columns(df, opts, eng.rules.attributes())
    ok = ~bad
    given = {k: v[ok] for k, v in site.items()}
    hits = eng.flag(lon[ok], lat[ok], given.pop("site_type"), given.pop("industry", None),
                    **given)
    hits["row"] = np.flatnonzero(ok)[hits["row"].to_numpy()]
    is_cond = hits["conditional"].to_numpy(dtype=bool)
    covered = np.zeros(n, dtype=bool)
    covered[ok] = eng.covered(lon[ok], lat[ok])
    if "new_lon" in site:  # a relocation's new site must lie in the data's area too
        new = ok & np.isfinite(site["new_lon"]) & np.isfinite(site["new_lat"])
        covered[new] &= eng.covered(site["new_lon"][new], site["new_lat"][new])
    row = hits["row"].to_numpy()
    verdict = row_verdicts(n, row[~is_cond], row[is_cond], covered)
    verdict[bad] = "error"
    column_of = {"site_type": opts.type_col, "industry": opts.industry_col}
    added = _hit_columns(eng, hits, n, site, lang, column_of, text_ids=job.fmt_out == "parquet")
    labels = {k: neutralise(v) for k, v in verdict_labels(lang).items()}
    vcodes, vuniques = pd.factorize(verdict)
    added["verdict"] = _Coded(n)
    added["verdict"].put(np.arange(n), vcodes, [labels[u] for u in vuniques])
    added["error"] = _Coded(n)
    if len(bad_idx):  # our message may quote the user's cell
        messages = [neutralise(in_language(reasons.get(i, "bad coordinates"), lang))
                    for i in bad_idx.tolist()]
        codes, uniques = pd.factorize(np.asarray(messages, dtype=object))
        added["error"].put(bad_idx, codes, list(uniques))
    per_verdict = dict(zip(vuniques, np.bincount(vcodes, minlength=len(vuniques)).tolist(),
                           strict=True))
    result.counts = {v.value: int(per_verdict.get(v.value, 0)) for v in Verdict}
    result.hits, result.conditional_hits = int((~is_cond).sum()), int(is_cond.sum())
    lines = _input_lines(part, table, job) if job.fmt_out == "csv" else None
    if job.out_dir is not None:
        write_part(job.out_dir, part.index, _output_table(table, job, added, lon, lat))
    elif lines is not None:
        plain = (added["hit_count"] == 0) & ~bad
        plain[row[is_cond]] = False
        result.data = _csv_bytes(lines, added, plain)
    else:
        result.table = _output_table(table, job, added, lon, lat)
    return result


# -- the use case ------------------------------------------------------------------------
def flag_file(app: Geoapp, src: str | Path, dst: str | Path,
              opts: FlagOptions | None = None, *, limits: Limits | None = None,
              name: str | None = None, cluster: str | None = None, workers: int | None = None,
              partition_rows: int | None = None) -> dict[str, Any]:
    """Flag every row of ``src`` and write ``dst``; return a summary (and the bad rows).

    ``limits`` caps the input (the web passes ``services.upload_limits``; None: any size);
    ``name`` is the upload's name for messages (default: the file's). The input is flagged
    a partition at a time (``partition_rows`` rows; at most one partition's rows in memory
    in this process); with ``cluster`` (a Dask scheduler's address) or ``workers`` (a local
    Dask cluster of that many processes) the partitions are flagged by the cluster's
    workers (``services.flagcluster``), each reading its partition itself. The answer is
    the same, row for row, however it was computed."""
    opts = opts or FlagOptions()
    folder_out = Path(dst).is_dir() or str(dst).endswith(("/", os.sep))
    src, dst = Path(src), Path(dst)
    fmt_in = file_format(src)
    fmt_out = "parquet" if folder_out else file_format(dst)
    lang = opts.lang or "zh"
    output_headers(lang)  # an unknown language is refused before any work
    if partition_rows is not None and partition_rows < 1:
        raise InvalidInput("partition_rows must be at least 1")
    if not (src.is_file() or (fmt_in == "parquet" and src.is_dir())):
        raise InvalidInput(f"{src}: no such file")
    label = name or src.name
    _guard_output(src, dst, app.settings.get("DATABASE"))
    if partition_rows is None:  # Parquet's list columns cost more memory per row
        partition_rows = PARQUET_PARTITION_ROWS if fmt_out == "parquet" else \
            DEFAULT_PARTITION_ROWS
    source = open_source(src, fmt_in, label, limits, partition_rows,
                         app.settings.get("DATABASE"))
    check_row_limit(source.rows, label, limits)
    file_crs = source_crs(source, fmt_in, opts)
    if source.geometry is None and fmt_in != "xlsx":
        for col in (opts.lon_col, opts.lat_col):
            if col not in source.columns:
                raise InvalidInput(f"no column {col!r}; the file has: "
                                   f"{', '.join(source.columns)}; name the coordinate "
                                   "columns with --lon-col/--lat-col")
    taken = [*source.columns, *(["geometry"] if source.geometry is not None else [])]
    job = FlagJob(opts, lang, fmt_in, fmt_out, tuple(source.columns),
                  tuple(added_headers(lang, taken)), app.metric_crs, source.geometry,
                  file_crs)
    eng = engine(app)
    writer = open_writer(dst, "parquet-folder" if folder_out else fmt_out,
                         job.output_names(), source.rows)
    if folder_out:
        job = replace(job, out_dir=str(writer.tmp.resolve()))
    summary_counts = dict.fromkeys((v.value for v in Verdict), 0)
    hits = conditional = bad_rows = 0
    bad: list[dict[str, Any]] = []
    by_worker: dict[str, int] = {}
    try:
        if cluster or workers:
            from geoapp.services.flagcluster import flag_on_cluster  # noqa: PLC0415

            results = flag_on_cluster(eng, job, source.parts, cluster=cluster, workers=workers)
        else:
            results = _flag_here(eng, job, source.parts)
        # One thread writes while the next partition is flagged: the disk and the CPU work
        # at once (writing releases the GIL); at most one write waits.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="geoapp-flag-write") as io:
            written = None
            for result in results:
                by_worker[result.worker] = by_worker.get(result.worker, 0) + result.rows
                bad_rows += result.bad_rows
                bad.extend(result.bad[:MAX_REPORTED_ROWS - len(bad)])
                if written is not None:
                    written.result()
                    written = None
                if opts.skip_bad or not bad_rows:
                    if result.table is not None:
                        written = io.submit(writer.write, result.table)
                    elif result.data is not None:
                        written = io.submit(writer.write_bytes, result.data, result.rows)
                for k, v in result.counts.items():
                    summary_counts[k] += v
                hits += result.hits
                conditional += result.conditional_hits
            if written is not None:
                written.result()
        if bad_rows and not opts.skip_bad:
            more = bad_rows - len(bad)
            raise ValidationFailed(
                f"{src.name}: {bad_rows} row(s) that cannot be checked (missing or impossible "
                "coordinates, an unknown site type, a geometry that is not a point); "
                "nothing was written (fix them, or pass --skip-bad to flag the rest)"
                + (f"; first {len(bad)} listed" if more else ""), details=bad)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    summary = {"input": str(src), "output": str(dst), "rows": source.rows, "lang": lang,
               "flagged": summary_counts["fail"], "passed": summary_counts["pass"],
               "needs_info": summary_counts["needs_info"],
               "out_of_area": summary_counts["out_of_area"],
               "bad_rows": bad_rows, "hits": hits, "conditional_hits": conditional}
    if bad:
        summary["bad"] = bad
    if cluster or workers:
        summary["workers"] = by_worker
    return summary


def _guard_output(src: Path, dst: Path, database: Any) -> None:
    """Never write over the input, the app's own database (or its journal files) or the
    engine cache beside it."""
    out = Path(os.path.realpath(dst))
    if out == Path(os.path.realpath(src)) or (src.is_dir() and out.is_relative_to(
            Path(os.path.realpath(src)))):
        raise InvalidInput(f"输出不能覆盖输入 The output would overwrite the input: {dst.name}")
    if database:
        db = Path(os.path.realpath(database))
        if out.name.startswith(db.name) and out.parent == db.parent or \
                out.is_relative_to(db.parent / "cache"):
            raise InvalidInput(f"输出不能写到本系统的数据库 The output would overwrite the app's "
                               f"own database: {dst.name}")


def _flag_here(eng: RuleEngine, job: FlagJob, parts: list[Part]) -> Iterator[PartResult]:
    """The partitions one after another in this process; after a bad row (and without
    ``skip_bad``) only the coordinates of the rest are read, to count the bad rows."""
    refused = False
    for part in parts:
        result = flag_part(eng, replace(job, check_only=True) if refused else job, part)
        refused = refused or (result.bad_rows > 0 and not job.opts.skip_bad)
        yield result

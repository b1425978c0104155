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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.domain.results import Severity, Verdict, row_verdicts
from geoapp.domain.rules import RuleSpec, applicability, condition_text, conditional_hit, make_hit
from geoapp.domain.vocab import SiteType
from geoapp.exports.tables import neutralise, neutralise_frame, write_xlsx
from geoapp.services import check_row_limit
from geoapp.services.catalogue import in_language
from geoapp.services.checks import engine
from geoapp.spatial.crs import WGS84, array_to_wgs84, resolve_crs
from geoapp.spatial.engine import RuleEngine
from geoapp.storage.tables_in import Limits, read_frame
from geoapp.storage.vector_in import guard_source, read_vector, unknown_datum

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".geojson": "geojson", ".json": "geojson",
           ".gpkg": "gpkg"}
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
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InvalidInput(f"{Path(path).name}: unsupported file type {ext or '(none)'}; "
                           f"use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[ext]


# -- reading -----------------------------------------------------------------------------
def _read(path: Path, fmt: str, limits: Limits | None = None,
          label: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """The rows, and the file's own CRS for spatial formats (None for tables)."""
    if fmt in ("csv", "xlsx"):  # storage.tables_in: limits judged before parsing
        return read_frame(path, name=label or path.name, limits=limits), None
    # storage.vector_in: format from extension and content, GDAL's driver named, the
    # GeoPackage judged with SQLite first; GDAL only ever opens a private copy.
    max_rows = limits.max_rows if limits is not None else None
    gdf = read_vector(path, label=label or path.name, kind=fmt, max_rows=max_rows or 0).gdf
    return gdf, (gdf.crs.to_string() if gdf.crs is not None else None)


def _coordinates(df: pd.DataFrame, fmt: str, file_crs: str | None, opts: FlagOptions,
                 metric_crs: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, str]]:
    n = len(df)
    if fmt in ("geojson", "gpkg"):
        if file_crs is None:
            raise InvalidInput("the file declares no coordinate system; add one (GeoJSON is "
                               "WGS84 by definition) or convert it to CSV with a crs column")
        invented = unknown_datum(df.crs)
        if invented and not opts.crs:
            raise InvalidInput(f"坐标系基准面未知 Unknown datum: the file's coordinate system "
                               f"names the datum {invented!r}, which no authority defines; "
                               "name the real system with --crs (the crs field), e.g. "
                               "cgcs2000 or wgs84")
        if invented:
            file_crs = opts.crs
        if opts.crs and resolve_crs(opts.crs) != resolve_crs(file_crs):
            raise InvalidInput(f"--crs {opts.crs} contradicts the file's own CRS {file_crs}")
        geom = df.geometry
        empty = geom.isna().to_numpy() | geom.is_empty.to_numpy()
        pts = geom.where(~empty).representative_point()
        x = np.where(empty, np.nan, pts.x.to_numpy())
        y = np.where(empty, np.nan, pts.y.to_numpy())
        return array_to_wgs84(x, y, file_crs, metric_crs)
    for col in (opts.lon_col, opts.lat_col):
        if col not in df.columns:
            raise InvalidInput(f"no column {col!r}; the file has: {', '.join(map(str, df.columns))}"
                               "; name the coordinate columns with --lon-col/--lat-col")
    x, y = df[opts.lon_col].to_numpy(), df[opts.lat_col].to_numpy()
    if opts.crs or "crs" not in df.columns:
        return array_to_wgs84(x, y, opts.crs or "wgs84", metric_crs)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    bad, reasons = np.zeros(n, dtype=bool), {}
    names = df["crs"].astype(str).str.strip().str.lower().replace("", "wgs84")
    for name, idx in names.groupby(names).groups.items():
        rows = np.asarray([df.index.get_loc(i) for i in idx])
        try:
            lo, la, b, r = array_to_wgs84(x[rows], y[rows], name, metric_crs)
        except InvalidInput as exc:
            lo, la, b = np.full(len(rows), np.nan), np.full(len(rows), np.nan), \
                np.ones(len(rows), dtype=bool)
            r = dict.fromkeys(range(len(rows)), exc.message)
        lon[rows], lat[rows], bad[rows] = lo, la, b
        reasons.update({int(rows[k]): v for k, v in r.items()})
    return lon, lat, bad, reasons


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


def csv_field(text: str) -> str:
    """``text`` as one CSV field, quoted as the csv module quotes (QUOTE_MINIMAL)."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


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
    """A JSON-list column kept as pieces: row ``rows[i]``'s text is
    ``"".join(items[starts[i]:ends[i]])``; every other row's is ``[]``. The CSV writer puts
    the pieces straight into its output, so no per-row or per-hit string is ever built."""

    def __init__(self, n: int, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 items: np.ndarray) -> None:
        self.n, self.rows, self.starts, self.ends, self.items = n, rows, starts, ends, items

    def strings(self) -> np.ndarray:
        out = np.full(self.n, "[]", dtype=object)
        items = self.items.tolist()
        out[self.rows] = ["".join(items[a:b]) for a, b in
                          zip(self.starts.tolist(), self.ends.tolist(), strict=True)]
        return out


def _number_texts(values: np.ndarray) -> np.ndarray:
    """Numbers as pandas writes them into CSV (``str`` of each; NaN an empty field), made
    once per distinct value."""
    codes, uniques = pd.factorize(values)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = np.asarray(uniques).astype(str)
    table[-1] = ""  # code -1: NaN
    return table[codes]


def _hit_items(pieces: list[list[str]], combo: np.ndarray, dist: np.ndarray, row: np.ndarray,
               n: int, quote: bool) -> _Pieces:
    """Every row's JSON list of hits as pieces: per hit its combination's pieces with its
    distance in every cut, ``[`` before a row's first hit, ``,`` between, ``]`` after."""
    first = np.r_[True, row[1:] != row[:-1]]
    last = np.r_[row[1:] != row[:-1], True]
    cuts = np.array([len(p) - 1 for p in pieces], dtype=np.int64)
    k = cuts[combo]
    count = 2 * k + 2 + first
    end = np.cumsum(count)
    off = end - count
    items = np.empty(int(end[-1]) if len(end) else 0, dtype=object)
    opening, closing = ('"[', ']"') if quote else ("[", "]")
    items[off[first]] = opening
    base = off + first
    d = _number_texts(dist)
    for j in range(int(cuts.max()) + 1 if len(cuts) else 0):
        has = np.flatnonzero(k >= j)
        table = np.array([p[j] if j < len(p) else "" for p in pieces], dtype=object)
        items[base[has] + 2 * j] = table[combo[has]]
        more = has[k[has] > j]
        items[base[more] + 2 * j + 1] = d[more]
    items[base + 2 * k + 1] = np.where(last, closing, ",")
    return _Pieces(n, row[first], off[first], end[last], items)


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
              quote: bool) -> _Pieces:
    """The JSON of every hit (conditional ones with their missing attributes, condition and
    sentence), made once per distinct (rule, condition, feature, severity, point); with
    ``quote``, CSV-escaped (quotes doubled) for a quoted field."""
    key_cols = [rule_idx if variant is None else variant,
                table["feature_id"].to_numpy(dtype=object),
                table["feature_name"].to_numpy(dtype=object),
                table["severity"].to_numpy(dtype=object), table["point"].to_numpy(dtype=object)]
    combo, first = _factorize_rows(key_cols)
    pieces = []
    for i in first.tolist():
        rule = rules[rule_idx[i]]
        hit = _static_hit(rule, key_cols[1][i], key_cols[2][i], str(key_cols[3][i]),
                          str(key_cols[4][i]))
        if variant is None:
            pieces.append(_json_pieces(lambda d, h=hit: replace(h, distance_m=d).to_dict()))
        else:
            _, missing, cond = variants[variant[i]]
            pieces.append(_json_pieces(
                lambda d, h=hit, r=rule, m=missing, c=cond:
                conditional_hit(replace(h, distance_m=d), r, m, c).to_dict()))
    if quote:
        pieces = [[p.replace('"', '""') for p in ps] for ps in pieces]
    return _hit_items(pieces, combo, table["distance_m"].to_numpy(dtype=float).round(1),
                      table["row"].to_numpy(), n, quote)


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


def _hit_columns(eng: RuleEngine, hits: pd.DataFrame, n: int, site: Mapping[str, np.ndarray],
                 lang: str, column_of: Mapping[str, str],
                 quote: bool = False) -> dict[str, np.ndarray]:
    """Per input row, the added columns but verdict and error (see ``OUTPUT_KEYS``); with
    ``quote`` every text is a ready CSV field (see ``_write_csv``).

    Every text is made once per distinct value (a rule, a set of rules, a hit less its
    distance) and gathered with ``take``; the only per-row Python joins the JSON of rows
    with several hits. Texts from the rules file are neutralised like input text.
    """
    field = (lambda t: csv_field(neutralise(t))) if quote else neutralise
    rules = list(eng.rules)
    position = {r.id: i for i, r in enumerate(rules)}
    count = np.zeros(n, dtype=np.int64)
    min_d = np.full(n, np.nan)
    out = {k: np.full(n, "", dtype=object) for k in ("rules", "rule_ids", "conditional_rules",
                                                     "basis", "action")}
    empty = np.zeros(0, dtype=np.int64)
    json_cols = {k: _Pieces(n, empty, empty, empty, np.zeros(0, dtype=object))
                 for k in ("hits", "conditional_hits")}
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
                                                      variants, n, quote)
            sets, members = run_sets(variant, starts, ends, len(variants))
            words = [_conditional_text(*variants[v], lang, column_of) for v in range(len(variants))]
            out["conditional_rules"][rows] = np.array(
                [field(join.join(words[v] for v in m)) for m in members], dtype=object)[sets]
            continue
        json_cols["hits"] = _hit_json(table, rules, rule_idx, None, None, n, quote)
        count[rows] = ends - starts
        min_d[rows] = np.minimum.reduceat(table["distance_m"].to_numpy(dtype=float).round(1),
                                          starts)
        sets, members = run_sets(rule_idx, starts, ends, len(rules))
        for key, make in (("rules", lambda m: join.join(texts[i][0] for i in m)),
                          ("rule_ids", lambda m: ";".join(rules[i].id for i in m)),
                          ("basis", lambda m: "\n".join(texts[i][1] for i in m)),
                          ("action", lambda m: "\n".join(texts[i][2] for i in m))):
            out[key][rows] = np.array([field(make(m)) for m in members], dtype=object)[sets]
    return {"rules": out["rules"], "rule_ids": out["rule_ids"], "hit_count": count,
            "min_distance_m": min_d, "conditional_rules": out["conditional_rules"],
            "basis": out["basis"], "action": out["action"],
            **{k: v if quote else v.strings() for k, v in json_cols.items()}}


def _named(columns: Mapping[str, np.ndarray], lang: str,
           taken: Any) -> dict[str, np.ndarray]:
    """The added columns under their ``lang`` headers; a header the input already has gets
    the first free suffix (``结论_1``, ``结论_2``…), so the input's own columns keep theirs."""
    taken = set(map(str, taken))
    out: dict[str, np.ndarray] = {}
    for key, header in zip(OUTPUT_KEYS, output_headers(lang), strict=True):
        name, k = header, 0
        while name in taken:
            k += 1
            name = f"{header}_{k}"
        taken.add(name)
        out[name] = columns[key]
    return out


#: What a spreadsheet formula starts with (``exports.tables.neutralise``). A field starting
#: with one somewhere in CSV text, or a false alarm (``,-`` inside a quoted cell), makes
#: ``_csv_lines`` look at the cells one by one.
_FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")
_CSV_CHUNK = 100_000


def _csv_lines(df: pd.DataFrame) -> list[str] | None:
    """The input's own columns as CSV lines, header first, formula-like text neutralised as
    ``neutralise_frame`` does; None when some cell holds a line break (a row is then not one
    line, and ``_write`` writes the whole file through pandas instead)."""
    text = df.to_csv(index=False, lineterminator="\n")
    body = text.find("\n")
    risky = [c for c in _FORMULA_CHARS if text.find(c, body) >= 0]  # usually none
    if risky and re.compile(r'[,\n]"?[' + re.escape("".join(risky)) + "]").search(text, body):
        text = neutralise_frame(df).to_csv(index=False, lineterminator="\n")
    lines = text.split("\n")
    if len(lines) != len(df) + 2 or lines[-1] or not lines[0]:
        return None
    lines.pop()
    return lines


def _write_csv(lines: list[str], columns: Mapping[str, Any], path: Path,
               plain: np.ndarray) -> None:
    """The input's CSV lines with the added columns after each, in chunks of rows.

    The added text is escaped once per distinct value (see ``_hit_columns``) and each chunk
    is one ``str.join`` over references to those texts and to the hits' JSON pieces, so
    nothing scans the long basis, action and JSON texts character by character (as the csv
    module behind ``DataFrame.to_csv`` does) or copies them more than once. ``plain`` rows
    (no hit, no conditional hit, no error: most of a file) differ only in the verdict, so
    their added fields are one text per verdict.
    """
    cols = [v if isinstance(v, _Pieces) else
            (v if v.dtype == object else _number_texts(v)) for v in columns.values()]
    n = len(lines) - 1
    tails = np.full(n, None, dtype=object)
    rows = np.flatnonzero(plain)
    if len(rows):
        codes, first = _factorize_rows([cols[0][rows]])
        tails[rows] = np.array(["," + ",".join("[]" if isinstance(c, _Pieces) else c[r]
                                               for c in cols) + "\n"
                                for r in rows[first].tolist()], dtype=object)[codes]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join([lines[0], *map(csv_field, columns)]) + "\n")
        text_lines = np.empty(n, dtype=object)
        text_lines[:] = lines[1:]
        for r0 in range(0, n, _CSV_CHUNK):
            r1 = min(r0 + _CSV_CHUNK, n)
            f.write(_csv_chunk(text_lines[r0:r1], [c if isinstance(c, _Pieces) else c[r0:r1]
                                                   for c in cols], r0, plain[r0:r1],
                               tails[r0:r1]))


def _csv_chunk(lines: np.ndarray, cols: list[Any], r0: int, plain: np.ndarray,
               tails: np.ndarray) -> str:
    """Rows ``r0…`` as CSV text: one join over the line, separators and fields of each
    (of a plain row: its line and its verdict's ready text)."""
    m = len(lines)
    full = np.flatnonzero(~plain)
    slot = np.cumsum(~plain) - 1  # a row's place among the full rows
    sizes = []
    runs = []
    for c in cols:
        size = np.ones(len(full), dtype=np.int64)
        if isinstance(c, _Pieces):
            i0, i1 = np.searchsorted(c.rows, [r0, r0 + m])
            local = slot[c.rows[i0:i1] - r0]
            size[local] = c.ends[i0:i1] - c.starts[i0:i1]
            runs.append((i0, i1, local))
        else:
            runs.append(None)
        sizes.append(size)
    count = np.full(m, 2, dtype=np.int64)  # plain: line, text
    count[full] = 2 + sum(1 + s for s in sizes)  # line, (comma, field) per column, newline
    end = np.cumsum(count)
    off = end - count
    flat = np.empty(int(end[-1]) if m else 0, dtype=object)
    flat[off] = lines
    flat[off[plain] + 1] = tails[plain]
    pos = off[full] + 1
    for c, size, run in zip(cols, sizes, runs, strict=True):
        flat[pos] = ","
        pos = pos + 1
        if run is None:
            flat[pos] = c[full]
        else:
            i0, i1, local = run
            flat[pos] = "[]"
            if i1 > i0:
                a, b = int(c.starts[i0]), int(c.ends[i1 - 1])
                lengths = c.ends[i0:i1] - c.starts[i0:i1]
                which = np.repeat(np.arange(i1 - i0), lengths)
                at = pos[local][which] + (np.arange(a, b) - c.starts[i0:i1][which])
                flat[at] = c.items[a:b]
        pos = pos + size
    flat[pos] = "\n"
    return "".join(flat.tolist())


def _write(df: pd.DataFrame, path: Path, fmt: str, lon: np.ndarray, lat: np.ndarray) -> None:
    if fmt == "csv":  # text from the input was neutralised in flag_file
        df.to_csv(path, index=False, encoding="utf-8")
        return
    if fmt == "xlsx":
        write_xlsx({"flagged": df}, path)
        return
    data = df.drop(columns=["geometry"], errors="ignore")
    geom = gpd.points_from_xy(lon, lat)
    geom[np.isnan(lon)] = None
    gdf = gpd.GeoDataFrame(data, geometry=geom, crs=WGS84)
    if path.exists():
        path.unlink()
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON" if fmt == "geojson" else "GPKG")


# -- the use case ------------------------------------------------------------------------
def flag_file(app: Geoapp, src: str | Path, dst: str | Path,
              opts: FlagOptions | None = None, *, limits: Limits | None = None,
              name: str | None = None) -> dict[str, Any]:
    """Flag every row of ``src`` and write ``dst``; return a summary (and the bad rows).

    ``limits`` caps the input (the web passes ``services.upload_limits``; None: any size);
    ``name`` is the upload's name for messages (default: the file's)."""
    opts = opts or FlagOptions()
    src, dst = Path(src), Path(dst)
    fmt_in, fmt_out = file_format(src), file_format(dst)
    lang = opts.lang or "zh"
    output_headers(lang)  # an unknown language is refused before any work
    if not src.is_file():
        raise InvalidInput(f"{src}: no such file")
    if fmt_in in ("geojson", "gpkg"):  # never a symlink, never the app's own database
        guard_source(src, name or src.name, app.settings.get("DATABASE"))
    df, file_crs = _read(src, fmt_in, limits, name)
    check_row_limit(len(df), name or src.name, limits)
    n = len(df)
    lon, lat, bad, reasons = _coordinates(df, fmt_in, file_crs, opts, app.metric_crs)
    report_rows = [{"row": _row_number(fmt_in, int(i)),
                    "reason": in_language(reasons.get(int(i), "bad coordinates"), lang)}
                   for i in np.flatnonzero(bad)]
    if report_rows and not opts.skip_bad:
        shown = report_rows[:MAX_REPORTED_ROWS]
        more = len(report_rows) - len(shown)
        raise ValidationFailed(
            f"{src.name}: {len(report_rows)} row(s) with missing or impossible coordinates; "
            "nothing was written (fix them, or pass --skip-bad to flag the rest)"
            + (f"; first {len(shown)} listed" if more else ""), details=shown)

    eng = engine(app)
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
    # CSV out: the input's lines as pandas writes them, the added text escaped per distinct
    # value and appended (see _write_csv); else, or with line breaks in cells, pandas.
    lines = _csv_lines(df) if fmt_out == "csv" else None
    quote = lines is not None
    field = (lambda t: csv_field(neutralise(t))) if quote else neutralise
    column_of = {"site_type": opts.type_col, "industry": opts.industry_col}
    added = _hit_columns(eng, hits, n, site, lang, column_of, quote)
    labels = {k: field(v) for k, v in verdict_labels(lang).items()}
    added["verdict"] = pd.Series(verdict, dtype=object).map(labels).to_numpy(dtype=object)
    error = np.full(n, "", dtype=object)
    for i in np.flatnonzero(bad).tolist():  # our message may quote the user's cell
        error[i] = field(in_language(reasons.get(i, "bad coordinates"), lang))
    added["error"] = error
    new_cols = _named(added, lang, df.columns)
    if lines is not None:
        plain = (added["hit_count"] == 0) & ~bad
        plain[row[is_cond]] = False
        _write_csv(lines, new_cols, dst, plain)
    else:
        out = neutralise_frame(df) if fmt_out == "csv" else df
        out = pd.concat([out, pd.DataFrame(new_cols, index=out.index)], axis=1)
        _write(out, dst, fmt_out, lon, lat)
    counts = {v.value: int((verdict == v.value).sum()) for v in Verdict}
    summary = {"input": str(src), "output": str(dst), "rows": n, "lang": lang,
               "flagged": counts["fail"], "passed": counts["pass"],
               "needs_info": counts["needs_info"], "out_of_area": counts["out_of_area"],
               "bad_rows": len(report_rows), "hits": int((~is_cond).sum()),
               "conditional_hits": int(is_cond.sum())}
    if report_rows:
        summary["bad"] = report_rows[:MAX_REPORTED_ROWS]
    return summary

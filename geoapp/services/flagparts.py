"""The input of a batch flag, cut into partitions any process can read by itself.

A partition is a small, picklable description of a slice of the input: a byte range of a
CSV file (whole records, found by a quote-aware scan of the file), a set of row groups of a
Parquet file (or of one file of a folder of Parquet files), or, for formats that cannot be
read piecewise (XLSX, GeoJSON, GeoPackage), the rows themselves as an Arrow table. Each knows
its first row's number in the whole input, so the answers and the bad-row report of the
partitions put together are those of the whole file.

The single process reads the partitions one after another (streaming: at most one in
memory); a Dask cluster's workers read them from the shared path themselves
(``services.flagcluster``), so the data of a CSV or Parquet input never goes through the
client.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely

from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.spatial.crs import WGS84
from geoapp.storage.tables_in import Limits, check_csv_header, check_rows, not_utf8, too_wide

log = logging.getLogger(__name__)

#: Rows per partition when none is asked for: big enough that the per-partition overhead
#: (a task, a batch write) is small, small enough that a partition's answer (a few hundred
#: bytes of text per flagged row) stays well under a gigabyte.
DEFAULT_PARTITION_ROWS = 250_000
#: The same for a Parquet output: building its list-of-structs columns holds about 8 KB
#: per row of a partition at its peak, so 100,000 rows keep a process near 1.5 GB.
PARQUET_PARTITION_ROWS = 100_000
#: The CSV scan reads the file in blocks of this many bytes.
SCAN_BLOCK = 1 << 24
BOM = b"\xef\xbb\xbf"
#: Where a spatial partition keeps each feature's geometry (WKB) when it came as a frame.
WKB_COLUMN = "geometry"


# -- partitions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """Rows ``row0 … row0 + rows - 1`` of the input (0-based data rows)."""

    index: int
    row0: int
    rows: int

    def read(self) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class CsvPart(Part):
    """Whole records ``[start, end)`` of a UTF-8 CSV file, parsed with the header's names."""

    path: str
    start: int
    end: int
    names: tuple[str, ...]
    label: str
    quoted: bool  # the range holds a quote: a cell may hold a line break

    def read(self) -> pa.Table:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            data = f.read(self.end - self.start)
        if len(data) != self.end - self.start:
            raise InvalidInput(f"{self.label}: the file changed while it was read")
        return parse_csv_bytes(data, self.names, self.label, self.row0, self.quoted, self.rows)


@dataclass(frozen=True)
class ParquetPart(Part):
    """Row groups of one Parquet file."""

    path: str
    groups: tuple[int, ...]
    columns: tuple[str, ...]

    def read(self) -> pa.Table:
        table = pq.ParquetFile(self.path).read_row_groups(list(self.groups),
                                                          columns=list(self.columns))
        if table.num_rows != self.rows:
            raise InvalidInput(f"{Path(self.path).name}: the file changed while it was read")
        return table


@dataclass(frozen=True)
class TablePart(Part):
    """Rows already read (XLSX, GeoJSON, GeoPackage), as an Arrow table."""

    table: pa.Table

    def read(self) -> pa.Table:
        return self.table


@dataclass
class Source:
    """An input ready to be flagged: its columns, CRS and partitions."""

    columns: list[str]            # the input's own columns, in order (no geometry)
    rows: int
    parts: list[Part]
    file_crs: str | None = None   # the CRS of a spatial input's geometry
    geometry: str | None = None   # the WKB geometry column of a spatial input
    crs_unknown_datum: str | None = None  # a datum no authority defines (see vector_in)


# -- CSV --------------------------------------------------------------------------------
def parse_csv_bytes(data: bytes, names: tuple[str, ...], label: str, row0: int,
                    quoted: bool, rows: int = 0) -> pa.Table:
    """Records of a CSV file as a table of text cells (blank cells stay ``""``)."""
    bad: list[Any] = []

    def invalid(row: Any) -> str:
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(names), use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=quoted,
                                             invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise not_utf8(label) from None
        log.warning("%s: unreadable CSV: %s", label, exc)
        raise unreadable_csv(label) from None
    if bad:  # the rows by number: the csv module reads the partition again (rare path)
        wrong = _ragged_rows(data, len(names), row0)
        first = wrong[0] if wrong else None
        where = (f"（第 {first[0]} 行 row {first[0]}：{first[1]} 列，表头 {len(names)} 列）"
                 if first else "")
        raise ValidationFailed(
            _l("无法读取此 CSV 文件：%(file)s（请检查引号，以及每行的列数是否与表头一致）", file=label)
            + where, details=[{"row": r, "columns": c, "expected": len(names), "text": t}
                              for r, c, t in wrong[:20]])
    return table


def _ragged_rows(data: bytes, width: int, row0: int) -> list[tuple[int, int, str]]:
    """(row number as a spreadsheet shows it, fields, start of the text) of every record of
    the partition whose field count is not the header's; blank lines skipped as pandas does."""
    out = []
    text = data.decode("utf-8", errors="replace")
    k = 0
    for record in csv.reader(io.StringIO(text, newline="")):
        if not record:
            continue
        if len(record) != width:
            out.append((row0 + k + 2, len(record), ",".join(record)[:120]))
        k += 1
    return out


def unreadable_csv(label: str) -> ValidationFailed:
    return ValidationFailed(_l("无法读取此 CSV 文件：%(file)s（请检查引号，以及每行的列数是否与表头"
                               "一致）", file=label))


def header_names(cells: list[str]) -> tuple[str, ...]:
    """Header cells as pandas names them: blank -> ``Unnamed: i``, repeats -> ``a.1``."""
    out: list[str] = []
    for i, cell in enumerate(cells):
        h = cell.strip() or f"Unnamed: {i}"
        base, k = h, 0
        while h in out:
            k += 1
            h = f"{base}.{k}"
        out.append(h)
    return tuple(out)


def _record_ends(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per block of the file: the positions of the line breaks that end a record (outside
    quotes: an even number of quote characters before them), whether each record is blank,
    and how many quote characters the file holds before each. A quote inside a quoted cell
    is doubled (RFC 4180), so counting keeps parity."""
    quotes = 0
    offset = 0
    prev_end = -1  # the position of the last record end (-1: the file's start)
    prev_tail = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(SCAN_BLOCK)
            if not block:
                break
            buf = np.frombuffer(block, dtype=np.uint8)
            nl = np.flatnonzero(buf == 10)
            q = np.flatnonzero(buf == 34)
            before = quotes + np.searchsorted(q, nl)
            keep = (before % 2) == 0
            ends, before = nl[keep], before[keep]
            quotes += len(q)
            ends = ends.astype(np.int64) + offset
            starts = np.r_[prev_end, ends[:-1]] + 1
            length = ends - starts
            blank = length == 0
            cr = length == 1
            if cr.any():  # "\r\n" alone
                at = starts[cr] - offset
                vals = np.empty(len(at), dtype=np.uint8)
                inside = at >= 0
                vals[inside] = buf[at[inside]]
                vals[~inside] = prev_tail[-1] if prev_tail else 0
                blank[np.flatnonzero(cr)[vals == 13]] = True
            if len(ends):
                prev_end = int(ends[-1])
            prev_tail = block[-1:]
            offset += len(block)
            yield ends, blank, before.astype(np.int64)
    yield (np.array([offset], dtype=np.int64), np.array([prev_end == offset - 1]),
           np.array([quotes], dtype=np.int64))


def csv_source(path: Path, label: str, limits: Limits | None,
               partition_rows: int) -> Source:
    """A CSV file's header and partitions of about ``partition_rows`` records each.

    One pass over the bytes (``_record_ends``), no parsing: the partitions are read later,
    by whoever flags them. Blank lines are skipped, as pandas does, so row numbers are those
    of the file's data rows."""
    size = path.stat().st_size
    if size == 0:
        raise ValidationFailed(_l("文件为空：%(file)s", file=label))
    if limits is not None and limits.max_columns:
        check_csv_header(path, label, limits)  # a hostile header is judged before the scan
    with open(path, "rb") as f:
        head = f.read(len(BOM))
    base = len(BOM) if head == BOM else 0
    header_end: int | None = None
    header_quotes = 0
    record_end: list[np.ndarray] = []
    record_quotes: list[np.ndarray] = []
    header_cells: list[str] = []
    for ends, blank, before in _record_ends(path):
        keep = ~blank & (ends >= base)
        ends, before = ends[keep], before[keep]
        if header_end is None and len(ends):
            header_end, header_quotes = int(ends[0]), int(before[0])
            header_cells = _header_cells(path, base, header_end, label, limits)
            ends, before = ends[1:], before[1:]
        if header_end is not None:
            record_end.append(ends)
            record_quotes.append(before)
    if header_end is None:
        raise ValidationFailed(_l("文件为空：%(file)s", file=label))
    ends = np.concatenate(record_end) if record_end else np.zeros(0, dtype=np.int64)
    quotes = np.concatenate(record_quotes) if record_quotes else np.zeros(0, dtype=np.int64)
    # the last "record" is the file's end: a real record only if it holds something
    if len(ends) and ends[-1] >= size:
        with open(path, "rb") as f:
            prev = int(ends[-2]) if len(ends) > 1 else header_end
            f.seek(prev + 1)
            tail = f.read()
        if not tail.strip(b"\r\n"):
            ends, quotes = ends[:-1], quotes[:-1]
    names = header_names(header_cells)
    rows = len(ends)
    if limits is not None:
        check_rows(label, rows, limits)
        if limits.max_cells and rows * len(names) > limits.max_cells:
            raise ValidationFailed(_l("文件单元格过多：%(file)s 超过 %(max)s 个单元格；请拆分后再导入",
                                      file=label, max=format(limits.max_cells, ",")))
    parts: list[Part] = []
    start, seen = header_end + 1, header_quotes
    where = str(path.resolve())
    for k, r0 in enumerate(range(0, rows, partition_rows)):
        r1 = min(r0 + partition_rows, rows)
        end = min(int(ends[r1 - 1]) + 1, size)
        last_quotes = int(quotes[r1 - 1]) if r1 < rows or ends[r1 - 1] < size else None
        quoted = last_quotes is None or last_quotes > seen
        parts.append(CsvPart(k, r0, r1 - r0, where, start, end, names, label, quoted))
        start, seen = end, last_quotes if last_quotes is not None else seen
    return Source(list(names), rows, parts)


def _header_cells(path: Path, base: int, end: int, label: str,
                  limits: Limits | None) -> list[str]:
    """The header record's cells (the ``csv`` module: pandas' own header parsing costs the
    square of the width)."""
    with open(path, "rb") as f:
        f.seek(base)
        raw = f.read(end - base)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise not_utf8(label) from None
    if "\r" in text.rstrip("\r\n") and text.count("\r") > text.count('"') // 2 + 1:
        # lines ended by a lone CR (old Mac): read as one line, every row would be lost
        raise ValidationFailed(_l("无法读取此 CSV 文件：%(file)s（行尾须为 LF 或 CRLF；请用 Excel 另存为"
                                  "“CSV UTF-8”）", file=label))
    try:
        cells = next(csv.reader([text.rstrip("\r\n")]))
    except (csv.Error, StopIteration):
        raise unreadable_csv(label) from None
    if limits is not None and limits.max_columns and len(cells) > limits.max_columns:
        raise too_wide(label, 1, len(cells), limits)
    return cells


# -- Parquet ------------------------------------------------------------------------------
def parquet_files(path: Path) -> list[Path]:
    """A Parquet file, or the ``*.parquet`` files of a folder (a partitioned dataset) in
    name order."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file() and not p.is_symlink())
        if not files:
            raise InvalidInput(f"文件夹中没有 .parquet 文件 {path.name}: no .parquet file in this folder")
        return files
    return [path]


def geo_metadata(schema: pa.Schema, label: str) -> tuple[str | None, str | None]:
    """(geometry column, CRS) of a GeoParquet file's ``geo`` metadata; (None, None) for a
    plain table. Only WKB geometry is read; the CRS defaults to OGC:CRS84 as the
    specification says."""
    meta = (schema.metadata or {}).get(b"geo")
    if not meta:
        return None, None
    try:
        geo = json.loads(meta)
        column = geo["primary_column"]
        spec = geo["columns"][column]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"GeoParquet 元数据无法读取 {label}: unreadable GeoParquet metadata") from None
    if str(spec.get("encoding", "WKB")).upper() != "WKB":
        raise InvalidInput(f"不支持的几何编码 {label}: geometry encoding {spec.get('encoding')!r} is not "
                           "supported; write the file with WKB geometry")
    crs = spec.get("crs", "OGC:CRS84")
    if crs is None:
        raise InvalidInput(f"几何没有坐标系 {label}: the geometry has no coordinate system (crs: null)")
    from pyproj import CRS  # noqa: PLC0415 - only GeoParquet inputs need it

    try:
        crs_text = CRS.from_user_input(crs if isinstance(crs, str) else json.dumps(crs))
    except Exception:  # noqa: BLE001 - pyproj raises several kinds
        raise InvalidInput(f"坐标系无法读取 {label}: unreadable coordinate system in the GeoParquet "
                           "metadata") from None
    if crs_text.equals(CRS.from_user_input("OGC:CRS84")):
        return column, WGS84  # longitude first, as every geometry here is
    return column, crs_text.to_string()


def parquet_source(path: Path, label: str, limits: Limits | None,
                   partition_rows: int) -> Source:
    """Partitions of whole row groups (about ``partition_rows`` rows each; a row group is
    never split) of a Parquet file or of every file of a Parquet folder."""
    files = parquet_files(path)
    parts: list[Part] = []
    rows = 0
    schema0: pa.Schema | None = None
    geometry, crs = None, None
    for file in files:
        try:
            pf = pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError):
            raise InvalidInput(f"不是可读的 Parquet 文件 {file.name}: not a readable Parquet file") from None
        schema = pf.schema_arrow
        if schema0 is None:
            schema0 = schema
            geometry, crs = geo_metadata(schema, label)
        elif schema.names != schema0.names:
            raise InvalidInput(f"各文件的列不一致 {file.name}: its columns differ from {files[0].name}'s")
        meta = pf.metadata
        groups: list[int] = []
        count = 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            count += meta.row_group(g).num_rows
            if count >= partition_rows or g == meta.num_row_groups - 1:
                parts.append(ParquetPart(len(parts), rows, count, str(file.resolve()), tuple(groups),
                                         tuple(schema.names)))
                rows += count
                groups, count = [], 0
    assert schema0 is not None
    if limits is not None:
        check_rows(label, rows, limits)
    columns = [c for c in schema0.names if c != geometry]
    return Source(columns, rows, parts, file_crs=crs, geometry=geometry)


# -- anything read whole -----------------------------------------------------------------
def arrow_table(df: pd.DataFrame) -> pa.Table:
    """A frame's columns as Arrow; a column Arrow cannot type (mixed values) as text."""
    arrays, names = [], []
    for name in df.columns:
        col = df[name]
        try:
            arr = pa.array(col, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arr = pa.array([None if v is None or (isinstance(v, float) and np.isnan(v))
                            else str(v) for v in col.tolist()], type=pa.string())
        if pa.types.is_null(arr.type):
            arr = arr.cast(pa.string())
        arrays.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def frame_source(df: pd.DataFrame, partition_rows: int, file_crs: str | None = None,
                 unknown_datum: str | None = None) -> Source:
    """Rows read whole (a GeoDataFrame's geometry kept as WKB) cut into table partitions."""
    geometry = None
    data = df
    if "geometry" in df.columns and hasattr(df, "geometry"):
        geometry = WKB_COLUMN
        data = pd.DataFrame(df.drop(columns=[df.geometry.name]))
    table = arrow_table(data)
    columns = list(table.column_names)
    if geometry is not None:
        wkb = shapely.to_wkb(np.asarray(df.geometry.values, dtype=object))
        table = table.append_column(WKB_COLUMN, pa.array(wkb, type=pa.binary()))
    n = table.num_rows
    parts: list[Part] = [TablePart(k, r0, min(partition_rows, n - r0),
                                   table.slice(r0, min(partition_rows, n - r0)))
                         for k, r0 in enumerate(range(0, n, partition_rows))]
    return Source(columns, n, parts, file_crs=file_crs, geometry=geometry,
                  crs_unknown_datum=unknown_datum)

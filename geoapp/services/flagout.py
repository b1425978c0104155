"""Where a batch flag's answer goes: one output file, written batch by batch, atomically.

Every writer writes into a temporary file beside the destination and puts it in place only
when the whole input has been flagged (``commit``); a refused or failed run removes it
(``abort``), so an old output is never left half overwritten and a refused input never
leaves a file behind. CSV, Parquet and GeoPackage are streamed (one partition's rows in
memory at a time); GeoJSON and XLSX are written at the end from all the rows.

CSV is written by Arrow's writer (quoted where needed, blank cells empty); Parquet is
GeoParquet 1.1 (WKB points in WGS84 longitude/latitude) with list columns; the GeoPackage
keeps the lists as GDAL's JSON string lists.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyogrio

from geoapp.domain.errors import InvalidInput
from geoapp.exports.tables import write_xlsx
from geoapp.spatial.crs import WGS84

#: Most data rows an XLSX sheet holds (1,048,576 rows less the header).
XLSX_MAX_ROWS = 1_048_575
#: The GeoParquet metadata of the output's point geometry (OGC:CRS84 by omission).
GEO_METADATA = {"version": "1.1.0", "primary_column": "geometry",
                "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}}}
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 1024
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def csv_field(text: str) -> str:
    """``text`` as one CSV field, quoted as the csv module quotes (QUOTE_MINIMAL)."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


class Writer:
    """Writes tables of output rows into a temporary file and puts it in place at the end."""

    suffix = ""

    def __init__(self, path: Path, names: list[str]) -> None:
        self.path = path
        self.names = names
        self.tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.partial{self.suffix}")
        self.rows = 0

    def write(self, table: pa.Table) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Finish the temporary file."""

    def commit(self) -> None:
        self.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the run failed already; its error is reported
            self.close()
        self.tmp.unlink(missing_ok=True)


class CsvWriter(Writer):
    suffix = ".csv"

    def __init__(self, path: Path, names: list[str]) -> None:
        super().__init__(path, names)
        self.sink = open(self.tmp, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self.sink.write((",".join(csv_field(n) for n in names) + "\n").encode("utf-8"))

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            pacsv.write_csv(table, self.sink, _CSV_OPTIONS)
        self.rows += table.num_rows

    def write_bytes(self, data: bytes | list[bytes], rows: int) -> None:
        """Rows already written as CSV (``flagfile._csv_bytes``): bytes, or pieces to be
        written one after another (gathered by the kernel, ``IOV_MAX`` at a time)."""
        if isinstance(data, bytes):
            self.sink.write(data)
        else:
            fd = self.sink.fileno()
            for i in range(0, len(data), _IOV_MAX):
                chunk = data[i:i + _IOV_MAX]
                done = os.writev(fd, chunk)
                total = sum(map(len, chunk))
                if done < total:  # a short write: the rest the plain way
                    rest = b"".join(chunk)[done:]
                    while rest:
                        rest = rest[os.write(fd, rest):]
        self.rows += rows

    def close(self) -> None:
        if not self.sink.closed:
            self.sink.close()


class ParquetWriter(Writer):
    suffix = ".parquet"

    def __init__(self, path: Path, names: list[str]) -> None:
        super().__init__(path, names)
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            meta = dict(table.schema.metadata or {})
            meta[b"geo"] = json.dumps(GEO_METADATA).encode()
            schema = table.schema.with_metadata(meta)
            self.writer = pq.ParquetWriter(str(self.tmp), schema, compression="zstd")
        self.writer.write_table(table.cast(self.writer.schema))
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is None:  # no rows at all: still a valid, empty file
            self.writer = pq.ParquetWriter(str(self.tmp), pa.schema(
                [pa.field(n, pa.string()) for n in self.names]
                + [pa.field("geometry", pa.binary())]).with_metadata(
                {b"geo": json.dumps(GEO_METADATA).encode()}))
        self.writer.close()


class GpkgWriter(Writer):
    suffix = ".gpkg"

    def write(self, table: pa.Table) -> None:
        if not table.num_rows and self.rows:
            return
        pyogrio.write_arrow(table, str(self.tmp), layer=self.path.stem, driver="GPKG",
                            geometry_name="geometry", geometry_type="Point", crs=WGS84,
                            append=self.rows > 0 or self.tmp.exists())
        self.rows += table.num_rows


class WholeWriter(Writer):
    """GeoJSON and XLSX: the rows are kept and written at the end."""

    def __init__(self, path: Path, names: list[str], fmt: str) -> None:
        self.suffix = ".geojson" if fmt == "geojson" else ".xlsx"
        super().__init__(path, names)
        self.fmt = fmt
        self.tables: list[pa.Table] = []

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.fmt == "xlsx" and self.rows > XLSX_MAX_ROWS:
            raise InvalidInput(f"an XLSX sheet holds at most {XLSX_MAX_ROWS:,} rows; write "
                               "CSV, Parquet or GeoPackage instead")
        self.tables.append(table)

    def close(self) -> None:
        if self.tmp.exists() or not hasattr(self, "tables"):
            return
        table = pa.concat_tables(self.tables) if self.tables else None
        self.tables = []
        if self.fmt == "geojson":
            if table is None:
                table = pa.table({n: pa.array([], pa.string()) for n in self.names}
                                 | {"geometry": pa.array([], pa.binary())})
            pyogrio.write_arrow(table, str(self.tmp), driver="GeoJSON",
                                geometry_name="geometry", geometry_type="Point",
                                crs=WGS84)
            return
        frame = table.to_pandas() if table is not None else None
        write_xlsx({"flagged": frame if frame is not None else pd.DataFrame(columns=self.names)},
                   self.tmp)


class FolderWriter(Writer):
    """A folder of Parquet files, one per partition, each written by whoever flagged the
    partition (``write_part``: a cluster's workers write straight to the shared folder).
    They go into a temporary folder beside the destination, renamed at the end."""

    def __init__(self, path: Path, names: list[str]) -> None:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise InvalidInput(f"输出文件夹须为新的或空的 {path.name}: the output folder must be new "
                               "or empty")
        super().__init__(path, names)
        self.tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
        self.tmp.mkdir()

    def write(self, table: pa.Table) -> None:  # pragma: no cover - parts write themselves
        raise NotImplementedError("partitions of a folder output are written by write_part")

    def commit(self) -> None:
        if self.path.is_dir():
            self.path.rmdir()  # new or empty, as checked when opened
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_part(folder: str, index: int, table: pa.Table) -> str:
    """One partition's rows as ``part-NNNNN.parquet`` (GeoParquet) in ``folder``, written
    under a temporary name and renamed, so a folder never holds half a file."""
    meta = dict(table.schema.metadata or {})
    meta[b"geo"] = json.dumps(GEO_METADATA).encode()
    final = Path(folder) / f"part-{index:05d}.parquet"
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}")
    try:
        pq.write_table(table.replace_schema_metadata(meta), str(tmp), compression="zstd")
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"无法写入输出文件夹 Cannot write {final}: {exc.strerror}") from None
    return str(final)


def open_writer(path: Path, fmt: str, names: list[str], rows: int | None = None) -> Writer:
    """The writer for ``fmt``; an XLSX output of more rows than a sheet holds is refused
    before any work."""
    if fmt == "xlsx" and rows is not None and rows > XLSX_MAX_ROWS:
        raise InvalidInput(f"{rows:,} rows do not fit in an XLSX sheet (at most "
                           f"{XLSX_MAX_ROWS:,}); write CSV, Parquet or GeoPackage instead")
    if not path.parent.is_dir():
        raise InvalidInput(f"输出文件夹不存在 No such folder for the output: {path.parent.name}")
    if fmt == "parquet-folder":
        return FolderWriter(path, names)
    if fmt == "csv":
        return CsvWriter(path, names)
    if fmt == "parquet":
        return ParquetWriter(path, names)
    if fmt == "gpkg":
        return GpkgWriter(path, names)
    return WholeWriter(path, names, fmt)


__all__ = ["Writer", "csv_field", "open_writer", "write_part", "GEO_METADATA", "XLSX_MAX_ROWS"]

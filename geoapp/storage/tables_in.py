"""Reading tabular uploads (CSV and XLSX), with their size judged before they are parsed.

Every spreadsheet the app reads from a user goes through here: flagged files
(``services.flagfile``), warning and complaint imports (``services.events``) and the ledger
(``exports.ledger_xlsx``). An XLSX file is a zip of XML parts, and a 150 KB upload can unpack
to a sheet of a million rows, so the checks come in order of cost:

1. the zip directory: number of entries, total unpacked size, and every entry's own
   compression ratio (a ratio over all entries is defeated by one incompressible entry);
2. every XML part's prolog: a DTD (the door to XXE and entity expansion) is refused;
3. the shared strings part, which openpyxl loads whole before any sheet row is read: its
   unpacked size, its declared ``uniqueCount`` and then its ``<si>`` elements counted in a
   byte scan of the decompressed stream (stopping past the limit), all before openpyxl
   parses it;
4. the first sheet's ``<dimension ref=...>``, when present: rows and columns (trusted only
   when it says too big: a writer may leave it out or say ``A1:B2``);
5. a byte scan of the decompressed sheet counting ``<row`` tags, stopping past the row
   limit: a million rows are refused in milliseconds, before openpyxl parses one;
6. a streaming read of the sheet (openpyxl's sheet parser, fed one ``<row>`` at a time) that
   stops at the first row, column or cell over the limit, and notes every formula cell
   without a cached value (openpyxl and scripts write formulas that nothing has calculated;
   they would otherwise read as empty cells and the row would be silently wrong).

A CSV file's header is judged first, from at most its first ``MAX_HEADER_BYTES`` read with
the ``csv`` module: its field count (pandas' cost for a header grows with the square of its
width: 100,000 columns took 106 s) and its length. The file is then read with a row cap
(``nrows``) and, when over it, the rest is only counted.

Limits come from the caller (:class:`Limits`): the web passes its settings, the command line
takes any size unless ``--max-rows`` is given. Every failure is a ``ValidationFailed`` (an
``InvalidInput``: 400), with row/column details where they apply, whose message names the
upload, never a temp path or a library's exception text (that goes to the log).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse as safe_iterparse
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.stylesheet import apply_stylesheet
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import range_boundaries
from openpyxl.worksheet._reader import FORMULA_TAG, VALUE_TAG, WorkSheetParser
from openpyxl.xml.constants import SHARED_STRINGS

from geoapp.domain.errors import InvalidInput, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l

log = logging.getLogger(__name__)

#: Most columns a table upload may have on the server (a real one has a few dozen; a hostile
#: one 16,384, and every row of it costs that much).
MAX_COLUMNS = 200
#: Most non-empty cells of one table upload on the server (e.g. 200,000 rows x 20 columns).
MAX_CELLS = 4_000_000
#: Zip directory limits for an XLSX upload on the server.
MAX_ZIP_ENTRIES = 1_000
MAX_COMPRESSION_RATIO = 100
#: Below this unpacked size an entry's compression ratio is not judged (tiny parts compress
#: well, and 1,000 of them unpack to at most 1 GB, which the unpacked-size limit stops first).
_RATIO_FLOOR = 1 << 20
#: Largest unpacked shared strings part on the server (openpyxl keeps every string in memory;
#: 200,000 rows of distinct names and addresses are about 15 MB). Its strings are at most
#: ``MAX_CELLS``.
MAX_SHARED_STRINGS_BYTES = 64 * 2**20
#: Most bytes of a CSV header line on the server (200 columns of 100 Chinese characters each
#: are 60 KB).
MAX_HEADER_BYTES = 64 * 1024
#: Formatted but empty rows tolerated after the last row allowed before reading stops.
BLANK_TAIL = 1_000
MAX_REPORTED = 200
XLSX_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".txt", "")


@dataclass(frozen=True)
class Limits:
    """What one read may cost. ``None`` is no limit (the command line's default)."""

    max_rows: int | None = None          # data rows (header rows not counted)
    max_columns: int | None = None
    max_cells: int | None = None         # non-empty cells
    max_unpacked: int | None = None      # bytes of an XLSX once unzipped
    max_ratio: float | None = None       # unpacked / packed size of an XLSX
    max_entries: int | None = None       # files inside an XLSX
    max_shared_bytes: int | None = None  # unpacked bytes of an XLSX's shared strings part
    rows_named: str = "--max-rows"       # the setting or option that sets the row limit

    @classmethod
    def server(cls, max_rows: int | None, max_upload_mb: int | None) -> Limits:
        """The web's limits: ``MAX_ROWS`` rows and the fixed caps above."""
        unpacked = int(max_upload_mb) * 10 * 2**20 if max_upload_mb else None
        return cls(max_rows=int(max_rows) if max_rows else None, max_columns=MAX_COLUMNS,
                   max_cells=MAX_CELLS, max_unpacked=unpacked, max_ratio=MAX_COMPRESSION_RATIO,
                   max_entries=MAX_ZIP_ENTRIES, max_shared_bytes=MAX_SHARED_STRINGS_BYTES,
                   rows_named="MAX_ROWS")


NO_LIMITS = Limits()


def too_many_rows(label: str, rows: int, limits: Limits) -> ValidationFailed:
    """The one message for a file over the row limit."""
    return ValidationFailed(_l("文件行数超过上限：%(file)s 有 %(rows)s 行，超过接受的 %(max)s 行"
                               "（%(setting)s）；请拆分后再导入", file=label, rows=rows,
                               max=limits.max_rows, setting=limits.rows_named))


def check_rows(label: str, rows: int, limits: Limits | None) -> None:
    """Refuse ``rows`` data rows when over the limit."""
    if limits is not None and limits.max_rows and rows > limits.max_rows:
        raise too_many_rows(label, rows, limits)


# ------------------------------------------------------------------------------ XLSX
@dataclass
class Grid:
    """The first sheet's raw cell values: ``rows[i]`` is sheet row ``i + 1`` (trailing empty
    rows dropped, missing rows empty lists)."""

    name: str
    rows: list[list[Any]]


def read_grid(path: str | Path, *, name: str | None = None, limits: Limits | None = None,
              extra_rows: int = 1) -> Grid:
    """The first sheet of an XLSX upload, checked against ``limits`` before it is parsed.

    ``extra_rows`` is how many sheet rows besides data rows the layout has (1: a header row),
    so the sheet may have ``max_rows + extra_rows`` rows. A formula cell without a cached value
    rejects the file with every such cell's row and column.
    """
    path = Path(path)
    label = name or path.name
    limits = limits or NO_LIMITS
    _check_zip(path, label, limits)
    reader, target = _open_workbook(path, label, limits)
    try:
        return Grid(label, _stream_sheet(reader, target, label, limits, extra_rows))
    finally:
        reader.archive.close()


def _open_workbook(path: Path, label: str, limits: Limits) -> tuple[Any, str]:
    """openpyxl's workbook reader up to (not including) its worksheets, and the first
    worksheet's part name. ``load_workbook`` would also size every sheet, and a sheet without
    ``<dimension>`` is then parsed whole before a single row can be refused. The shared
    strings are judged (:func:`_check_shared_strings`) before openpyxl reads them."""

    reader = None
    try:
        reader = ExcelReader(path, read_only=True, data_only=True)
        reader.read_manifest()
        _check_shared_strings(reader, label, limits)
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        target = next((rel.target for _sheet, rel in reader.parser.find_sheets()
                       if rel.target in reader.valid_files and "chartsheet" not in rel.Type),
                      None)
    except InvalidInput:
        if reader is not None:
            reader.archive.close()
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for broken files
        if reader is not None:
            reader.archive.close()
        log.warning("%s: openpyxl cannot open the workbook: %r", label, exc)
        raise _unreadable(label, "the workbook's parts are missing or damaged") from None
    if target is None:
        reader.archive.close()
        raise _unreadable(label, "it has no worksheet")
    return reader, target


#: Bytes of decompressed XML scanned at a time.
_SCAN_CHUNK = 1 << 20
#: A ``<`` this close to the end of a chunk starts a tag carried to the next chunk.
_TAG_SPAN = 256


def _prefixed(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"<[^\s<>/!?:=\"']+:" + name + rb"[\s/>]")


#: Start tags of sheet rows and shared strings written with a namespace prefix (``<x:row>``).
_PREFIXED_ROW = _prefixed(b"row")
_PREFIXED_SI = _prefixed(b"si")


def _count_tags(src: Any, name: bytes, prefixed: re.Pattern[bytes], stop_above: int) -> int:
    """Start tags ``<name`` (or ``<prefix:name``) in the decompressed XML stream ``src``,
    counted with a byte scan and no parse; counting stops once over ``stop_above``.

    No entity makes a tag (a DTD is refused), and a tag cut by a chunk boundary is found
    because the tail after a chunk's last ``<`` is carried to the next chunk; only a tag
    whose namespace prefix is longer than ``_TAG_SPAN`` may be missed, at most one per chunk
    of ``_SCAN_CHUNK`` bytes. It may count more (``<rowBreaks``, or a ``<row`` inside a
    CDATA section), which only refuses a file that is odd already.
    """
    opening = b"<" + name
    count = 0
    carry = b""
    while count <= stop_above:
        data = src.read(_SCAN_CHUNK)
        if not data:
            return count + carry.count(opening) + len(prefixed.findall(carry))
        buf = carry + data
        cut = buf.rfind(b"<")
        if cut < 0 or len(buf) - cut >= _TAG_SPAN:
            cut = len(buf)
        count += buf.count(opening, 0, cut)
        if b":" + name in buf:
            count += len(prefixed.findall(buf, 0, cut))
        carry = buf[cut:]
    return count


def _check_shared_strings(reader: Any, label: str, limits: Limits) -> None:
    """The shared strings part, before openpyxl's ``read_strings`` loads every string of it
    into a list (15 million strings, a 43 MB upload, took 162 s and 2.7 GB): its unpacked
    size from the zip directory, the ``uniqueCount`` it declares, then its ``<si>`` elements
    counted with a byte scan that stops past the limit (the declaration may lie)."""

    ct = reader.package.find(SHARED_STRINGS)
    if ct is None or not (limits.max_shared_bytes or limits.max_cells):
        return
    try:
        info = reader.archive.getinfo(ct.PartName[1:])
    except KeyError:
        return  # openpyxl reports the part missing
    if limits.max_shared_bytes and info.file_size > limits.max_shared_bytes:
        raise _too_many_strings(label, _l("共享字符串解压后 %(size)s MB，超过接受的 %(max)s MB",
                                          size=format(info.file_size / 2**20, ",.0f"),
                                          max=format(limits.max_shared_bytes / 2**20, ",.0f")))
    root = _root_attributes(reader.archive, info, label)
    if not limits.max_cells:
        return
    declared = root.get("uniqueCount", "")
    if declared.strip().isdigit() and int(declared) > limits.max_cells:
        raise _too_many_strings(label, _l("声明了 %(count)s 个不同的共享字符串，超过接受的 %(max)s 个",
                                          count=format(int(declared), ","),
                                          max=format(limits.max_cells, ",")))
    with reader.archive.open(info) as src:
        counted = _count_tags(src, b"si", _PREFIXED_SI, limits.max_cells)
    if counted > limits.max_cells:
        raise _too_many_strings(label, _l("共享字符串超过接受的 %(max)s 个",
                                          max=format(limits.max_cells, ",")))


def _too_many_strings(label: str, why: str) -> ValidationFailed:
    return ValidationFailed(_l("XLSX 文件的共享字符串表过大，已拒绝：%(file)s：%(why)s；请拆分后再导入",
                               file=label, why=why))


_DIMENSION = re.compile(rb"<(?:[^\s<>/!?:=\"']+:)?dimension\s[^>]*?\bref\s*=\s*[\"']([^\"']*)[\"']")
_SHEET_DATA = re.compile(rb"<(?:[^\s<>/!?:=\"']+:)?sheetData[\s/>]")


def _dimension(reader: Any, target: str) -> tuple[int, int, int, int] | None:
    """The sheet's declared ``<dimension ref>`` (min_col, min_row, max_col, max_row), found
    by a byte search of the sheet's start (before ``<sheetData>``), without parsing it: an
    XML parse of the first block costs milliseconds of cells on a wide sheet."""

    with reader.archive.open(target) as src:
        head = src.read(64 << 10)
    data = _SHEET_DATA.search(head)
    m = _DIMENSION.search(head, 0, data.start() if data else len(head))
    if m is None:
        return None
    try:
        bounds = range_boundaries(m.group(1).decode("ascii", "replace"))
    except (ValueError, TypeError):
        return None
    return None if None in bounds else bounds  # type: ignore[return-value]


def _unreadable(label: str, why: str) -> ValidationFailed:
    return ValidationFailed(_l("无法读取此 XLSX 文件 %(file)s（%(why)s）；请用 Excel 另存为 .xlsx 后重试",
                               file=label, why=why))


def _check_zip(path: Path, label: str, limits: Limits) -> None:
    """The zip directory and every XML part's prolog, before openpyxl reads anything."""
    if path.stat().st_size == 0:
        raise ValidationFailed(_l("文件为空：%(file)s", file=label))
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_directory(infos, label, limits)
            for info in infos:
                if info.filename.endswith((".xml", ".rels", ".vml")):
                    _check_prolog(zf, info, label)
    except zipfile.BadZipFile as exc:
        log.info("%s: not a zip archive: %s", label, exc)
        raise _unreadable(label, _l("不是 zip 压缩包，是旧的 .xls 或改了扩展名的文件吗？")) from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
        log.warning("%s: unreadable zip: %r", label, exc)
        raise _unreadable(label, _l("压缩包已损坏或使用了未知的压缩方式")) from None


def _check_directory(infos: list[zipfile.ZipInfo], label: str, limits: Limits) -> None:
    if limits.max_entries and len(infos) > limits.max_entries:
        raise ValidationFailed(_l("XLSX 文件内部条目过多：%(file)s 有 %(count)s 个条目，超过接受的 "
                                  "%(max)s 个", file=label, count=format(len(infos), ","),
                                  max=format(limits.max_entries, ",")))
    unpacked = sum(i.file_size for i in infos)
    if limits.max_unpacked and unpacked > limits.max_unpacked:
        raise ValidationFailed(_l("XLSX 文件解压后过大：%(file)s 解压后 %(size)s MB，超过接受的 "
                                  "%(max)s MB（MAX_UPLOAD_MB 的 10 倍）；请拆分后再导入",
                                  file=label, size=format(unpacked / 2**20, ",.0f"),
                                  max=format(limits.max_unpacked / 2**20, ",.0f")))
    if not limits.max_ratio:
        return
    for info in infos:  # each entry on its own: padding with random bytes must not help
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > limits.max_ratio:
            raise ValidationFailed(_l("XLSX 文件压缩比异常，已拒绝：%(file)s 中有一部分的压缩比为 "
                                      "%(ratio)s 比 1，超过任何真实的工作簿（%(max)s 比 1），按 zip "
                                      "炸弹拒绝", file=label, ratio=format(ratio, ",.0f"),
                                      max=format(limits.max_ratio, ",.0f")))


def _check_prolog(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> None:
    """Parse up to the root element: a DOCTYPE (no workbook part has one) is refused."""
    _root_attributes(zf, info, label)


def _root_attributes(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> dict[str, str]:
    """The root element's attributes, parsed up to it only; a DOCTYPE is refused."""
    try:
        with zf.open(info) as src:
            for _event, elem in safe_iterparse(src, events=("start",), forbid_dtd=True):
                return dict(elem.attrib)
    except DefusedXmlException as exc:
        log.warning("%s: %s has a DTD (%r); refused", label, info.filename, exc)
        raise ValidationFailed(_l("XLSX 文件含有 XML 文档类型定义（DTD），已拒绝：%(file)s 中有一部分"
                                  "声明了 DTD 或实体，电子表格软件从不这样写", file=label)) from None
    except Exception as exc:  # noqa: BLE001 - a broken part is the file's fault
        log.warning("%s: part %s is not well-formed XML: %r", label, info.filename, exc)
        raise _unreadable(label, _l("工作簿的某一部分不是格式正确的 XML")) from None
    return {}


class _SheetParser(WorkSheetParser):
    """openpyxl's streaming sheet parser, noting formula cells that have no cached value.

    With ``data_only`` openpyxl gives such a cell as ``None``, indistinguishable from an
    empty cell. A formula whose cached result is the empty string is ``t="str"`` with an empty
    ``<v>`` (Excel); openpyxl writes formulas with an empty ``<v>`` and no type.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uncomputed: list[tuple[int, int]] = []

    def parse_cell(self, element):  # noqa: ANN001, ANN201 - openpyxl's signature
        cell = super().parse_cell(element)
        if cell["value"] is None and element.find(FORMULA_TAG) is not None:
            v = element.find(VALUE_TAG)
            if v is None or (not v.text and element.get("t") != "str"):
                self.uncomputed.append((cell["row"], cell["column"]))
            elif element.get("t") == "str":
                cell["value"] = ""
        return cell


def _stream_sheet(reader: Any, target: str, label: str, limits: Limits, extra_rows: int
                  ) -> list[list[Any]]:
    try:
        with reader.archive.open(target) as src:
            return _sheet_rows(reader, src, target, label, limits, extra_rows)
    except InvalidInput:
        raise
    except DefusedXmlException as exc:
        log.warning("%s: sheet XML declares entities: %r", label, exc)
        raise ValidationFailed(_l("XLSX 文件含有 XML 实体定义，已拒绝：%(file)s 的工作表声明了 XML "
                                  "实体，电子表格软件从不这样写", file=label)) from None
    except Exception as exc:  # noqa: BLE001 - a broken sheet is the file's fault
        log.warning("%s: cannot parse the first sheet: %r", label, exc)
        raise _unreadable(label, _l("第一个工作表已损坏")) from None


def _sheet_rows(reader: Any, src: Any, target: str, label: str, limits: Limits,
                extra_rows: int) -> list[list[Any]]:
    sheet_limit = limits.max_rows + extra_rows if limits.max_rows else None
    dims = _dimension(reader, target)
    if dims is not None:  # the sheet declares its extent: judge it before reading a row
        _min_col, min_row, max_col, max_row = dims
        if sheet_limit and max_row > sheet_limit + BLANK_TAIL:
            raise _sheet_too_long(label, max_row, extra_rows, limits, declared=True)
        if limits.max_columns and max_col > limits.max_columns:
            raise too_wide(label, min_row, max_col, limits)
    if sheet_limit:  # a dimension saying small may lie or be absent: count the row tags
        with reader.archive.open(target) as scan:
            counted = _count_tags(scan, b"row", _PREFIXED_ROW, sheet_limit + BLANK_TAIL)
        if counted > sheet_limit + BLANK_TAIL:
            raise _sheet_too_long(label, counted, extra_rows, limits, declared=False)
    if limits.max_columns:  # a 16,384-cell row takes openpyxl 0.2 s to parse: count first
        with reader.archive.open(target) as scan:
            _check_first_rows_width(scan, label, limits)
    wb = reader.wb
    # the arguments openpyxl's own ReadOnlyWorksheet passes (private workbook attributes)
    parser = _SheetParser(src, reader.shared_strings, data_only=True, epoch=wb.epoch,
                          date_formats=wb._date_formats, timedelta_formats=wb._timedelta_formats)
    rows: list[list[Any]] = []
    cells = 0
    last = 0  # index past the last non-empty row
    for idx, parsed in parser.parse():
        if sheet_limit and idx > sheet_limit + BLANK_TAIL:
            raise _sheet_too_long(label, idx, extra_rows, limits, declared=False)
        values = [(c["column"], c["value"]) for c in parsed
                  if c["value"] is not None and c["value"] != ""]
        if not values:
            continue
        if sheet_limit and idx > sheet_limit:
            raise _sheet_too_long(label, idx, extra_rows, limits, declared=False)
        width = max(col for col, _ in values)
        if limits.max_columns and width > limits.max_columns:
            raise too_wide(label, idx, width, limits)
        cells += len(values)
        if limits.max_cells and cells > limits.max_cells:
            raise ValidationFailed(_l("文件单元格过多：%(file)s 到第 %(row)s 行已超过 %(max)s 个非空单元格；"
                                      "请拆分后再导入", file=label, row=format(idx, ","),
                                      max=format(limits.max_cells, ",")))
        while len(rows) < idx - 1:
            rows.append([])
        row: list[Any] = [None] * width
        for col, value in values:
            row[col - 1] = value
        rows.append(row)
        last = len(rows)
    del rows[last:]
    if parser.uncomputed:
        raise _uncomputed(label, parser.uncomputed)
    return rows


#: Bytes at the start of a sheet whose rows are measured by a byte scan before parsing.
_WIDTH_SCAN = 4 << 20
_ROW_END = re.compile(rb"</(?:[^\s<>/!?:=\"']+:)?row>")
_PREFIXED_CELL = re.compile(rb"<[^\s<>/!?:=\"']+:c[\s/>]")


def _check_first_rows_width(src: Any, label: str, limits: Limits) -> None:
    """Refuse a sheet whose first rows hold more cell elements than ``max_columns``, counted
    as ``<c`` tags (not ``<col``) between row ends in the first ``_WIDTH_SCAN`` bytes, so a
    row far too wide is refused before openpyxl parses it. Empty cells count too, which only
    refuses a sheet that pads a row with hundreds of empty cells."""
    data = src.read(_WIDTH_SCAN)
    start = data.find(b"sheetData")
    for piece in _ROW_END.split(data[max(start, 0):]):
        cells = piece.count(b"<c") - piece.count(b"<col")
        if b":c" in piece:
            cells += len(_PREFIXED_CELL.findall(piece))
        if cells > limits.max_columns:
            raise ValidationFailed(_l("文件列数超过上限：%(file)s 第一个工作表有一行 %(cells)s 个单元格，"
                                      "超过接受的 %(max)s 列", file=label, cells=format(cells, ","),
                                      max=limits.max_columns))


def _sheet_too_long(label: str, sheet_rows: int, extra_rows: int, limits: Limits, *,
                    declared: bool) -> ValidationFailed:
    data_rows = max(sheet_rows - extra_rows, 0)
    values = {"file": label, "rows": f"{sheet_rows:,}", "data": f"{data_rows:,}",
              "max": f"{limits.max_rows:,}", "setting": limits.rows_named}
    if declared:
        return ValidationFailed(_l("文件行数超过上限：%(file)s 的工作表声明了 %(rows)s 行（约 %(data)s "
                                   "行数据），超过接受的 %(max)s 行（%(setting)s）；请拆分后再导入",
                                   **values))
    return ValidationFailed(_l("文件行数超过上限：%(file)s 的工作表至少有 %(rows)s 行（约 %(data)s "
                               "行数据），超过接受的 %(max)s 行（%(setting)s）；请拆分后再导入",
                               **values))


def too_wide(label: str, row: int, columns: int, limits: Limits) -> ValidationFailed:
    last = get_column_letter(min(columns, 16384))
    return ValidationFailed(
        _l("文件列数超过上限：%(file)s 有 %(columns)s 列（到 %(last)s 列），超过接受的 %(max)s 列",
           file=label, columns=format(columns, ","), last=last, max=limits.max_columns),
        details=[Problem(file=label, row=row, column=last, value="",
                         message=_l("超出列数上限（%(max)s 列）", max=limits.max_columns))])


def _uncomputed(label: str, where: list[tuple[int, int]]) -> ValidationFailed:
    details = [Problem(file=label, row=r, column=get_column_letter(c), value="",
                       message=_l("公式没有计算结果；请用 Excel 打开并保存该文件"))
               for r, c in sorted(where)[:MAX_REPORTED]]
    first = details[0]
    return ValidationFailed(
        _l("%(file)s：%(count)s 个公式单元格没有计算结果，未读取任何内容；第一个：第 %(row)s 行 "
           "%(column)s 列；请用 Excel 打开并保存后再导入（或粘贴为数值）", file=label,
           count=len(where), row=first.row, column=first.column), details=details)


# ------------------------------------------------------------------------------ frames
def cell_text(value: Any) -> str:
    """A cell as text, the way ``pd.read_excel(dtype=str)`` gives it (2.0 -> "2")."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def read_frame(path: str | Path, *, name: str | None = None, limits: Limits | None = None,
               skip_initial_space: bool = False) -> pd.DataFrame:
    """A CSV (UTF-8, with or without BOM) or XLSX upload as a frame of text cells; the header
    is the first row, data row ``i`` is sheet/file row ``i + 2``."""
    path = Path(path)
    label = name or path.name
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return _grid_frame(read_grid(path, name=label, limits=limits, extra_rows=1).rows)
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, label, limits or NO_LIMITS, skip_initial_space)
    raise ValidationFailed(_l("文件须为 CSV 或 XLSX：%(file)s", file=label))


def _grid_frame(rows: list[list[Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    header = [cell_text(v).strip() for v in rows[0]]
    width = max(len(header), *(len(r) for r in rows))
    columns: list[str] = []
    for i in range(width):
        h = header[i] if i < len(header) else ""
        h = h or f"Unnamed: {i}"
        base, n = h, 0
        while h in columns:  # repeated headers as pandas names them: a, a.1, a.2
            n += 1
            h = f"{base}.{n}"
        columns.append(h)
    data = [[cell_text(r[i]) if i < len(r) else "" for i in range(width)] for r in rows[1:]]
    return pd.DataFrame(data, columns=columns, dtype=object)


def _read_csv(path: Path, label: str, limits: Limits, skip_initial_space: bool) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise ValidationFailed(_l("文件为空：%(file)s", file=label))
    if limits.max_columns:
        check_csv_header(path, label, limits)
    nrows = limits.max_rows + 1 if limits.max_rows else None
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                         skipinitialspace=skip_initial_space, nrows=nrows)
    except UnicodeDecodeError:
        raise not_utf8(label) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        log.warning("%s: unreadable CSV: %r", label, exc)
        raise ValidationFailed(_l("无法读取此 CSV 文件：%(file)s（请检查引号，以及每行的列数是否与表头"
                                  "一致）", file=label)) from None
    if limits.max_columns and len(df.columns) > limits.max_columns:
        raise too_wide(label, 1, len(df.columns), limits)
    if limits.max_cells and df.size > limits.max_cells:
        raise ValidationFailed(_l("文件单元格过多：%(file)s 超过 %(max)s 个单元格；请拆分后再导入",
                                  file=label, max=format(limits.max_cells, ",")))
    if nrows is not None and len(df) >= nrows:
        raise too_many_rows(label, _count_csv_rows(path), limits)
    return df


def check_csv_header(path: Path, label: str, limits: Limits) -> None:
    """The header's field count, from at most ``MAX_HEADER_BYTES`` parsed with the ``csv``
    module (pandas' own header handling costs the square of the width: 100,000 columns took
    106 s). Blank lines before it are skipped, as pandas does; a header not ended within the
    bound is refused."""
    with path.open("rb") as f:
        head = f.read(MAX_HEADER_BYTES + 1)
    whole = len(head) <= MAX_HEADER_BYTES
    try:  # a character cut at the bound is left out, a wrong byte is not UTF-8
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head[:MAX_HEADER_BYTES],
                                                                   final=whole)
    except UnicodeDecodeError:
        raise not_utf8(label) from None
    buf = io.StringIO(text, newline="")
    header: list[str] = []
    try:
        for row in csv.reader(buf):
            if row:
                header = row
                break
    except csv.Error:
        return  # pandas reports it with the file's own message
    if not whole and buf.tell() >= len(text):  # the header may go on past the bound
        raise ValidationFailed(
            _l("文件首行（表头）过长：%(file)s 的表头超过 %(kb)s KB（至少 %(columns)s 列），超过"
               "接受的 %(max)s 列；请检查列数与列名", file=label, kb=MAX_HEADER_BYTES // 1024,
               columns=format(len(header), ","), max=limits.max_columns),
            details=[Problem(file=label, row=1, column="", value="", message=_l(
                "表头超过 %(kb)s KB", kb=MAX_HEADER_BYTES // 1024))])
    if limits.max_columns and len(header) > limits.max_columns:
        raise too_wide(label, 1, len(header), limits)


def not_utf8(label: str) -> ValidationFailed:
    return ValidationFailed(_l("文件不是 UTF-8 编码：%(file)s；请另存为“CSV UTF-8”", file=label))


def _count_csv_rows(path: Path) -> int:
    """Data rows of a CSV, counted as a stream (a quoted field may hold newlines)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        return sum(1 for row in reader if row)


__all__ = ["BLANK_TAIL", "MAX_CELLS", "MAX_COLUMNS", "Grid", "Limits", "NO_LIMITS",
           "check_rows", "read_frame", "read_grid", "too_many_rows"]

"""Zipped uploads: the directory is judged before a byte is decompressed.

A zipped Shapefile (layer import, parcel files) and a KMZ (a zipped KML) arrive as zip
archives. Before anything is extracted: the number of entries, every entry's name (no
absolute path, no ``..``, no symlink, no encryption), the unpacked size and the compression
ratio (zip bombs) are checked from the zip's directory. Members are then written under fixed
names (``layer.<ext>``) in a folder of ours, or read into memory with a byte cap that does not
trust the sizes the directory declares, so an entry's own path never chooses where a byte
lands.
"""

from __future__ import annotations

import io
import logging
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from geoapp.domain.errors import InvalidInput
from geoapp.domain.messages import Text as _l

log = logging.getLogger(__name__)

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
MAX_ZIP_ENTRIES = 64
MAX_COMPRESSION_RATIO = 100


def extract_shapefile(path: Path, work: Path, *, label: str = "",
                      max_unpacked_mb: int = 500) -> Path:
    """Check the zip's directory, then extract the one shapefile's parts under fixed names.

    Sizes and names are judged from the directory before anything is decompressed, and
    members are written as ``layer.<ext>`` inside ``work``, so an entry's own path (absolute,
    ``..``) can never choose where a byte lands.
    """
    label = label or path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise InvalidInput(_l("%(file)s：不是可读的 zip 文件", file=label)) from None
    with zf:
        infos = zf.infolist()
        check_zip_directory(infos, label, max_unpacked_mb)
        parts = _shapefile_members(infos, label)
        work.mkdir(parents=True, exist_ok=True)
        for ext, info in parts.items():
            target = work / f"layer{ext}"
            try:
                with zf.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError,
                    RuntimeError, ValueError) as exc:
                log.warning("upload %s: entry %s cannot be extracted: %s", label,
                            info.filename, exc)
                raise InvalidInput(_l("无法解压：%(file)s：条目 %(entry)s 已损坏或使用了不支持的压缩"
                                      "方式", file=label, entry=info.filename)) from None
    return work / "layer.shp"


def check_zip_directory(infos: list[zipfile.ZipInfo], label: str, max_mb: int, *,
                        kmz: bool = False) -> None:
    """Refuse a zip whose directory shows too many entries, a name outside the archive, an
    encrypted entry, a symlink, more than ``max_mb`` unpacked or a zip bomb's ratio."""
    if len(infos) > MAX_ZIP_ENTRIES:
        if kmz:
            raise InvalidInput(_l("%(file)s：KMZ 中有 %(count)s 个条目，最多接受 %(max)s 个",
                                  file=label, count=len(infos), max=MAX_ZIP_ENTRIES))
        raise InvalidInput(_l("%(file)s：zip 中有 %(count)s 个条目，最多接受 %(max)s 个（每次上传一个 "
                              "Shapefile）", file=label, count=len(infos), max=MAX_ZIP_ENTRIES))
    for info in infos:
        name = info.filename.replace("\\", "/")
        pure = PurePosixPath(name)
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in pure.parts:
            raise InvalidInput(_l("%(file)s：条目“%(entry)s”指向压缩包之外（绝对路径或“..”），已拒绝"
                                  "上传", file=label, entry=info.filename))
        if info.flag_bits & 0x1:
            raise InvalidInput(_l("压缩包已加密：%(file)s：条目“%(entry)s”设有密码；请上传未加密的 zip",
                                  file=label, entry=info.filename))
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidInput(_l("压缩包含符号链接：%(file)s：条目“%(entry)s”是链接；请压缩真实文件",
                                  file=label, entry=info.filename))
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > max_mb * 1024 * 1024:
        raise InvalidInput(_l("%(file)s：解压后 %(size)s MB，超过接受的 %(max)s MB，已拒绝上传",
                              file=label, size=format(total / 1048576, ".0f"), max=max_mb))
    ratio = total / max(packed, 1)
    if ratio > MAX_COMPRESSION_RATIO:
        if kmz:
            raise InvalidInput(_l("%(file)s：压缩比 %(ratio)s 比 1，超过任何真实的 KMZ（%(max)s 比 1），"
                                  "按 zip 炸弹拒绝", file=label, ratio=format(ratio, ".0f"),
                                  max=MAX_COMPRESSION_RATIO))
        raise InvalidInput(_l("%(file)s：压缩比 %(ratio)s 比 1，超过任何真实的 Shapefile（%(max)s 比 "
                              "1），按 zip 炸弹拒绝", file=label, ratio=format(ratio, ".0f"),
                              max=MAX_COMPRESSION_RATIO))


def _shapefile_members(infos: list[zipfile.ZipInfo], label: str) -> dict[str, zipfile.ZipInfo]:
    files = [i for i in infos if not i.is_dir() and "__MACOSX" not in i.filename
             and not PurePosixPath(i.filename).name.startswith(".")]
    shps = [i for i in files if i.filename.lower().endswith(".shp")]
    if len(shps) != 1:
        raise InvalidInput(_l("%(file)s：zip 中须有且只有一个 .shp 文件，这里有 %(count)s 个%(names)s",
                              file=label, count=len(shps), names=(
                                  f"（{', '.join(i.filename for i in shps)}）" if shps else "")))
    stem = shps[0].filename[:-4].lower()
    parts = {}
    for info in files:
        low = info.filename.lower()
        ext = low[low.rfind("."):] if "." in low else ""
        if ext in SHAPEFILE_PARTS and low[:-len(ext)] == stem:
            parts[ext] = info
    missing = [e for e in (".shp", ".shx", ".dbf") if e not in parts]
    if missing:
        raise InvalidInput(_l("%(file)s：Shapefile 缺少 %(parts)s；请把所有部分（.shp、.shx、.dbf、"
                              ".prj、.cpg）一起压缩", file=label, parts=", ".join(missing)))
    return parts


def detect_dbf_encoding(dbf: Path, *, encoding_field: bool = True) -> str:
    """UTF-8 when the records decode as UTF-8, else GB18030 (a superset of GBK and GB2312).

    Chinese desktop GIS writes GBK without a .cpg; read as Latin-1 (GDAL's default) the
    names turn to mojibake, silently. Neither: refused, pointing to the form's encoding
    field when there is one (``encoding_field``), else to a .cpg file.
    """
    data = dbf.read_bytes()
    header = int.from_bytes(data[8:10], "little") if len(data) >= 10 else 0
    records = data[header:]
    try:
        records.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        records.decode("gb18030")
    except UnicodeDecodeError:
        if not encoding_field:
            raise InvalidInput(_l(".dbf 中的文字既不是 UTF-8 也不是 GBK；请在 zip 中加上与 .shp 同名的 .cpg "
                                  "文件，写明文字的编码（如 BIG5）")) from None
        raise InvalidInput(_l(".dbf 中的文字既不是 UTF-8 也不是 GBK；请在编码栏写明其编码（如 big5），"
                              "或加上 .cpg 文件")) from None
    return "GB18030"


def read_kmz_documents(source: Path | bytes, *, label: str,
                       max_bytes: int) -> list[tuple[str, bytes]]:
    """Every KML document of a KMZ as (entry name, bytes): ``doc.kml`` at the root first (the
    KML specification's main document), then the other ``.kml`` entries in archive order,
    read into memory after the directory has been judged.

    At most ``max_bytes`` are read in all, whatever the directory declares; other entries
    (images, models) are never decompressed.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError):
        raise InvalidInput(_l("%(file)s：不是可读的 zip 文件", file=label)) from None
    out: list[tuple[str, bytes]] = []
    total = 0
    with zf:
        infos = zf.infolist()
        check_zip_directory(infos, label, max(1, max_bytes // (1024 * 1024)), kmz=True)
        docs = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(".kml")
                and "__MACOSX" not in i.filename]
        if not docs:
            raise InvalidInput(_l("%(file)s：KMZ 中没有 .kml 文档", file=label))
        docs.sort(key=lambda i: i.filename.lower() != "doc.kml")  # stable: archive order
        for info in docs:
            try:
                with zf.open(info) as src:
                    data = src.read(max_bytes - total + 1)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError,
                    RuntimeError, ValueError) as exc:
                log.warning("upload %s: entry %s cannot be extracted: %s", label,
                            info.filename, exc)
                raise InvalidInput(_l("无法解压：%(file)s：条目 %(entry)s 已损坏或使用了不支持的压缩"
                                      "方式", file=label, entry=info.filename)) from None
            total += len(data)
            if total > max_bytes:
                raise InvalidInput(_l("%(file)s：解压后 %(size)s MB，超过接受的 %(max)s MB，已拒绝上传",
                                      file=label, size=format(total / 1048576, ".0f"),
                                      max=max_bytes // 1048576))
            out.append((info.filename, data))
    return out


__all__ = ["MAX_COMPRESSION_RATIO", "MAX_ZIP_ENTRIES", "SHAPEFILE_PARTS", "check_zip_directory",
           "detect_dbf_encoding", "extract_shapefile", "read_kmz_documents"]

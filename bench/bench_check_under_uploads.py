"""The inspector's check while hostile and heavy uploads run: does /api/check stay fast?

Starts `geoapp serve --prod` (granian, 2 worker processes by default) on a free loopback
port with a throw-away instance, warms every worker's rule engine, then measures
GET /api/check with wrk (16 keep-alive clients) twice in the same run: alone, and while four
Python threads keep uploading hostile files to POST /api/flag — an XLSX row bomb (1,048,000
rows in about 150 KB), a 16,384-column XLSX, a GDAL VRT disguised as GeoJSON — and, with
``--files all``, also a genuine 20,000-row CSV to flag. Prints p50/p99 of both phases, their ratio, and what the uploads
got back (status counts). Loopback only; bounded in time; stops the server itself.

    .venv/bin/python bench/bench_check_under_uploads.py [--seconds 15] [--workers 2]
        [--uploaders 4] [--runs 3] [--files hostile|all]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import io
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_check_http import (  # noqa: E402
    free_port,
    logged_in_cookie,
    run_wrk,
    start_server,
    warm_up,
)

BOUNDARY = "geoapp-bench-boundary"

_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
       'package/2006/content-types"><Default Extension="rels" ContentType="application/'
       'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
       '"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
       'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
       '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
       'officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
         'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
         'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target='
         '"xl/workbook.xml"/></Relationships>')
_WB = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
       'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
       'relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>'
       '</workbook>')
_WB_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
            '"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>')


def _xlsx(sheet_rows) -> bytes:
    """A minimal XLSX whose sheet XML is streamed from ``sheet_rows`` (strings)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CT)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WB)
        zf.writestr("xl/_rels/workbook.xml.rels", _WB_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w") as f:
            f.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
                    b'openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            for row in sheet_rows:
                f.write(row.encode())
            f.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def row_bomb(rows: int = 1_048_000) -> bytes:
    """Identical rows without row numbers (valid SpreadsheetML): about 150 KB zipped."""
    head = '<row><c t="inlineStr"><is><t>lon</t></is></c>' \
           '<c t="inlineStr"><is><t>lat</t></is></c></row>'
    return _xlsx([head] + ["<row><c><v>113.2</v></c><c><v>35.2</v></c></row>"] * (rows - 1))


def wide_sheet(cols: int = 16_384) -> bytes:
    cells = "".join(f'<c r="{_col(i)}1"><v>{i}</v></c>' for i in range(cols))
    return _xlsx([f'<row r="1">{cells}</row>'])


def _col(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


VRT = (b'<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>/etc/passwd</SrcDataSource>'
       b'</OGRVRTLayer></OGRVRTDataSource>')


def genuine_csv(rows: int = 20_000) -> bytes:
    rnd = random.Random(7)
    lines = ["id,name,lon,lat,site_type"] + [
        f"S{i},场{i},{rnd.uniform(112.7, 113.6):.6f},{rnd.uniform(34.85, 35.45):.6f},"
        f"{rnd.choice(['livestock_farm', 'enterprise'])}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def multipart(data: bytes, filename: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename="
            f"\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + \
        data + f"\r\n--{BOUNDARY}--\r\n".encode()


def csrf_for(port: int, cookie: str) -> str:
    import re

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/check", headers={"Cookie": cookie})
    body = c.getresponse().read().decode()
    return re.search(r'name="csrf-token" content="([^"]+)"', body).group(1)


def uploader(port: int, cookie: str, token: str, files: list[tuple[bytes, str]],
             stop: threading.Event, out: collections.Counter, seed: int) -> None:
    rnd = random.Random(seed)
    while not stop.is_set():
        data, name = rnd.choice(files)
        body = multipart(data, name)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("POST", "/api/flag", body=body, headers={
                "Cookie": cookie, "X-CSRFToken": token,
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            r = c.getresponse()
            r.read()
            out[f"{name} {r.status}"] += 1
            if r.status == 503:
                time.sleep(float(r.getheader("Retry-After") or 1) / 15)
        except OSError as exc:
            out[f"{name} {type(exc).__name__}"] += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--uploaders", type=int, default=4)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", choices=("hostile", "all"), default="hostile",
                    help="hostile: bomb, wide sheet, VRT; all: also a genuine 20,000-row CSV")
    ap.add_argument("--only", default=None, help="upload only the file of this name, "
                    "e.g. vrt.geojson")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (Debian package wrk)")
    t = time.perf_counter()
    files = [(row_bomb(), "bomb.xlsx"), (wide_sheet(), "wide.xlsx"), (VRT, "vrt.geojson")]
    if args.files == "all":
        files.append((genuine_csv(), "sites.csv"))
    if args.only:
        files = [f for f in files if f[1] == args.only]
    print("upload files: " + ", ".join(f"{n} {len(d) / 1024:.0f} KB" for d, n in files) +
          f" (built in {time.perf_counter() - t:.1f} s)")
    inst = Path(tempfile.mkdtemp(prefix="geoapp-bench-"))
    port = free_port()
    proc = start_server(inst, port, None, args.workers)
    alone, loaded = [], []
    counts: collections.Counter = collections.Counter()
    try:
        cookie = logged_in_cookie(port)
        warm_up(port, cookie)
        token = csrf_for(port, cookie)
        for _ in range(args.runs):
            alone.append(run_wrk(port, cookie, args.clients, args.seconds))
            stop = threading.Event()
            threads = [threading.Thread(target=uploader, args=(port, cookie, token, files, stop,
                                                               counts, i))
                       for i in range(args.uploaders)]
            for th in threads:
                th.start()
            time.sleep(1.0)  # the uploads are under way before the measurement starts
            loaded.append(run_wrk(port, cookie, args.clients, args.seconds))
            stop.set()
            for th in threads:
                th.join(timeout=180)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(inst, ignore_errors=True)

    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    print(f"GET /api/check, granian {args.workers} processes, {args.clients} wrk clients, "
          f"{args.runs} runs of {args.seconds} s per phase; load average "
          f"{os.getloadavg()[0]:.1f}")
    for label, rs in (("alone", alone), (f"with {args.uploaders} uploaders", loaded)):
        each = ", ".join(f"{r['p99']:.1f}" for r in rs)
        print(f"  {label:16s} p50 {med(rs, 'p50'):6.2f} ms  p99 {med(rs, 'p99'):6.2f} ms  "
              f"({each})  {med(rs, 'rps'):.0f} req/s  "
              f"errors {sum(r['errors'] for r in rs)}")
    print(f"  p99 ratio loaded/alone (median of runs): "
          f"{statistics.median(b['p99'] / a['p99'] for a, b in zip(alone, loaded, strict=True)):.2f}")
    print("  uploads answered: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()

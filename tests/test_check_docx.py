"""The check sheet as a Word document (/inspections/<id>/sheet.docx): the official layout
read back with python-docx, the serial and record numbers, a hit's distance and basis, the
photo table, and the same access rule as the record's print page (docs/documents.md)."""

from __future__ import annotations

import io

import docx
import pytest
from test_documents import ISSUER, assert_official
from test_photos_web import _files, _last_inspection, _photo_rows, _record, _site_point

from webutil import login

pytestmark = pytest.mark.backends("gpkg")

SITE = "E0001"


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app()


@pytest.fixture(scope="module")
def recorded(app):
    """A site inspection with three photos and a point inspection (an inspector's)."""
    c = app.test_client()
    token = login(c, "inspector")
    r = _record(c, token, {"site": SITE, "notes": "现场检查 DOCX"}, _files(app))
    assert r.status_code == 302
    site_rec = _last_inspection(app)[0]
    lon, lat = _site_point(app, "E0002")
    r = _record(c, token, {"lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "crs": "wgs84"}, [])
    assert r.status_code == 302
    return {"site": site_rec, "point": _last_inspection(app)[0],
            "photos": _photo_rows(app, site_rec)}


def _sheet(app, client, iid, tmp_path):
    r = client.get(f"/inspections/{iid}/sheet.docx")
    assert r.status_code == 200, r.status_code
    assert r.mimetype.endswith("wordprocessingml.document")
    assert "attachment" in r.headers["Content-Disposition"]
    path = tmp_path / f"sheet-{iid}.docx"
    path.write_bytes(r.data)
    return path


def test_the_sheet_in_the_official_layout(app, recorded, tmp_path):
    c = app.test_client()
    login(c, "viewer")
    iid = recorded["site"]
    rec = app.extensions["geoapp"].repo.inspection(iid)
    path = _sheet(app, c, iid, tmp_path)
    html = c.get(f"/inspections/{iid}/print").get_data(as_text=True)
    local = html.split("记录时间")[1][1:17]  # 2026-12-03 10:15
    y, m, d = (int(v) for v in local[:10].split("-"))
    doc = assert_official(path, title="焦作市现场核查记录单", date_text=f"{y}年{m}月{d}日")
    texts = [p.text for p in doc.paragraphs]
    assert texts[1] == f"焦环核〔{y}〕{iid:04d}号"
    assert f"记录编号：{iid}" in texts and "检查人：inspector" in texts
    assert f"记录时间：{local}" in texts
    assert any(t.startswith(f"企业/点位：{SITE}") for t in texts)
    assert f"WGS84 坐标：{float(rec['lon']):.6f}, {float(rec['lat']):.6f}" in texts
    assert "现场检查 DOCX" in texts
    # Every hit with its distance in metres and its legal basis.
    hits = doc.tables[0]
    assert [c.text for c in hits.rows[0].cells] == ["规则", "要素", "距离（米）", "依据", "处置"]
    assert len(hits.rows) == len(rec["hits"]) + 1 and rec["hits"]
    h = next(h for h in rec["hits"] if h.get("test") == "within_distance")
    row = next(r for r in hits.rows[1:] if r.cells[0].text == h["title"]["zh"])
    assert row.cells[2].text.startswith(f"{h['distance_m']:.1f}")
    assert row.cells[3].text.startswith(h["basis"])
    # The photos: thumbnail, file name, EXIF time, position mark, SHA-256.
    photos = doc.tables[-1]
    assert [c.text for c in photos.rows[0].cells] == ["照片", "文件名", "拍摄时间", "位置标记",
                                                       "SHA-256"]
    assert len(photos.rows) == 4
    first = photos.rows[1].cells
    pid, name, sha, *_ = recorded["photos"][0]
    assert first[1].text == name and first[4].text == sha
    assert first[3].text == "位置相符 · 距核查点 50 米"
    assert photos.rows[2].cells[3].text == "位置不符 · 距核查点 500 米"
    assert photos.rows[3].cells[3].text == "无GPS位置" and photos.rows[3].cells[2].text == "—"
    assert first[0]._tc.xml.count("<pic:pic") == 1
    assert len(doc.inline_shapes) == 3
    assert doc.core_properties.title.endswith(texts[1])
    # The same record gives the same document.
    again = docx.Document(io.BytesIO(c.get(f"/inspections/{iid}/sheet.docx").data))
    assert [p.text for p in again.paragraphs] == texts and texts[-2] == ISSUER


def test_a_point_inspection_names_the_entered_point(app, recorded, tmp_path):
    c = app.test_client()
    login(c, "inspector")
    doc = docx.Document(str(_sheet(app, c, recorded["point"], tmp_path)))
    texts = [p.text for p in doc.paragraphs]
    assert any(t.startswith("输入坐标：") and "WGS84" in t for t in texts), texts[:12]
    assert "（无）" in texts  # no photos


def test_who_may_download_it(app, recorded):
    site, point = recorded["site"], recorded["point"]
    anon = app.test_client()
    r = anon.get(f"/inspections/{site}/sheet.docx")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    viewer = app.test_client()
    login(viewer, "viewer")
    assert viewer.get(f"/inspections/{site}/sheet.docx").status_code == 200
    # The same rule as the print page: a point inspection only for inspectors.
    assert viewer.get(f"/inspections/{point}/print").status_code == 404
    assert viewer.get(f"/inspections/{point}/sheet.docx").status_code == 404
    assert viewer.get("/inspections/99999999/sheet.docx").status_code == 404
    inspector = app.test_client()
    login(inspector, "inspector")
    assert inspector.get(f"/inspections/{point}/sheet.docx").status_code == 200


def test_the_site_page_links_the_sheet(app, recorded):
    c = app.test_client()
    login(c, "viewer")
    html = c.get(f"/sites/{SITE}").get_data(as_text=True)
    assert f'href="/inspections/{recorded["site"]}/sheet.docx"' in html
    assert "下载 Word 记录单" in html

"""/ledger: upload good and bad workbooks, download the ledger and every layer format."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import unquote

import pyogrio
import pytest
from openpyxl import load_workbook

from webutil import login


@pytest.fixture
def app(make_app):
    return make_app(INTRANET=True, TILES="none")


@pytest.fixture
def client(app):
    c = app.test_client()
    c.token = login(c, "planner")
    return c


def _filename(resp) -> str:
    cd = resp.headers["Content-Disposition"]
    assert cd.startswith("attachment;") and 'filename="' in cd
    return unquote(cd.split("filename*=UTF-8''")[1])


def _exported(client, tmp_path, **args):
    r = client.get("/ledger/export", query_string=args)
    assert r.status_code == 200
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(r.data)
    return r, path


def test_ledger_page_needs_the_planner_role(app):
    c = app.test_client()
    login(c, "viewer")
    assert c.get("/ledger").status_code == 403
    assert c.get("/ledger/export").status_code == 403


def test_district_export_has_a_chinese_file_name_and_only_that_district(client, tmp_path):
    r, path = _exported(client, tmp_path, district="温县", hits="1")
    assert _filename(r) == "焦作市温县企业整治工作台账.xlsx"
    ws = load_workbook(path).active
    districts = {ws.cell(row=i, column=2).value for i in range(5, ws.max_row + 1)} - {None}
    assert districts == {"温县"}
    headers = [c.value for c in ws[4]] + [c.value for c in ws[3]]
    assert "命中规则数" in headers


def test_good_upload_updates_and_reports_counts(app, client, tmp_path):
    _r, path = _exported(client, tmp_path)
    wb = load_workbook(path)
    ws = wb.active
    ws.cell(row=5, column=18).value = "网页导入的进展"
    wb.save(path)
    r = client.post("/ledger/import", data={"csrf_token": client.token,
                                            "file": (path.open("rb"), "台账.xlsx")},
                    content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)[-2000:]
    html = r.get_data(as_text=True)
    assert 'id="ledger-result"' in html and "新增 0 家" in html
    core = app.extensions["geoapp"]
    progress = core.repo.sites("enterprise", columns=["progress"])["progress"].tolist()
    assert "网页导入的进展" in progress


def test_bad_upload_lists_row_column_reason_and_changes_nothing(app, client, tmp_path):
    core = app.extensions["geoapp"]
    before = core.repo.last_change_id(only=("site",))
    _r, path = _exported(client, tmp_path)
    wb = load_workbook(path)
    ws = wb.active
    ws.cell(row=5, column=18).value = "不应保存"
    ws.cell(row=6, column=5).value = "91410800MA00000000"
    ws.cell(row=7, column=9).value = "也许"
    wb.save(path)
    r = client.post("/ledger/import", data={"csrf_token": client.token,
                                            "file": (path.open("rb"), "bad.xlsx")},
                    content_type="multipart/form-data")
    assert r.status_code == 400
    table = r.get_data(as_text=True).split('id="ledger-problems"')[1].split("</table>")[0]
    assert "91410800MA00000000" in table and "也许" in table
    assert "<td class=\"num\">6</td>" in table and "<td class=\"num\">7</td>" in table
    assert core.repo.last_change_id(only=("site",)) == before
    progress = core.repo.sites("enterprise", columns=["progress"])["progress"].tolist()
    assert "不应保存" not in progress


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "kml", "shp"])
def test_layer_download_opens_with_pyogrio_and_keeps_chinese_names(client, tmp_path, fmt):
    r = client.get(f"/ledger/layers/enterprises.{fmt}")
    assert r.status_code == 200
    name = _filename(r)
    assert name.startswith("焦作市工业企业")
    path = tmp_path / name
    path.write_bytes(r.data)
    if fmt == "shp":
        with zipfile.ZipFile(io.BytesIO(r.data)) as z:
            assert any(n.endswith(".cpg") for n in z.namelist())
        path = f"/vsizip/{path}"
    df = pyogrio.read_dataframe(path)
    assert len(df) == 100
    names = df["name"] if "name" in df.columns else df["Name"]
    assert any("有限公司" in str(n) for n in names)


def test_unknown_layer_or_format_is_404(client):
    assert client.get("/ledger/layers/nothing.gpkg").status_code == 404
    assert client.get("/ledger/layers/rivers.pdf").status_code == 404


def test_unknown_district_is_400(client):
    assert client.get("/ledger/export?district=火星区").status_code == 400


def test_export_with_deadlines_adds_the_status_and_reads_back(app, client, tmp_path):
    r, path = _exported(client, tmp_path, deadlines="1", as_of="2026-12-03")
    ws = load_workbook(path).active
    headers = [c.value for c in ws[4]] + [c.value for c in ws[3]]
    assert "时限状态" in headers and "逾期天数" in headers
    col = [c.value for c in ws[4]].index("时限状态") + 1 if "时限状态" in [
        c.value for c in ws[4]] else [c.value for c in ws[3]].index("时限状态") + 1
    statuses = [ws.cell(row=i, column=col).value for i in range(5, ws.max_row + 1)]
    assert statuses.count("逾期") == 37  # the embedded firms past their 整改完成时限
    again = client.post("/ledger/import", data={"csrf_token": client.token,
                                                "file": (path.open("rb"), "台账.xlsx")},
                        content_type="multipart/form-data")
    assert again.status_code == 200 and "新增 0 家" in again.get_data(as_text=True)
    assert client.get("/ledger/export?deadlines=1&as_of=someday").status_code == 400

"""Batch flagging gives every row the single check's verdict, in the user's language.

One small file of sites on the embedded Jiaozuo data: a point in Beijing (超出本市数据范围),
an unknown site in the urban core (待核实, naming site_type), an enterprise burning coal in a
禁煤区 (不符合 through coal_ban_zone, read from a ``fuel`` column no code names), the same
enterprise without a fuel value (待核实), a livestock farm by a river (不符合) and a clean
enterprise (符合). It goes through ``services.flagfile``, ``POST /api/flag`` (CSV, XLSX) and
``geoapp flag`` (CSV, GeoJSON, GeoPackage), in Chinese and English; each row's verdict and
hits are compared with the single check of the same point and attributes.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.services import checks
from geoapp.services.flagfile import (
    OUTPUT_HEADERS,
    OUTPUT_KEYS,
    FlagOptions,
    flag_file,
    row_runs,
    run_sets,
    verdict_labels,
)

from webutil import login, river_point

ZH = ["结论", "触发规则", "规则编号", "命中数", "最近距离_m", "待核实规则", "依据", "处理措施", "错误原因",
      "hits", "conditional_hits"]
EN = ["verdict", "rules", "rule_ids", "hit_count", "min_distance_m", "conditional_rules", "basis",
      "action", "error", "hits", "conditional_hits"]
HEADERS = {"zh": ZH, "en": EN}
#: Expected verdict (API code) of each row of ``_sites`` by name.
EXPECTED = {"北京": "out_of_area", "城区无类型": "needs_info", "禁煤区燃煤": "fail",
            "禁煤区无燃料": "needs_info", "河边养殖场": "fail", "干净": "pass"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def client(offline_app):
    c = offline_app.test_client()
    c.csrf = login(c, "inspector")
    return c


def _river_point(core, metres: float) -> tuple[float, float]:
    lon, lat = river_point(core, metres)
    return round(lon, 6), round(lat, 6)


@pytest.fixture(scope="module")
def sites(core) -> pd.DataFrame:
    """The six rows (text cells, as a CSV holds them); ``fuel`` is a column no code names."""
    farm = _river_point(core, 150)
    return pd.DataFrame({
        "name": ["北京", "城区无类型", "禁煤区燃煤", "禁煤区无燃料", "河边养殖场", "干净"],
        "lon": ["116.40", "113.2418", "112.96646", "112.96646", str(farm[0]), "112.97316"],
        "lat": ["39.90", "35.2155", "35.06353", "35.06353", str(farm[1]), "35.16586"],
        "site_type": ["enterprise", "", "enterprise", "enterprise", "畜禽养殖场", "enterprise"],
        "industry": ["食品", "", "食品", "食品", "", "食品"],
        "fuel": ["", "", "燃煤", "", "", "天然气"],
    })


def _read_csv(data) -> pd.DataFrame:
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    return pd.read_csv(src, dtype=str, keep_default_na=False)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A typed frame (GeoJSON/GeoPackage) as CSV text cells: missing values empty."""
    def text(x) -> str:
        if x is None or (isinstance(x, float) and np.isnan(x)):
            return ""
        if isinstance(x, list):  # GeoJSON: GDAL writes JSON text as a native JSON array
            return json.dumps(x, ensure_ascii=False)
        return str(int(x)) if isinstance(x, (int, np.integer)) else str(x)
    return pd.DataFrame({c: [text(x) for x in frame[c].tolist()] for c in frame.columns})


def _by_name(out: pd.DataFrame) -> dict[str, pd.Series]:
    return {r["name"]: r for _, r in out.iterrows()}


def _flag(core, tmp_path, frame: pd.DataFrame, lang: str = "zh", **opts) -> pd.DataFrame:
    src, dst = tmp_path / "in.csv", tmp_path / f"out-{lang}.csv"
    frame.to_csv(src, index=False)
    flag_file(core, src, dst, FlagOptions(lang=lang, **opts))
    return _read_csv(dst)


def _assert_rows(out: pd.DataFrame, lang: str) -> None:
    """The six rows' verdicts, rules and texts as the brief demands them."""
    h = dict(zip(OUTPUT_KEYS, HEADERS[lang], strict=True))
    labels = verdict_labels(lang)
    rows = _by_name(out)
    assert {n: r[h["verdict"]] for n, r in rows.items()} == {
        n: labels[v] for n, v in EXPECTED.items()}
    assert rows["禁煤区燃煤"][h["rule_ids"]] == "coal_ban_zone"
    assert rows["禁煤区燃煤"][h["rules"]] == ("禁煤区内燃煤设施" if lang == "zh"
                                          else "Coal use inside a coal-ban zone")
    assert "大气污染防治法》第三十八条" in rows["禁煤区燃煤"][h["basis"]]
    assert "责令停止燃用煤炭" in rows["禁煤区燃煤"][h["action"]]
    assert rows["河边养殖场"][h["rule_ids"]] == "riverside_livestock"
    assert 140 <= float(rows["河边养殖场"][h["min_distance_m"]]) <= 160
    assert rows["河边养殖场"][h["hit_count"]] == "1"
    # needs_info names the missing attribute (the column to fill in) and the condition
    core_row = rows["城区无类型"][h["conditional_rules"]]
    assert ("缺少 site_type" if lang == "zh" else "missing site_type") in core_row
    assert ("若为工业企业" if lang == "zh" else "If it is a industrial enterprise") in core_row
    coal_row = rows["禁煤区无燃料"][h["conditional_rules"]]
    assert coal_row == ("禁煤区内燃煤设施（若 fuel 为 coal/燃煤/煤；缺少 fuel）" if lang == "zh" else
                        "Coal use inside a coal-ban zone (If fuel is coal/燃煤/煤; missing fuel)")
    cond = json.loads(rows["禁煤区无燃料"]["conditional_hits"])
    assert [(c["rule_id"], c["missing"]) for c in cond] == [("coal_ban_zone", ["fuel"])]
    for name in ("北京", "干净"):
        assert rows[name][h["rules"]] == rows[name][h["basis"]] == ""
        assert rows[name]["hits"] == "[]" and rows[name][h["hit_count"]] == "0"
    assert (out[h["error"]] == "").all()


# -- headers ---------------------------------------------------------------------------------
def test_headers_are_the_documented_sets_in_both_languages():
    assert list(OUTPUT_HEADERS["zh"]) == ZH and list(OUTPUT_HEADERS["en"]) == EN
    assert verdict_labels("zh") == {"fail": "不符合", "pass": "符合", "needs_info": "待核实",
                                    "out_of_area": "超出本市数据范围", "error": "坐标错误"}
    assert verdict_labels("en") == {v: v for v in ("fail", "pass", "needs_info", "out_of_area",
                                                    "error")}
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for zh, en in zip(ZH, EN, strict=True):
        assert f"`{zh}`" in api and f"`{en}`" in api
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "--lang" in next(line for line in readme.splitlines()
                            if line.startswith("| `geoapp flag INPUT"))


# -- the service --------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_csv_rows_get_the_four_verdicts_with_rules_basis_and_action(core, sites, tmp_path,
                                                                     lang):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    sites.to_csv(src, index=False)
    summary = flag_file(core, src, dst, FlagOptions(lang=lang))
    out = _read_csv(dst)
    assert list(out.columns) == list(sites.columns) + HEADERS[lang]
    _assert_rows(out, lang)
    assert {k: summary[k] for k in ("rows", "flagged", "passed", "needs_info", "out_of_area",
                                    "bad_rows", "lang")} == {
        "rows": 6, "flagged": 2, "passed": 1, "needs_info": 2, "out_of_area": 1, "bad_rows": 0,
        "lang": lang}


def test_each_batch_verdict_and_hit_equals_the_single_check(core, sites, tmp_path):
    out = _flag(core, tmp_path, sites, "en")
    for _, row in out.iterrows():
        single = checks.check_point(core, row["lon"], row["lat"], site_type=row["site_type"],
                                    industry=row["industry"], attrs={"fuel": row["fuel"]})
        assert row["verdict"] == single.verdict.value, row["name"]
        expected = single.to_dict()
        for column in ("hits", "conditional_hits"):
            got = json.loads(row[column])
            assert len(got) == len(expected[column]), (row["name"], column)
            for g, e in zip(got, expected[column], strict=True):
                assert g.keys() == e.keys()
                assert g.pop("distance_m") == pytest.approx(e.pop("distance_m"), abs=0.11)
                if "sentence" in g:  # the sentence quotes the distance
                    g.pop("sentence"), e.pop("sentence")
                assert g == e, row["name"]
        assert row["rule_ids"] == ";".join(
            r.id for r in checks.engine(core).rules if r.id in {h.rule_id for h in single.hits})


def test_hits_json_matches_api_check_for_the_same_point(core, client, sites, tmp_path):
    rows = _by_name(_flag(core, tmp_path, sites))
    for name in ("河边养殖场", "禁煤区燃煤", "城区无类型"):
        row = rows[name]
        query = {k: row[k] for k in ("lon", "lat", "site_type", "industry", "fuel") if row[k]}
        body = client.get("/api/check", query_string=query).get_json()
        assert body["verdict"] == EXPECTED[name]
        for column in ("hits", "conditional_hits"):
            got = json.loads(row[column])
            assert [h["rule_id"] for h in got] == [h["rule_id"] for h in body[column]]
            for g, e in zip(got, body[column], strict=True):
                assert set(g) == set(e) >= {"rule_id", "title", "feature_id", "feature_name",
                                            "distance_m", "limit_m", "severity", "basis",
                                            "action", "point"}
                assert g["distance_m"] == pytest.approx(e["distance_m"], abs=0.11)
                assert {k: v for k, v in g.items() if k not in ("distance_m", "sentence")} == \
                    {k: v for k, v in e.items() if k not in ("distance_m", "sentence")}


def test_a_file_without_the_fuel_column_gives_needs_info_in_the_coal_ban_zone(core, sites,
                                                                              tmp_path):
    frame = sites.drop(columns=["fuel"])
    rows = _by_name(_flag(core, tmp_path, frame))
    assert rows["禁煤区燃煤"]["结论"] == rows["禁煤区无燃料"]["结论"] == "待核实"
    assert "缺少 fuel" in rows["禁煤区燃煤"]["待核实规则"]
    assert rows["干净"]["结论"] == "符合"  # outside every 禁煤区: fuel cannot matter there
    single = checks.check_point(core, "112.96646", "35.06353", site_type="enterprise",
                                industry="食品")
    assert single.verdict == "needs_info"


def test_a_file_of_coordinates_only_is_flagged_needs_info_where_rules_may_apply(core,
                                                                              tmp_path):
    frame = pd.DataFrame({"lon": ["113.2418", "116.40"], "lat": ["35.2155", "39.90"]})
    out = _flag(core, tmp_path, frame)
    assert out["结论"].tolist() == ["待核实", "超出本市数据范围"]
    assert "缺少 site_type" in out["待核实规则"].iloc[0]


def test_the_missing_type_column_is_named_as_the_user_named_it(core, sites, tmp_path):
    frame = sites.rename(columns={"site_type": "类型"})
    rows = _by_name(_flag(core, tmp_path, frame, type_col="类型"))
    assert rows["城区无类型"]["结论"] == "待核实"
    assert "缺少 类型" in rows["城区无类型"]["待核实规则"]
    assert rows["河边养殖场"]["结论"] == "不符合"


def test_an_input_column_named_like_an_added_one_keeps_its_name(core, sites, tmp_path):
    frame = sites.assign(结论="原有结论", 结论_1="也是原有", hits="mine")
    out = _flag(core, tmp_path, frame)
    assert list(out.columns) == list(frame.columns) + [
        "结论_2", *ZH[1:9], "hits_1", "conditional_hits"]
    assert (out["结论"] == "原有结论").all() and (out["结论_1"] == "也是原有").all()
    assert (out["hits"] == "mine").all()
    rows = _by_name(out)
    assert rows["干净"]["结论_2"] == "符合" and rows["北京"]["结论_2"] == "超出本市数据范围"
    assert json.loads(rows["河边养殖场"]["hits_1"])[0]["rule_id"] == "riverside_livestock"


def test_bad_coordinates_keep_verdict_error_with_the_reason(core, sites, tmp_path):
    frame = pd.concat([sites, pd.DataFrame({"name": ["坏"], "lon": ["200"], "lat": ["35"]})],
                      ignore_index=True).fillna("")
    for lang, word, col, why in (("zh", "坐标错误", "错误原因", "经度"),
                                 ("en", "error", "error", "longitude")):
        out = _flag(core, tmp_path, frame, lang, skip_bad=True)
        bad = _by_name(out)["坏"]
        assert bad[HEADERS[lang][0]] == word and why in bad[col]
        assert bad["hits"] == "[]"


def test_csv_output_neutralises_formulas_and_keeps_text_as_given(core, sites, tmp_path):
    """Arrow writes the CSV: formula-like cells get an apostrophe; quotes, commas, leading
    spaces and line breaks come back as given; the added columns hold the rows' answers."""
    frame = sites.copy()
    frame["note"] = ["two\nlines", "=1+1", "-2", "@x", 'a,"b"', " space"]
    frame.to_csv(tmp_path / "in.csv", index=False)
    for lang in ("zh", "en"):
        flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv", FlagOptions(lang=lang))
        out = _read_csv((tmp_path / "out.csv").read_bytes())
        assert out["note"].tolist() == ["two\nlines", "'=1+1", "'-2", "'@x", 'a,"b"', " space"]
        pd.testing.assert_frame_equal(out[list(sites.columns)], sites)
        _assert_rows(out, lang)


def test_any_partitioning_gives_the_same_file(core, sites, tmp_path):
    """The input is flagged a partition at a time: cut anywhere (one row per partition, two,
    all), through quoted line breaks, blank lines, CRLF line ends and a BOM, the output is
    the same bytes and the summary the same."""
    frame = pd.concat([sites] * 4, ignore_index=True)
    frame["note"] = [f"line {i}\r\nnext, \"quoted\"" if i % 3 == 0 else f"n{i}"
                     for i in range(len(frame))]
    text = frame.to_csv(index=False, lineterminator="\r\n")
    lines = text.split("\r\n")
    text = "\r\n".join(lines[:5] + [""] + lines[5:])  # a blank line inside
    (tmp_path / "in.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    answers = set()
    summaries = []
    for rows in (1, 2, 5, 7, 1000):
        summary = flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv",
                            partition_rows=rows)
        answers.add((tmp_path / "out.csv").read_bytes())
        summaries.append({k: v for k, v in summary.items()})
    assert len(answers) == 1 and all(s == summaries[0] for s in summaries)
    assert summaries[0]["rows"] == len(frame)
    out = _read_csv(answers.pop())
    assert out["note"].tolist() == frame["note"].tolist()
    assert out["name"].tolist() == frame["name"].tolist()


def _flag_bytes(core, tmp_path) -> bytes:
    flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv")
    return (tmp_path / "out.csv").read_bytes()


# -- POST /api/flag --------------------------------------------------------------------------
def _post(client, data: bytes, filename: str, **fields):
    return client.post("/api/flag", data={"file": (io.BytesIO(data), filename), **fields},
                       content_type="multipart/form-data",
                       headers={"X-CSRFToken": client.csrf})


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_api_flag_answers_verdicts_in_the_asked_language(client, sites, fmt, lang):
    if fmt == "csv":
        data = sites.to_csv(index=False).encode()
    else:
        buf = io.BytesIO()
        sites.to_excel(buf, index=False)
        data = buf.getvalue()
    fields = {"lang": "en"} if lang == "en" else {}
    r = _post(client, data, f"sites.{fmt}", **fields)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    if fmt == "csv":
        out = _read_csv(r.data)
    else:
        out = pd.read_excel(io.BytesIO(r.data), dtype=str, keep_default_na=False)
    assert list(out.columns) == list(sites.columns) + HEADERS[lang]
    _assert_rows(out, lang)
    assert {k: r.headers[f"X-Geoapp-{k}"] for k in ("Rows", "Flagged", "Passed", "Needs-Info",
                                                    "Out-Of-Area", "Bad-Rows")} == {
        "Rows": "6", "Flagged": "2", "Passed": "1", "Needs-Info": "2", "Out-Of-Area": "1",
        "Bad-Rows": "0"}


def test_api_flag_takes_lang_from_the_query_and_refuses_an_unknown_one(client, sites):
    data = sites.to_csv(index=False).encode()
    r = client.post("/api/flag?lang=en", data={"file": (io.BytesIO(data), "s.csv")},
                    content_type="multipart/form-data", headers={"X-CSRFToken": client.csrf})
    assert r.status_code == 200 and "verdict" in _read_csv(r.data).columns
    r = _post(client, data, "s.csv", lang="fr")
    assert r.status_code == 400 and "lang" in r.get_json()["message"]


# -- geoapp flag -----------------------------------------------------------------------------
@pytest.fixture
def cli_env(offline_app, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", offline_app.instance_path)
    monkeypatch.setenv("GEOAPP_DATABASE", offline_app.config["DATABASE"])
    for key in ("STORAGE_BACKEND", "DATABASE_URL"):  # the same store on either backend
        monkeypatch.setenv(f"GEOAPP_{key}", offline_app.config[key])


def _write_input(sites: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        sites.to_csv(path, index=False)
        return
    gdf = gpd.GeoDataFrame(sites.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(sites["lon"].astype(float),
                                                       sites["lat"].astype(float)), crs=4326)
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON" if path.suffix == ".geojson" else "GPKG")


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("ext", ["csv", "geojson", "gpkg"])
def test_cli_flag_writes_verdicts_in_the_asked_language(cli_env, sites, tmp_path, ext, lang):
    src, dst = tmp_path / f"sites.{ext}", tmp_path / f"out.{ext}"
    _write_input(sites, src)
    r = CliRunner().invoke(main, ["flag", str(src), "-o", str(dst), "--lang", lang])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["needs_info"], summary["out_of_area"], summary["flagged"]) == (2, 1, 2)
    if ext == "csv":
        out = _read_csv(dst)
    else:
        frame = pyogrio.read_dataframe(dst).drop(columns="geometry")
        if ext == "gpkg":  # the GeoPackage keeps the rule ids as a list (GDAL's string list)
            col = HEADERS[lang][OUTPUT_KEYS.index("rule_ids")]
            assert all(isinstance(v, list) for v in frame[col])
            frame[col] = frame[col].map(";".join)
        out = _as_text(frame)
    inputs = [c for c in sites.columns if ext == "csv" or c not in ("lon", "lat")]
    assert [c for c in out.columns if c not in ("lon", "lat") or ext == "csv"] == \
        inputs + HEADERS[lang]
    _assert_rows(out, lang)


def test_cli_flag_refuses_an_unknown_language(cli_env, sites, tmp_path):
    sites.to_csv(tmp_path / "s.csv", index=False)
    r = CliRunner().invoke(main, ["flag", str(tmp_path / "s.csv"), "-o",
                                  str(tmp_path / "o.csv"), "--lang", "fr"])
    assert r.exit_code == 2 and not (tmp_path / "o.csv").exists()
    assert re.search(r"'fr' is not one of 'zh', 'en'", r.output)


def test_rule_sets_per_row_agree_with_and_without_bit_masks():
    """Per-row sets of rules (or conditions) come from bit masks up to 62 codes, else from
    each row's own set: both give the same sets."""
    rng = np.random.default_rng(3)
    row = np.sort(rng.integers(0, 300, 2000))
    codes = rng.integers(0, 60, 2000)
    starts, ends = row_runs(row)
    masks, sets = run_sets(codes, starts, ends, 62)
    plain, plain_sets = run_sets(codes, starts, ends, 1000)
    expected = [tuple(sorted(set(codes[a:b].tolist()))) for a, b in zip(starts, ends,
                                                                          strict=True)]
    assert [sets[i] for i in masks] == [plain_sets[i] for i in plain] == expected

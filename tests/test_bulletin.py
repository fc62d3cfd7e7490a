"""The monthly bulletin (``omh bulletin``): made from the samples of six member states loaded for
two years (a small warehouse, not the whole demo), in Spanish and English; its PDF has pages that
are not blank, at least four charts and tables; no figure that ``pub_*`` suppresses appears in it;
the mirror section renders from a ``pub_mirror`` view when the warehouse has one; the HTML opens in
a browser from disk with nothing fetched from elsewhere."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import json
import os
import re
import shutil
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from transforms.config import REPO_ROOT, settings
from transforms.ingest.pipeline import ingest_file
from transforms.publish.bulletin import build, latest, parse_period
from transforms.publish.bulletin.labels import SUPPRESSED, number
from transforms.tools.samples import SAMPLES, recent_year, write_samples

SOURCES = (
    "pan_snm_transito_irregular_mensual",  # persons, small corridors suppressed
    "hnd_inm_flujo_irregular",
    "mex_upm_eventos_irregulares",  # events
    "cri_dgme_entradas_extranjeros",
    "gtm_igm_ingresos_nacionalidad",
    "col_salidas_pais_destino",  # CSM
)
PERIOD = dt.date(recent_year(), 6, 1)
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A warehouse with the six members' samples of 2024 and of the last whole year."""
    home = tmp_path_factory.mktemp("bulletin") / "home"
    for year in (2024, recent_year()):
        written = write_samples(home.parent / f"landing-{year}", year)
        for sample, path in zip(SAMPLES, written, strict=True):
            if sample.source_id in SOURCES:
                result = ingest_file(path, sample.source_id, home)
                assert result.status == "loaded", result.reason
    return home


@pytest.fixture(scope="module")
def made(home, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bulletins")
    return {lang: build(PERIOD, lang, out / lang, home) for lang in ("es", "en")}


def _query(home: Path, sql: str, params=None) -> list[dict]:
    from transforms.storage.warehouse import open_for_reading

    wh = open_for_reading(settings(home))
    try:
        cols, rows = wh.query(sql, params)
    finally:
        wh.close()
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _pdf_text(path: Path) -> str:
    """The PDF's text, lines wrapped in a table cell joined again by a space."""
    pdf = pdfium.PdfDocument(str(path))
    return re.sub(r"\s+", " ", " ".join(page.get_textpage().get_text_range() for page in pdf))


def _printed_figures(html: str) -> list[tuple[str, str]]:
    """(reference, text) of every figure the HTML prints."""
    return [
        (htmllib.unescape(ref), htmllib.unescape(txt))
        for ref, txt in re.findall(r'<span class="fig[^"]*" data-ref="([^"]*)">([^<]*)</span>', html)
    ]


# ---------------------------------------------------------------------------- the files


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_pdf_has_pages_charts_and_tables_that_are_not_blank(made, lang):
    b = made[lang]
    assert b.html.is_file() and b.pdf.is_file() and b.manifest.is_file()
    pdf = pdfium.PdfDocument(str(b.pdf))
    assert len(pdf) >= 3
    images = 0
    for page in pdf:
        images += sum(1 for o in page.get_objects(max_depth=5) if o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE)
        pixels = page.render(scale=0.6).to_numpy()[:, :, :3]
        body = pixels[: int(pixels.shape[0] * 0.9)]  # above the footer, which every page has
        ink = (body < 200).any(axis=2).mean()  # share of pixels that are not (nearly) white
        assert ink > 0.001 and body.std() > 3, f"a page of {b.pdf} looks blank ({ink:.4f} ink)"
    assert images >= 4, "at least four charts"
    assert images == b.charts  # each chart is one image, nothing else is
    text = _pdf_text(b.pdf)
    heads = {"es": ("Flujo", "Unidad", "País informante"), "en": ("Flow", "Unit", "Reporter")}[lang]
    assert all(h in text for h in heads), "the tables' headers"
    units = {"es": ("Personas", "Eventos"), "en": ("Persons", "Events")}[lang]
    assert all(u in text for u in units)
    manifest = json.loads(b.manifest.read_text(encoding="utf-8"))
    assert manifest["period"] == f"{PERIOD:%Y-%m}" and manifest["lang"] == lang
    assert len(manifest["charts"]) >= 4


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_headline_prints_the_published_regional_totals_with_their_unit(home, made, lang):
    html = made[lang].html.read_text(encoding="utf-8")
    rows = _query(
        home,
        "SELECT region, flow_type, unit, value FROM pub_regional_totals "
        "WHERE period_type = 'M' AND period_start = ? AND region = 'ALL'",
        [PERIOD],
    )
    assert rows
    printed = dict(_printed_figures(html))
    for r in rows:
        ref = f"pub_regional_totals|ALL|{r['flow_type']}|{r['unit']}|{PERIOD}"
        assert printed[ref] == number(r["value"], lang)
    assert ("events are not persons" if lang == "en" else "eventos no son personas") in html.lower()


# ---------------------------------------------------------------------------- disclosure


@pytest.mark.parametrize("lang", ["es", "en"])
def test_no_figure_that_pub_views_suppress_is_printed(home, made, lang):
    b = made[lang]
    html = b.html.read_text(encoding="utf-8")
    pdf_text = _pdf_text(b.pdf)
    printed = _printed_figures(html)
    assert len(printed) > 40
    views = {
        "pub_regional_totals": "SELECT 'pub_regional_totals|' || region || '|' || flow_type || '|' || unit || '|' "
        "|| CAST(period_start AS VARCHAR) AS ref, value, suppressed FROM pub_regional_totals WHERE period_type = 'M'",
        "pub_flow_by_period": "SELECT 'pub_flow_by_period|' || reporter_iso3 || '|' || flow_type || '|' || unit "
        "|| '|' || CAST(period_start AS VARCHAR) AS ref, value, suppressed FROM pub_flow_by_period "
        "WHERE period_type = 'M'",
        "pub_corridor": "SELECT 'pub_corridor|' || reporter_iso3 || '|' || citizenship_iso3 || '|' || flow_type "
        "|| '|' || unit || '|' || CAST(period_start AS VARCHAR) AS ref, value, suppressed FROM pub_corridor "
        "WHERE period_type = 'M'",
        "pub_mirror": " UNION ALL ".join(
            f"SELECT 'pub_mirror|' || pair_id || '|' || CAST(period_start AS VARCHAR) || '|{side}' AS ref, "
            f"{side}_value AS value, {side}_value IS NULL AS suppressed FROM pub_mirror"
            for side in ("a", "b")
        ),
    }
    cells = {r["ref"]: r for sql in views.values() for r in _query(home, sql)}
    for ref, txt in printed:
        cell = cells[ref]  # every figure comes from a pub_* cell
        if cell["suppressed"]:
            assert txt == SUPPRESSED, (ref, txt)
        else:
            assert txt == number(cell["value"], lang), (ref, txt)
            assert not 1 <= cell["value"] <= 4
    # The month has suppressed corridor cells (primary and secondary): their true values, with
    # the nationality's name, are nowhere in the HTML or the PDF.
    hidden = _query(
        home,
        f"SELECT d.reporter_iso3, c.name_{lang} AS name, d.true_value, d.suppression FROM v_disclosure d "
        "JOIN dim_country c ON c.iso3 = d.citizenship_iso3 "
        "WHERE d.level = 'citizenship' AND d.suppressed AND d.period_type = 'M' AND d.period_start = ? "
        "AND d.true_value IS NOT NULL",
        [PERIOD],
    )
    assert {"primary", "secondary"} <= {h["suppression"] for h in hidden}
    assert any(1 <= h["true_value"] <= 4 for h in hidden)
    for h in hidden:
        shown = f"{h['name']}: {number(h['true_value'], lang)}"
        assert f"{htmllib.escape(h['name'])}: <span" not in html or shown not in re.sub(r"<[^>]+>", "", html)
        assert not re.search(re.escape(shown) + r"(?![\d.,])", re.sub(r"<[^>]+>", "", html))
        assert not re.search(re.escape(shown) + r"(?![\d.,])", pdf_text)
    # And the bulletin says how many cells of a corridor it withholds.
    assert ("cell(s) withheld" if lang == "en" else "celda(s) reservada(s)") in html


# ---------------------------------------------------------------------------- sections


def test_footnotes_give_sources_and_vintages_and_mark_provisional_figures(home, tmp_path):
    import duckdb

    copy = tmp_path / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("lake", "landing"))
    con = duckdb.connect(str(copy / "warehouse.duckdb"))
    con.execute(
        "UPDATE fact_flow SET obs_status = 'P' WHERE reporter_iso3 = 'PAN' AND period_start = ?", [PERIOD]
    )
    con.close()
    b = build(PERIOD, "en", tmp_path / "out", copy)
    html = b.html.read_text(encoding="utf-8")
    notes = re.search(r'<ol id="notes">(.*?)</ol>', html, re.S).group(1)
    vintages = _query(
        home,
        "SELECT DISTINCT source_id, CAST(vintage AS VARCHAR) AS vintage FROM v_fact WHERE period_start = ?",
        [PERIOD],
    )
    for v in vintages:
        assert v["source_id"] in notes and f"vintage {v['vintage']}" in notes
    pan = re.search(
        r'data-ref="pub_flow_by_period\|PAN\|IRR_TRN\|persons\|'
        + str(PERIOD)
        + r'">[^<]*</span><sup>([^<]*)',
        html,
    )
    assert pan and pan.group(1).endswith(" p"), "PAN's provisional figure is marked"
    cri = re.search(
        r'data-ref="pub_flow_by_period\|CRI\|ENT_REG\|events\|' + str(PERIOD) + r'">[^<]*</span><sup>([^<]*)',
        html,
    )
    assert cri and not cri.group(1).endswith("p")


def test_the_mirror_section_renders_from_pub_mirror_or_says_it_is_not_available(home, made, tmp_path):
    import duckdb

    # A warehouse without the view (one made before migration 0007's views): the section says so.
    bare = tmp_path / "bare"
    shutil.copytree(home, bare, ignore=shutil.ignore_patterns("lake", "landing"))
    con = duckdb.connect(str(bare / "warehouse.duckdb"))
    con.execute("DROP VIEW pub_mirror")
    con.close()
    html = build(PERIOD, "en", tmp_path / "bare-en", bare).html.read_text(encoding="utf-8")
    assert 'id="mirror-unavailable"' in html and "Mirror checks are not available" in html
    copy = tmp_path / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("lake", "landing"))
    con = duckdb.connect(str(copy / "warehouse.duckdb"))
    con.execute(
        """CREATE OR REPLACE VIEW pub_mirror AS SELECT * FROM (VALUES
        ('PAN-COL', 'Panamá y Colombia', 'Panama and Colombia', 'Panamá e Colômbia', 'Panama et Colombie', 'M',
         DATE '{p}', DATE '{e}', 'PAN', 'IRR_TRN', 'persons', 31054.0, 'COL', 'EXT_REG', 'persons', 29800.0,
         1254.0, 0.041, 0.10, true, 'exits to Panama against Darién transit'),
        ('MEX-GTM', 'México y Guatemala', 'Mexico and Guatemala', 'México e Guatemala', 'Mexique et Guatemala',
         'M', DATE '{p}', DATE '{e}', 'MEX', 'IRR_ENC', 'events', NULL, 'GTM', 'EXT_REG', 'events', 5000.0,
         NULL, NULL, 0.10, NULL, 'one side withheld')
        ) AS t(pair_id, pair_label_es, pair_label_en, pair_label_pt, pair_label_fr, period_type, period_start,
               period_end, a_reporter_iso3, a_flow_type, a_unit, a_value, b_reporter_iso3, b_flow_type, b_unit,
               b_value, difference, asymmetry, tolerance, within_tolerance, note)""".format(
            p=PERIOD, e=PERIOD.replace(day=30)
        )
    )
    con.close()
    for lang, label in (("es", "Panamá y Colombia"), ("en", "Panama and Colombia")):
        b = build(PERIOD, lang, tmp_path / lang, copy)
        html = b.html.read_text(encoding="utf-8")
        section = re.search(r'<section id="mirror">(.*?)</section>', html, re.S).group(1)
        assert "mirror-unavailable" not in section
        assert label in section and 'data-chart="mirror"' in section
        printed = dict(_printed_figures(section))
        assert printed[f"pub_mirror|PAN-COL|{PERIOD}|a"] == number(31054, lang)
        assert printed[f"pub_mirror|MEX-GTM|{PERIOD}|a"] == SUPPRESSED
        assert label in _pdf_text(b.pdf)
        assert len(json.loads(b.manifest.read_text())["charts"]) == 6


def test_revisions_since_the_last_bulletin_name_reporter_and_period_not_values(home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    root = copy / "bulletins"
    previous = dt.date(PERIOD.year, PERIOD.month - 1, 1)
    first = build(previous, "en", root / f"{previous:%Y-%m}" / "en", copy)
    assert "No figure was revised" in first.html.read_text(encoding="utf-8")
    # Honduras resends its file with one figure changed.
    (sample,) = [s for s in SAMPLES if s.source_id == "hnd_inm_flujo_irregular"]
    (path,) = [p for p in write_samples(tmp_path / "landing", recent_year()) if p.name.startswith("INM_")]
    text = path.read_bytes().decode("latin-1")  # CP850: every byte kept as it is
    changed = re.sub(r"(?<=[,;])(\d{3,})(?=[,;\r\n])", lambda m: str(int(m.group(1)) + 7), text, count=1)
    assert changed != text
    path.write_bytes(changed.encode("latin-1"))
    assert ingest_file(path, sample.source_id, copy).status == "loaded"
    made_at = json.loads(first.manifest.read_text())["generated_at"]
    for _ in range(2):  # made again for the same month: the same revisions
        second = build(PERIOD, "en", root / f"{PERIOD:%Y-%m}" / "en", copy)
        assert json.loads(second.manifest.read_text())["revisions_since"] == made_at
        html = second.html.read_text(encoding="utf-8")
        section = re.search(r'<section id="revisions">(.*?)</section>', html, re.S).group(1)
        assert f"Since the bulletin of {made_at[:19]}" in section
        assert "hnd_inm_flujo_irregular" in section and "Honduras" in section and "revised" in section
        # Values of revisions are not disclosure controlled: none is printed, only counts of observations.
        assert "fig" not in section
    later = build(PERIOD, "en", tmp_path / "later", copy, since=dt.datetime.now(dt.UTC).isoformat())
    assert "No figure was revised" in later.html.read_text(encoding="utf-8")


def test_members_that_have_not_reported_and_the_grid(home, made):
    html = made["en"].html.read_text(encoding="utf-8")
    missing = _query(
        home,
        "SELECT reporter_iso3 FROM v_completeness_by_month WHERE month_start = ? AND status IN ('missing', 'refused')",
        [PERIOD],
    )
    listing = re.search(r'<ul id="not-reported">(.*?)</ul>', html, re.S).group(1)
    assert missing and all(f"({m['reporter_iso3']}," in listing for m in missing)
    # A member with one source in and another missing is listed as partial, k of n (as on the Observatory).
    partial = _query(
        home,
        "SELECT reporter_iso3, validated, sources_expected FROM v_completeness_by_month "
        "WHERE month_start = ? AND status = 'missing' AND validated > 0",
        [PERIOD],
    )
    assert partial
    for p in partial:
        line = re.search(rf"\({p['reporter_iso3']}, \w+\): ([^<]*)</li>", listing).group(1)
        assert line == f"Partial ({p['validated']} of {p['sources_expected']} sources in)"
    reported = _query(
        home,
        "SELECT reporter_iso3 FROM v_completeness_by_month WHERE month_start = ? AND status IN ('on_time', 'late')",
        [PERIOD],
    )
    assert reported and not any(f"({r['reporter_iso3']}," in listing for r in reported)
    grid = re.search(r'<table class="grid" id="grid">(.*?)</table>', html, re.S).group(1)
    assert grid.count('<tr><th class="name">') == 23


# ---------------------------------------------------------------------------- command, DAG, Observatory


def test_the_command_writes_both_files_and_refuses_a_bad_period(home, tmp_path, monkeypatch, capsys):
    from transforms.tools.cli import EXIT_OK, EXIT_USAGE, main

    monkeypatch.setenv("OMH_HOME", str(home))
    assert main(["bulletin", "--period", "2024-13", "--lang", "en", "--out", str(tmp_path)]) == EXIT_USAGE
    assert "--period '2024-13': expected a month as YYYY-MM" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    assert (
        main(["bulletin", "--period", f"{PERIOD:%Y-%m}", "--lang", "fr", "--out", str(tmp_path)]) == EXIT_OK
    )
    assert (tmp_path / "bulletin.html").is_file() and (tmp_path / "bulletin.pdf").is_file()
    assert "Bulletin mensuel" in (tmp_path / "bulletin.html").read_text(encoding="utf-8")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_observatory_page_links_the_latest_bulletin(home, tmp_path):
    from plugins.omh_observatory.app import render_page
    from transforms.ops import observatory

    copy = tmp_path / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("lake", "landing"))
    assert latest(copy) == []
    for period in ("2025-05", f"{PERIOD:%Y-%m}"):
        build(parse_period(period), "es", copy / "bulletins" / period / "es", copy)
    (found,) = latest(copy)
    assert found["period"] == f"{PERIOD:%Y-%m}" and found["pdf"] == f"{PERIOD:%Y-%m}/es/bulletin.pdf"
    data = observatory.overview(copy)
    page = render_page({**data, "stale": False})
    assert f'href="bulletins/{PERIOD:%Y-%m}/es/bulletin.html"' in page
    assert f'href="bulletins/{PERIOD:%Y-%m}/es/bulletin.pdf"' in page


def test_the_regional_dag_builds_the_bulletin_after_the_summary():
    from airflow.dag_processing.dagbag import DagBag

    from transforms.ops import airflow_env as afe

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "omh_regional.py"))
    assert not bag.import_errors
    (dag,) = bag.dags.values()
    task = dag.get_task("bulletin")
    assert task.upstream_task_ids == {"country_summary"}
    assert task.pool != afe.POOL  # it only reads: the loads queued behind it do not wait for it


# ---------------------------------------------------------------------------- browser


@pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} is missing")
def test_the_html_opens_from_disk_in_a_browser_with_its_charts(made):
    from playwright.sync_api import sync_playwright

    b = made["es"]
    screenshot = REPO_ROOT / "test-artifacts" / "bulletin.png"
    screenshot.parent.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(b.html.as_uri())
            assert page.title().startswith("Boletín mensual de movilidad humana")
            charts = page.locator("figure.chart svg")
            assert charts.count() >= 4
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 300 and box["height"] > 80
            assert page.locator("section#headline table tbody tr").count() >= 3
            assert page.locator("table#grid tbody tr").count() == 23
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert not errors
    assert all(u.startswith(("file:", "data:")) for u in requests), requests


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_the_bulletin_reads_a_postgresql_warehouse_the_same_way(tmp_path, monkeypatch):
    from test_warehouse import postgres_schema

    with postgres_schema() as url:
        monkeypatch.setenv("OMH_WAREHOUSE_URL", url)
        home = tmp_path / "home"
        for year in (2024, recent_year()):
            written = write_samples(tmp_path / f"landing-{year}", year)
            for sample, path in zip(SAMPLES, written, strict=True):
                if sample.source_id in ("pan_snm_transito_irregular_mensual", "hnd_inm_flujo_irregular"):
                    assert ingest_file(path, sample.source_id, home).status == "loaded"
        b = build(PERIOD, "es", tmp_path / "out", home)
        html = b.html.read_text(encoding="utf-8")
        printed = dict(_printed_figures(html))
        (total,) = _query(
            home,
            "SELECT value FROM pub_regional_totals WHERE region = 'ALL' AND flow_type = 'IRR_TRN' "
            "AND unit = 'persons' AND period_type = 'M' AND period_start = ?",
            [PERIOD],
        )
        assert printed[f"pub_regional_totals|ALL|IRR_TRN|persons|{PERIOD}"] == number(total["value"], "es")
        assert SUPPRESSED in html and len(pdfium.PdfDocument(str(b.pdf))) >= 3

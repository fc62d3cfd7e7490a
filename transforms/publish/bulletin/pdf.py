"""The bulletin as a PDF, typeset by Typst (the ``typst`` wheel from PyPI: no browser, no TeX).

The document's content goes to Typst as data (``data.json``: headings, tables as lists of cell
segments, chart file names), never as markup, so no label or country name needs escaping; the
charts go as PNG files. The template below only lays them out."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from transforms.publish.bulletin.charts import Chart
from transforms.publish.bulletin.data import BulletinData, Figure
from transforms.publish.bulletin.labels import MISSING, heads, month, number, percent, status_line, text

TEMPLATE = r"""
#let d = json("data.json")
#set document(title: d.title + " — " + d.period)
#set page(paper: "a4", margin: (x: 1.6cm, top: 1.6cm, bottom: 1.8cm),
  footer: context [#set text(size: 8pt, fill: luma(90)); #d.observatory #h(1fr) #counter(page).display("1 / 1", both: true)])
#set text(size: 9.5pt, lang: d.lang)
#set par(justify: false)
#show heading.where(level: 1): it => block(above: 14pt, below: 8pt, stroke: (bottom: 1pt + rgb("#1f5a96")),
  inset: (bottom: 3pt), width: 100%, text(size: 13pt, fill: rgb("#1f5a96"), it.body))
#let seg(s) = if s.at("s", default: "") != "" [#s.t#super(text(fill: rgb("#1f5a96"), s.s))] else [#s.t]
#let cell(c) = c.map(line => line.map(seg).join()).join(linebreak())
#let show_block(b) = {
  if b.kind == "table" {
    set text(size: 8.5pt)
    table(
      columns: b.head.len(),
      inset: (x: 4pt, y: 3pt),
      align: left + top,
      stroke: (x, y) => if y == 0 { (bottom: 0.8pt) } else { (bottom: 0.3pt + luma(200)) },
      table.header(..b.head.map(h => strong(h))),
      ..b.rows.map(r => r.map(cell)).flatten(),
    )
  } else if b.kind == "chart" {
    figure(image(b.file, width: b.at("width", default: 100%)))
  } else if b.kind == "list" {
    list(..b.items.map(i => [#i]))
  } else if b.kind == "notes" {
    set text(size: 8pt)
    enum(..b.items.map(i => [#i]))
  } else {
    par(b.text)
  }
}
#text(size: 18pt, weight: "bold", fill: rgb("#1f5a96"), d.title)
#v(-4pt)
#text(fill: luma(80), d.observatory) \
#strong(d.period_line) \
#text(size: 8.5pt, fill: luma(80), d.generated)
#block(fill: rgb("#eef4fb"), inset: 7pt, width: 100%, d.unit_note)
#text(size: 8.5pt, fill: luma(80), d.legend)
#for s in d.sections {
  heading(level: 1, s.heading)
  for b in s.blocks { show_block(b) }
}
"""


def _fig(fig: Figure | None, lang: str) -> list[dict]:
    if fig is None:
        return [{"t": MISSING}]
    sup = f"{fig.note or ''}{(' ' + fig.flags) if fig.flags else ''}".strip()
    return [{"t": number(fig.value, lang), "s": sup}]


def _t(value) -> list[list[dict]]:
    return [[{"t": "" if value is None else str(value)}]]


def _table(head: list[str], rows: list[list]) -> dict:
    return {"kind": "table", "head": head, "rows": rows}


def _headline(d: BulletinData, lang: str) -> list[dict]:
    if not d.headline:
        return [{"kind": "text", "text": text("no_data", lang)}]
    head = heads("headline", d.period, lang)
    rows = [
        [
            _t(h["flow_label"] or h["flow_type"]),
            _t(h["unit_label"] or h["unit"]),
            [_fig(h["regions"].get("ALL"), lang)],
            [_fig(h["regions"].get("CRM"), lang)],
            [_fig(h["regions"].get("CSM"), lang)],
            [_fig(h.get("previous"), lang)],
            _t(percent(h.get("change_pct"), lang)),
        ]
        for h in d.headline
    ]
    return [_table(head, rows)]


def _corridors(d: BulletinData, lang: str) -> list[dict]:
    if not d.corridors:
        return [{"kind": "text", "text": text("no_data", lang)}]
    rows = []
    for g in d.corridors:
        lines = [[{"t": f"{c['citizenship_label']}: "}, *_fig(c["figure"], lang)] for c in g["top"]]
        if g["suppressed"]:
            lines.append([{"t": text("withheld", lang, n=g["suppressed"])}])
        rows.append(
            [
                _t(g["reporter_label"] or g["reporter_iso3"]),
                _t(g["flow_label"] or g["flow_type"]),
                _t(g["unit_label"] or g["unit"]),
                lines or [[{"t": ""}]],
            ]
        )
    head = heads("corridors", d.period, lang)
    return [_table(head, rows)]


def _yoy(d: BulletinData, lang: str) -> list[dict]:
    if not d.yoy:
        return [{"kind": "text", "text": text("no_data", lang)}]
    head = heads("yoy", d.period, lang)
    rows = [
        [
            _t(r["reporter_label"] or r["reporter_iso3"]),
            _t(r["flow_label"] or r["flow_type"]),
            _t(r["unit_label"] or r["unit"]),
            [_fig(r["figure"], lang)],
            [_fig(r["previous"], lang)],
            _t(percent(r["change_pct"], lang)),
        ]
        for r in d.yoy
    ]
    return [_table(head, rows)]


def _mirror(d: BulletinData, lang: str) -> list[dict]:
    if d.mirror is None:
        return [{"kind": "text", "text": text("mirror_unavailable", lang)}]
    if not d.mirror:
        return [{"kind": "text", "text": text("mirror_none", lang)}]
    head = heads("mirror", d.period, lang)
    rows = []
    for m in d.mirror:
        within = (
            MISSING if m["within_tolerance"] is None else text("yes" if m["within_tolerance"] else "no", lang)
        )
        rows.append(
            [
                _t(m["pair_label"]),
                _t(f"{m['period_start']} … {m['period_end']}"),
                [
                    [
                        {"t": f"{m['a_reporter_iso3']} {m['a_flow_type']}: "},
                        *_fig(m["a"], lang),
                        {"t": f" {m['a_unit']}"},
                    ]
                ],
                [
                    [
                        {"t": f"{m['b_reporter_iso3']} {m['b_flow_type']}: "},
                        *_fig(m["b"], lang),
                        {"t": f" {m['b_unit']}"},
                    ]
                ],
                _t(number(m["difference"], lang) if m["difference"] is not None else MISSING),
                _t(f"{m['asymmetry']:.3f}" if m["asymmetry"] is not None else MISSING),
                _t(f"{m['tolerance']:.3f}" if m["tolerance"] is not None else MISSING),
                _t(within),
                _t(m["note"] or ""),
            ]
        )
    return [_table(head, rows)]


def _revisions(d: BulletinData, lang: str) -> list[dict]:
    intro = (
        text("revisions_since", lang, since=d.revisions_since[:19])
        if d.revisions_since
        else text("revisions_all", lang)
    )
    if not d.revisions:
        return [{"kind": "text", "text": f"{intro} {text('no_revisions', lang)}"}]
    head = heads("revisions", d.period, lang)
    rows = [
        [
            _t(r["reporter_label"] or r["reporter_iso3"]),
            _t(r["source_id"]),
            _t(f"{r['period_start']} … {r['period_end']}"),
            _t(r["change"]),
            _t(r["observations"]),
            _t(f"{r['previous_vintage'] or MISSING} → {r['vintage'] or MISSING}"),
        ]
        for r in d.revisions
    ]
    return [{"kind": "text", "text": intro}, _table(head, rows)]


def _completeness(d: BulletinData, lang: str) -> list[dict]:
    if not d.not_reported:
        return [{"kind": "text", "text": text("all_reported", lang)}]
    return [
        {
            "kind": "list",
            "items": [
                f"{m['label']} ({m['iso3']}, {m['conference']}): {status_line(d, m, lang)}"
                for m in d.not_reported
            ],
        }
    ]


def _notes(d: BulletinData, lang: str) -> list[dict]:
    items = [
        "; ".join(
            f"{s['title']} ({s['agency']}, {s['source_id']}), "
            f"{text('vintage', lang, vintage=s['vintage'] or MISSING)}"
            for s in note
        )
        for note in d.notes()
    ]
    return [{"kind": "notes", "items": items}]


def document(d: BulletinData, charts: list[Chart], lang: str) -> dict:
    """The PDF's content as data for the template; charts by their file names (``<key>.png``)."""
    keys = {c.key for c in charts}

    def chart(key: str) -> list[dict]:
        return [{"kind": "chart", "file": f"{key}.png"}] if key in keys else []

    sections = [
        ("headline", _headline(d, lang) + chart("regions")),
        ("trend", chart("trend")),
        ("corridors", chart("corridors") + _corridors(d, lang)),
        ("yoy", chart("yoy") + _yoy(d, lang)),
        ("mirror", chart("mirror") + _mirror(d, lang)),
        ("revisions", _revisions(d, lang)),
        ("completeness", _completeness(d, lang) + chart("completeness")),
        ("notes", _notes(d, lang)),
    ]
    return {
        "lang": lang,
        "title": text("title", lang),
        "observatory": text("observatory", lang),
        "period": month(d.period, lang),
        "period_line": text("period", lang, month=month(d.period, lang)),
        "generated": text("generated", lang, at=d.generated_at[:19].replace("T", " ")),
        "unit_note": text("unit_note", lang),
        "legend": text("legend", lang),
        "sections": [{"heading": text(k, lang), "blocks": blocks} for k, blocks in sections],
    }


def render(d: BulletinData, charts: list[Chart], lang: str, target: Path) -> Path:
    """Typeset the bulletin into ``target`` (a .pdf); its sources are made in a scratch folder."""
    import typst

    with tempfile.TemporaryDirectory(prefix="omh-bulletin-") as tmp:
        work = Path(tmp)
        for c in charts:
            (work / f"{c.key}.png").write_bytes(c.png())
        (work / "data.json").write_text(
            json.dumps(document(d, charts, lang), ensure_ascii=False, default=str), encoding="utf-8"
        )
        (work / "main.typ").write_text(TEMPLATE, encoding="utf-8")
        pdf = typst.compile(str(work / "main.typ"), root=str(work), format="pdf")
    target.write_bytes(pdf)
    return target

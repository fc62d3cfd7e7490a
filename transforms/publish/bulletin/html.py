"""The bulletin as one self-contained HTML file: styles inline, charts as inline SVG, no script,
no external resource, so it opens from disk and mails as one file."""

from __future__ import annotations

import html

from transforms.publish.bulletin.charts import STATUS_COLORS, Chart
from transforms.publish.bulletin.data import BulletinData, Figure
from transforms.publish.bulletin.labels import MISSING, heads, month, number, percent, status_line, text


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def figure(fig: Figure | None, lang: str) -> str:
    """A figure with its unit kept apart (the column says it), its footnote and flags."""
    if fig is None:
        return f'<span class="fig none">{MISSING}</span>'
    sup = ""
    if fig.note or fig.flags:
        sup = f"<sup>{fig.note or ''}{(' ' + fig.flags) if fig.flags else ''}</sup>"
    cls = "fig suppressed" if fig.suppressed else "fig"
    return f'<span class="{cls}" data-ref="{_e(fig.ref)}">{_e(number(fig.value, lang))}</span>{sup}'


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    thead = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>'


def _chart(chart: Chart) -> str:
    return f'<figure class="chart" data-chart="{_e(chart.key)}">{chart.svg()}</figure>'


def headline(d: BulletinData, lang: str) -> str:
    if not d.headline:
        return f"<p>{_e(text('no_data', lang))}</p>"
    rows = [
        [
            _e(h["flow_label"] or h["flow_type"]),
            f'<b class="unit">{_e(h["unit_label"] or h["unit"])}</b>',
            figure(h["regions"].get("ALL"), lang),
            figure(h["regions"].get("CRM"), lang),
            figure(h["regions"].get("CSM"), lang),
            figure(h.get("previous"), lang),
            _e(percent(h.get("change_pct"), lang)),
        ]
        for h in d.headline
    ]
    head = heads("headline", d.period, lang)
    return _table(head, rows, "figures")


def corridors(d: BulletinData, lang: str) -> str:
    if not d.corridors:
        return f"<p>{_e(text('no_data', lang))}</p>"
    rows = []
    for g in d.corridors:
        tops = "<br>".join(f"{_e(c['citizenship_label'])}: {figure(c['figure'], lang)}" for c in g["top"])
        if g["suppressed"]:
            tops += f"<br><small>{_e(text('withheld', lang, n=g['suppressed']))}</small>"
        rows.append(
            [
                _e(g["reporter_label"] or g["reporter_iso3"]),
                _e(g["flow_label"] or g["flow_type"]),
                f'<b class="unit">{_e(g["unit_label"] or g["unit"])}</b>',
                tops,
            ]
        )
    head = heads("corridors", d.period, lang)
    return _table(head, rows, "figures")


def yoy(d: BulletinData, lang: str) -> str:
    if not d.yoy:
        return f"<p>{_e(text('no_data', lang))}</p>"
    rows = [
        [
            _e(r["reporter_label"] or r["reporter_iso3"]),
            _e(r["flow_label"] or r["flow_type"]),
            f'<b class="unit">{_e(r["unit_label"] or r["unit"])}</b>',
            figure(r["figure"], lang),
            figure(r["previous"], lang),
            _e(percent(r["change_pct"], lang)),
        ]
        for r in d.yoy
    ]
    head = heads("yoy", d.period, lang)
    return _table(head, rows, "figures")


def mirror(d: BulletinData, lang: str) -> str:
    if d.mirror is None:
        return f'<p class="unavailable" id="mirror-unavailable">{_e(text("mirror_unavailable", lang))}</p>'
    if not d.mirror:
        return f"<p>{_e(text('mirror_none', lang))}</p>"
    rows = [
        [
            _e(m["pair_label"]),
            _e(f"{m['period_start']} … {m['period_end']}"),
            f"{_e(m['a_reporter_iso3'])} {_e(m['a_flow_type'])}: {figure(m['a'], lang)} <small>{_e(m['a_unit'])}</small>",
            f"{_e(m['b_reporter_iso3'])} {_e(m['b_flow_type'])}: {figure(m['b'], lang)} <small>{_e(m['b_unit'])}</small>",
            _e(number(m["difference"], lang) if m["difference"] is not None else MISSING),
            _e(f"{m['asymmetry']:.3f}" if m["asymmetry"] is not None else MISSING),
            _e(f"{m['tolerance']:.3f}" if m["tolerance"] is not None else MISSING),
            _e(
                text("yes" if m["within_tolerance"] else "no", lang)
                if m["within_tolerance"] is not None
                else MISSING
            ),
            _e(m["note"] or ""),
        ]
        for m in d.mirror
    ]
    head = heads("mirror", d.period, lang)
    return _table(head, rows, "figures mirror")


def revisions(d: BulletinData, lang: str) -> str:
    intro = (
        text("revisions_since", lang, since=d.revisions_since[:19])
        if d.revisions_since
        else text("revisions_all", lang)
    )
    if not d.revisions:
        return f"<p>{_e(intro)} {_e(text('no_revisions', lang))}</p>"
    rows = [
        [
            _e(r["reporter_label"] or r["reporter_iso3"]),
            _e(r["source_id"]),
            _e(f"{r['period_start']} … {r['period_end']}"),
            _e(r["change"]),
            _e(r["observations"]),
            _e(f"{r['previous_vintage'] or MISSING} → {r['vintage'] or MISSING}"),
        ]
        for r in d.revisions
    ]
    head = heads("revisions", d.period, lang)
    return f"<p>{_e(intro)}</p>" + _table(head, rows, "revisions")


def completeness(d: BulletinData, lang: str) -> str:
    if d.not_reported:
        items = "".join(
            f"<li>{_e(m['label'])} ({_e(m['iso3'])}, {_e(m['conference'])}): "
            f"{_e(status_line(d, m, lang))}</li>"
            for m in d.not_reported
        )
        listing = f'<ul id="not-reported">{items}</ul>'
    else:
        listing = f'<p id="not-reported">{_e(text("all_reported", lang))}</p>'
    months = d.grid["months"]
    head = "".join(f'<th class="m">{_e(m[2:])}</th>' for m in months)
    rows = []
    for m in d.grid["members"]:
        cells = "".join(
            f'<td class="cell" style="background:{STATUS_COLORS.get(m["cells"].get(k, "no_source"), "#fff")}" '
            f'title="{_e(d.grid["status_labels"].get(m["cells"].get(k), m["cells"].get(k)))}"></td>'
            for k in months
        )
        rows.append(f'<tr><th class="name">{_e(m["label"])} <small>{_e(m["iso3"])}</small></th>{cells}</tr>')
    legend = " ".join(
        f'<span class="sw" style="background:{color}"></span>{_e(d.grid["status_labels"].get(k, k))}'
        for k, color in STATUS_COLORS.items()
    )
    grid = (
        f'<h3>{_e(text("grid", lang))}</h3><p class="legend">{legend}</p>'
        f'<table class="grid" id="grid"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return listing + grid


def notes(d: BulletinData, lang: str) -> str:
    items = "".join(
        "<li>"
        + "; ".join(
            f"{_e(s['title'])} ({_e(s['agency'])}, <code>{_e(s['source_id'])}</code>), "
            f"{_e(text('vintage', lang, vintage=s['vintage'] or MISSING))}"
            for s in note
        )
        + "</li>"
        for note in d.notes()
    )
    return f'<ol id="notes">{items}</ol>'


STYLE = """
body { font: 14px/1.45 "Segoe UI", system-ui, sans-serif; color: #1b1b1b; max-width: 980px; margin: 24px auto;
       padding: 0 16px; background: #fff; }
h1 { font-size: 24px; margin: 0; color: #1f5a96; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 2px solid #1f5a96; } h3 { font-size: 15px; }
.meta, .legend, small { color: #555; } .note { background: #eef4fb; padding: 8px 12px; }
table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 3px 8px; text-align: left; vertical-align: top; }
table.figures td, table.figures th, table.revisions td, table.revisions th { border-bottom: 1px solid #ddd; }
.fig { font-variant-numeric: tabular-nums; } .fig.suppressed { color: #888; } sup { color: #1f5a96; font-size: 70%; }
.unit { font-weight: 600; color: #333; }
table.grid td.cell { width: 14px; height: 14px; border: 1px solid #fff; padding: 0; }
table.grid th.m { font-size: 10px; font-weight: 500; writing-mode: vertical-rl; transform: rotate(180deg); }
table.grid th.name { font-weight: 500; white-space: nowrap; font-size: 12px; }
.sw { display: inline-block; width: 12px; height: 12px; margin: 0 3px 0 10px; border: 1px solid #ccc; }
figure.chart { margin: 12px 0; } figure.chart svg { max-width: 100%; height: auto; }
.unavailable { color: #8a5300; background: #fff4e5; padding: 6px 10px; }
"""


def render(d: BulletinData, charts: list[Chart], lang: str) -> str:
    by_key = {c.key: c for c in charts}

    def chart(key: str) -> str:
        return _chart(by_key[key]) if key in by_key else ""

    sections = [
        ("headline", headline(d, lang) + chart("regions")),
        ("trend", chart("trend")),
        ("corridors", chart("corridors") + corridors(d, lang)),
        ("yoy", chart("yoy") + yoy(d, lang)),
        ("mirror", chart("mirror") + mirror(d, lang)),
        ("revisions", revisions(d, lang)),
        ("completeness", completeness(d, lang) + chart("completeness")),
        ("notes", notes(d, lang)),
    ]
    body = "".join(
        f'<section id="{key}"><h2>{_e(text(key, lang))}</h2>{content}</section>' for key, content in sections
    )
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(text("title", lang))} — {_e(month(d.period, lang))}</title>
<style>{STYLE}</style></head><body>
<header><h1>{_e(text("title", lang))}</h1>
<p class="meta">{_e(text("observatory", lang))}<br><b>{_e(text("period", lang, month=month(d.period, lang)))}</b><br>
{_e(text("generated", lang, at=d.generated_at[:19].replace("T", " ")))}</p>
<p class="note">{_e(text("unit_note", lang))}</p>
<p class="legend">{_e(text("legend", lang))}</p></header>
{body}
</body></html>
"""

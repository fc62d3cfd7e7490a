"""The bulletin's charts, made with Altair (Vega-Lite) and drawn by ``vl-convert`` (no browser):
SVG for the HTML, PNG for the PDF. Charts draw published figures only: a suppressed figure is
no mark at all (never a zero, never an estimate)."""

from __future__ import annotations

from dataclasses import dataclass

from transforms.publish.bulletin.labels import text

WIDTH = 620
COLORS = ["#1f5a96", "#d9822b", "#3d9970", "#b03a2e", "#7d5ba6", "#8c6d31", "#2ca6a4", "#c2185b"]
STATUS_COLORS = {
    "on_time": "#2e7d32",
    "late": "#fb8c00",
    "refused": "#c62828",
    "missing": "#6d1b1b",
    "partial": "#c0ca33",
    "not_due": "#e0e0e0",
    "no_source": "#fafafa",
}


# Numbers in the charts as each language writes them (d3-format locales vl-convert knows).
LOCALES = {"es": "es-ES", "en": "en-US", "pt": "pt-BR", "fr": "fr-FR"}


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    spec: dict
    lang: str = "en"

    def svg(self) -> str:
        import vl_convert as vlc

        return vlc.vegalite_to_svg(self.spec, format_locale=LOCALES[self.lang])

    def png(self, scale: float = 2.0) -> bytes:
        import vl_convert as vlc

        return vlc.vegalite_to_png(self.spec, scale=scale, format_locale=LOCALES[self.lang])


def _empty(title: str, message: str):
    import altair as alt

    return (
        alt.Chart(alt.Data(values=[{"t": message}]))
        .mark_text(fontSize=13, color="#666")
        .encode(text="t:N")
        .properties(width=WIDTH, height=60, title=title)
    )


def _chart(key: str, title: str, chart, lang: str) -> Chart:
    return Chart(
        key, title, chart.configure_view(stroke=None).configure_axis(labelFontSize=10).to_dict(), lang
    )


def trend(data, lang: str) -> Chart:
    """Regional (all members) monthly totals over 24 months, one panel per unit."""
    import altair as alt

    title = text("chart_trend", lang)
    values = [
        {
            "month": r["month"],
            "flow": r["flow_label"] or r["flow_type"],
            "unit": r["unit_label"] or r["unit"],
            "value": r["value"],
        }
        for r in data.trend
        if r["value"] is not None
    ]
    if not values:
        return _chart("trend", title, _empty(title, text("no_data", lang)), lang)
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=-60)),
            y=alt.Y("value:Q", title=None),
            color=alt.Color(
                "flow:N",
                title=None,
                scale=alt.Scale(range=COLORS),
                legend=alt.Legend(orient="bottom", columns=3),
            ),
        )
        .properties(width=WIDTH, height=150)
        .facet(
            row=alt.Row(
                "unit:N",
                title=None,
                header=alt.Header(labelFontWeight="bold", labelAngle=0, labelAlign="left"),
            )
        )
        .resolve_scale(y="independent")
        .properties(title=title)
    )
    return _chart("trend", title, chart, lang)


def _per_unit(chart, title: str):
    """One panel per unit (events are not persons: never on one axis), each with its own scales."""
    import altair as alt

    return (
        chart.facet(
            row=alt.Row(
                "unit:N",
                title=None,
                header=alt.Header(labelFontWeight="bold", labelAngle=0, labelAlign="left"),
            )
        )
        .resolve_scale(x="independent", y="independent")
        .properties(title=title)
    )


def regions(data, lang: str) -> Chart:
    """The month's figures by conference (CRM, CSM), per flow type; one panel per unit."""
    import altair as alt

    title = text("chart_regions", lang)
    values = [
        {
            "flow": h["flow_label"] or h["flow_type"],
            "unit": h["unit_label"] or h["unit"],
            "region": region,
            "value": fig.value,
        }
        for h in data.headline
        for region, fig in h["regions"].items()
        if region in ("CRM", "CSM") and fig.value is not None
    ]
    if not values:
        return _chart("regions", title, _empty(title, text("no_data", lang)), lang)
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            y=alt.Y("flow:N", title=None),
            x=alt.X("value:Q", title=None, stack="zero"),
            color=alt.Color(
                "region:N", title=None, scale=alt.Scale(domain=["CRM", "CSM"], range=[COLORS[0], COLORS[1]])
            ),
        )
        .properties(width=WIDTH - 120, height=alt.Step(18))
    )
    chart = _per_unit(chart, title)
    return _chart("regions", title, chart, lang)


def corridors(data, lang: str, top: int = 12) -> Chart:
    """The month's largest published corridors (nationality → reporter), one panel per unit."""
    import altair as alt

    title = text("chart_corridors", lang)
    cells = [
        {
            "corridor": f"{c['citizenship_label']} → {g['reporter_iso3']} ({g['flow_label'] or g['flow_type']})",
            "unit": g["unit_label"] or g["unit"],
            "value": c["figure"].value,
        }
        for g in data.corridors
        for c in g["top"]
        if c["figure"].value is not None
    ]
    cells = sorted(cells, key=lambda c: -c["value"])[:top]
    if not cells:
        return _chart("corridors", title, _empty(title, text("no_data", lang)), lang)
    chart = (
        alt.Chart(alt.Data(values=cells))
        .mark_bar(color=COLORS[2])
        .encode(
            y=alt.Y("corridor:N", title=None, sort="-x", axis=alt.Axis(labelLimit=330)),
            x=alt.X("value:Q", title=None),
        )
        .properties(width=WIDTH - 300, height=alt.Step(16))
    )
    chart = _per_unit(chart, title)
    return _chart("corridors", title, chart, lang)


def yoy(data, lang: str) -> Chart:
    """Change on the same month a year earlier (%), per reporter and flow type (published both years)."""
    import altair as alt

    title = text("chart_yoy", lang)
    values = [
        {
            "series": f"{r['reporter_iso3']} · {r['flow_label'] or r['flow_type']} ({r['unit_label'] or r['unit']})",
            "change": round(r["change_pct"], 1),
        }
        for r in data.yoy
        if r["change_pct"] is not None
    ]
    if not values:
        return _chart("yoy", title, _empty(title, text("no_data", lang)), lang)
    chart = (
        alt.Chart(alt.Data(values=values), title=title)
        .mark_bar()
        .encode(
            y=alt.Y("series:N", title=None, sort="-x", axis=alt.Axis(labelLimit=330)),
            x=alt.X("change:Q", title="%"),
            color=alt.condition("datum.change >= 0", alt.value(COLORS[0]), alt.value(COLORS[3])),
        )
        .properties(width=WIDTH - 300, height=alt.Step(16))
    )
    return _chart("yoy", title, chart, lang)


def completeness(data, lang: str) -> Chart:
    """The completeness grid: members x the 24 months, colored by delivery status."""
    import altair as alt

    title = text("chart_completeness", lang)
    labels = data.grid["status_labels"]
    values = [
        {
            "member": f"{m['label']} ({m['iso3']})",
            "month": month,
            "status": labels.get(m["cells"].get(month, "no_source"), m["cells"].get(month, "no_source")),
        }
        for m in data.grid["members"]
        for month in data.grid["months"]
    ]
    if not values:
        return _chart("completeness", title, _empty(title, text("no_data", lang)), lang)
    domain = [labels.get(s, s) for s in STATUS_COLORS]
    chart = (
        alt.Chart(alt.Data(values=values), title=title)
        .mark_rect(stroke="#fff", strokeWidth=1)
        .encode(
            x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=-60)),
            y=alt.Y("member:N", title=None, sort=None),
            color=alt.Color(
                "status:N",
                title=None,
                scale=alt.Scale(domain=domain, range=list(STATUS_COLORS.values())),
                legend=alt.Legend(orient="bottom", columns=3),
            ),
        )
        .properties(width=WIDTH - 180, height=alt.Step(12))
    )
    return _chart("completeness", title, chart, lang)


def mirror(data, lang: str) -> Chart | None:
    """Asymmetry of each mirror pair by period (only when ``pub_mirror`` exists and has rows)."""
    import altair as alt

    if not data.mirror:
        return None
    title = text("chart_mirror", lang)
    values = [
        {"pair": m["pair_label"], "period": str(m["period_start"])[:7], "asymmetry": m["asymmetry"]}
        for m in data.mirror
        if m["asymmetry"] is not None
    ]
    if not values:
        return None
    chart = (
        alt.Chart(alt.Data(values=values), title=title)
        .mark_bar()
        .encode(
            x=alt.X("period:O", title=None, axis=alt.Axis(labelAngle=-60)),
            y=alt.Y("asymmetry:Q", title=None),
            color=alt.Color(
                "pair:N",
                title=None,
                scale=alt.Scale(range=COLORS),
                legend=alt.Legend(orient="bottom", columns=2),
            ),
            xOffset="pair:N",
        )
        .properties(width=WIDTH, height=160)
    )
    return _chart("mirror", title, chart, lang)


def all_charts(data, lang: str) -> list[Chart]:
    charts = [trend(data, lang), regions(data, lang), corridors(data, lang), yoy(data, lang)]
    extra = mirror(data, lang)
    if extra is not None:
        charts.append(extra)
    charts.append(completeness(data, lang))
    return charts

"""Readable validation reports: one HTML page per file validation, built from the GX results."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.3em} table{border-collapse:collapse;width:100%;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:.9em}
.ok{color:#17692d}.error{color:#b00020;font-weight:bold}.warning{color:#a15c00}
code{background:#f4f4f4;padding:1px 4px}
table.ex{width:auto;margin:0} table.ex td,table.ex th{font-size:.85em;padding:1px 6px}
"""


def _verdict(result, lang: str) -> tuple[str, str]:
    """The page's verdict, the same as the exit code's (0 loads, 1 refused, 2 cannot be read)."""
    if result.ok:
        if result.warnings:
            return "warning", _r("verdict_loads_warned", lang, n=len(result.warnings))
        return "ok", _r("verdict_loads", lang)
    if result.status == "unreadable":
        return "error", _r("verdict_unreadable", lang)
    return "error", _r("verdict_refused", lang, n=len(result.problems or [result.reason]))


def _r(key: str, lang: str, **values) -> str:
    from transforms.messages import label

    return label(key, lang, section="report", **values)


def _problem_rows(lines: list[str], file_name: str, lang: str) -> str:
    from transforms.messages import translate

    rows = []
    for n, line in enumerate(lines, 1):
        text = line[len(file_name) + 2 :] if line.startswith(f"{file_name}: ") else line
        rows.append(f"<tr><td>{n}</td><td>{html.escape(translate(text, lang))}</td></tr>")
    return "".join(rows)


def _reason(outcome) -> str:
    """A contract's severity override: the check's new level and the reason the contract gives."""
    return (
        html.escape(outcome.examples[0]["message"])
        if outcome.suite == "contract" and outcome.examples
        else ""
    )


def _examples(examples: list[dict], lang: str) -> str:
    """A failed check's examples as cells: value, row, column."""
    if not examples:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _r("example_columns", lang).split("|"))
    body = "".join(
        f"<tr><td>{html.escape(str(e.get('value', '')))}</td><td>{html.escape(str(e.get('row') or ''))}</td>"
        f"<td>{html.escape(str(e.get('column') or ''))}</td></tr>"
        for e in examples[:5]
    )
    return f"<table class='ex'><tr>{head}</tr>{body}</table>"


def write_report(path: Path, result, outcomes, contract, lang: str | None = None) -> Path:
    """Write the HTML report (and a JSON twin for machines) and return the HTML path. The page
    speaks the contract's language (or ``lang``); its verdict is the exit code's."""
    from transforms.messages import language

    lang = language(lang, contract.language)
    path.parent.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    status_class, verdict = _verdict(result, lang)
    rows = []
    for o in outcomes:
        cls = "ok" if o.success else o.severity
        rows.append(
            "<tr>"
            f"<td>{esc(o.suite)}</td><td><code>{esc(o.expectation)}</code></td>"
            f"<td>{esc(o.column or '')}</td><td class='{cls}'>{'pass' if o.success else esc(o.severity)}</td>"
            f"<td>{o.unexpected_count if not o.success else ''}</td>"
            f"<td>{_examples(o.examples, lang) if not o.success else _reason(o)}</td>"
            "</tr>"
        )
    failed = [o for o in outcomes if not o.success]
    errors = sum(o.severity == "error" for o in failed)
    problems = _problem_rows(result.problems or [result.reason], result.file, lang) if not result.ok else ""
    warnings = _problem_rows(result.warnings, result.file, lang)
    table = "<table><tr><th>{n}</th><th>{w}</th></tr>{rows}</table>"
    heads = "".join(f"<th>{esc(c)}</th>" for c in _r("check_columns", lang).split("|"))
    page = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{esc(_r("title", lang, file=result.file))}</title><style>{_CSS}</style></head><body>
<h1>{esc(result.file)} &mdash; <span class="{status_class}">{esc(verdict)}</span></h1>
<p>Source <code>{esc(contract.source_id)}</code> (contract v{contract.version}, {esc(contract.agency)}),
sha256 <code>{esc(result.sha256[:16])}</code>, {dt.datetime.now():%Y-%m-%d %H:%M}.</p>
{f"<h2>{esc(_r('problems', lang))}</h2>" + table.format(n=esc(_r("number", lang)), w=esc(_r("what", lang)), rows=problems) if problems else ""}
{f"<h2>{esc(_r('warnings', lang))}</h2>" + table.format(n=esc(_r("number", lang)), w=esc(_r("what", lang)), rows=warnings) if warnings else ""}
{f"<p>{esc(_r('fix', lang))}</p>" if not result.ok else ""}
<details{" open" if result.ok else ""}><summary><b>{esc(_r("checks", lang, n=len(outcomes), errors=errors, warnings=len(failed) - errors))}</b></summary>
<table><tr>{heads}</tr>{"".join(rows)}</table></details>
</body></html>"""
    path.write_text(page, encoding="utf-8")
    twin = {
        **result.to_dict(),
        "outcomes": [o.__dict__ for o in outcomes],
    }
    path.with_suffix(".json").write_text(
        json.dumps(twin, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return path

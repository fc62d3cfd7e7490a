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
"""


def write_report(path: Path, result, outcomes, contract) -> Path:
    """Write the HTML report (and a JSON twin for machines) and return the HTML path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    status_class = "ok" if result.ok else "error"
    rows = []
    for o in outcomes:
        cls = "ok" if o.success else o.severity
        rows.append(
            "<tr>"
            f"<td>{esc(o.suite)}</td><td><code>{esc(o.expectation)}</code></td>"
            f"<td>{esc(o.column or '')}</td><td class='{cls}'>{'pass' if o.success else esc(o.severity)}</td>"
            f"<td>{o.unexpected_count if not o.success else ''}</td>"
            f"<td>{esc(json.dumps(o.examples[:5], ensure_ascii=False, default=str)) if not o.success else ''}</td>"
            "</tr>"
        )
    problems = "".join(f"<li>{esc(p)}</li>" for p in result.problems) if not result.ok else ""
    warnings = "".join(f"<li>{esc(w)}</li>" for w in result.warnings)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{esc(result.file)}: validation</title><style>{_CSS}</style></head><body>
<h1>{esc(result.file)} &mdash; <span class="{status_class}">{esc(result.status)}</span></h1>
<p>Source <code>{esc(contract.source_id)}</code> (contract v{contract.version}, {esc(contract.agency)}),
sha256 <code>{esc(result.sha256[:16])}</code>, validated {dt.datetime.now():%Y-%m-%d %H:%M}.</p>
<p>{esc(result.reason)}</p>
{f"<h2>Problems</h2><ul>{problems}</ul>" if problems else ""}
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
<h2>Expectations ({len(outcomes)} run, {sum(not o.success for o in outcomes)} failed)</h2>
<table><tr><th>suite</th><th>expectation</th><th>column</th><th>result</th><th>unexpected</th>
<th>examples (value, source row)</th></tr>{"".join(rows)}</table>
<p>To fix a refusal: correct the file, or change <code>contracts/{esc(contract.source_id)}.yaml</code>
(an alias in a field's <code>map</code>, a column alias) and rerun.</p>
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

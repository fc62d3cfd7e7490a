"""The monthly bulletin (``omh bulletin --period YYYY-MM --lang es|en|pt|fr --out DIR``).

``DIR/bulletin.html`` (one self-contained file: charts inline) and ``DIR/bulletin.pdf`` (Typst),
plus ``DIR/bulletin.json`` (when and what was made: the next bulletin's "revised since" starts
there). Figures come from the disclosure-controlled ``pub_*`` views only (``data``); ``charts``
draws them, ``html`` and ``pdf`` lay them out. The warehouse is opened for reading
(decision 0007): a running load does not hold the bulletin up, nor does the bulletin hold it up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from transforms.publish.bulletin.data import BulletinError, parse_period

__all__ = ["BulletinError", "Bulletin", "build", "default_period", "parse_period", "latest"]

FILES = ("bulletin.html", "bulletin.pdf", "bulletin.json")


@dataclass(frozen=True)
class Bulletin:
    period: dt.date
    lang: str
    html: Path
    pdf: Path
    manifest: Path
    charts: int


def bulletins_root(cfg) -> Path:
    return cfg.home / "bulletins"


def _write(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


def default_period(home=None) -> dt.date:
    """The month a bulletin made now reports on: the latest month with published monthly figures."""
    from transforms.config import settings
    from transforms.publish.bulletin.data import latest_month
    from transforms.storage.warehouse import open_for_reading

    wh = open_for_reading(settings(home))
    try:
        month = latest_month(wh)
    finally:
        wh.close()
    if month is None:
        raise BulletinError("the warehouse publishes no monthly figure yet: load a file first (make demo)")
    return month


def build(period: dt.date, lang: str, out: Path, home=None, since: str | None = None) -> Bulletin:
    """Make the bulletin of ``period`` in ``lang`` into ``out``; ``since`` (an ISO time) overrides
    when the last bulletin was made (default: the newest ``bulletin.json`` of an earlier month under
    ``$OMH_HOME/bulletins`` in that language). Everything is rendered before any file of ``out``
    is replaced: a failure leaves the previous bulletin whole."""
    from transforms.config import settings
    from transforms.publish.bulletin import charts as charting
    from transforms.publish.bulletin import html, pdf
    from transforms.publish.bulletin.data import gather, last_bulletin_time
    from transforms.publish.bulletin.labels import check_lang
    from transforms.storage.warehouse import WarehouseError, open_for_reading

    lang = check_lang(lang)
    cfg = settings(home)
    if since is None:
        since = last_bulletin_time(bulletins_root(cfg), lang, period)
    try:
        wh = open_for_reading(cfg)
    except WarehouseError as exc:
        raise BulletinError(str(exc)) from exc
    try:
        data = gather(wh, period, lang, since)
    finally:
        wh.close()
    charts = charting.all_charts(data, lang)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path, manifest = (out / name for name in FILES)
    page = html.render(data, charts, lang).encode("utf-8")
    tmp_pdf = out / f".bulletin.pdf.{os.getpid()}.tmp"
    try:
        pdf.render(data, charts, lang, tmp_pdf)
    except BaseException:
        tmp_pdf.unlink(missing_ok=True)
        raise
    _write(html_path, page)
    tmp_pdf.replace(pdf_path)
    info = {
        "period": f"{period:%Y-%m}",
        "lang": lang,
        "generated_at": data.generated_at,
        "revisions_since": since,
        "charts": [c.key for c in charts],
        "headline_figures": sum(len(h["regions"]) for h in data.headline),
        "mirror": data.mirror is not None,
        "not_reported": [m["iso3"] for m in data.not_reported],
        "files": list(FILES[:2]),
    }
    _write(manifest, json.dumps(info, indent=2, ensure_ascii=False).encode("utf-8"))
    return Bulletin(period, lang, html_path, pdf_path, manifest, len(charts))


def latest(home=None) -> list[dict]:
    """The newest bulletin's files per language under ``$OMH_HOME/bulletins/<YYYY-MM>/<lang>/``,
    as paths relative to that folder (what the Observatory page links)."""
    from transforms.config import settings

    root = bulletins_root(settings(home))
    found: dict[str, dict] = {}
    for manifest in sorted(root.glob("*/*/bulletin.json")):
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        lang, period = manifest.parent.name, manifest.parent.parent.name
        if not (manifest.parent / "bulletin.html").is_file():
            continue
        if lang not in found or period >= found[lang]["period"]:
            found[lang] = {
                "period": period,
                "lang": lang,
                "generated_at": info.get("generated_at"),
                "html": f"{period}/{lang}/bulletin.html",
                "pdf": f"{period}/{lang}/bulletin.pdf"
                if (manifest.parent / "bulletin.pdf").is_file()
                else None,
            }
    return sorted(found.values(), key=lambda b: b["lang"])

"""The ``omh`` command: run the pipeline outside the scheduler, check files, query the warehouse.

Exit codes of ``check`` and ``ingest``: 0 loads (or already loaded), 1 refused, 2 cannot be read,
4 the embedded warehouse stayed busy with another load longer than ``--wait`` (nothing changed).
No traceback reaches the user: the full trace goes to ``$OMH_HOME/logs/omh.log``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_REFUSED, EXIT_UNREADABLE, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3, 4


def _setup_logging(verbose: bool) -> None:
    from transforms.config import MaskSecrets, settings

    logs = settings().logs
    handlers: list[logging.Handler] = []
    try:
        logs.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logs / "omh.log", encoding="utf-8", errors="backslashreplace"))
    except OSError:
        pass
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.CRITICAL + 1)
    handlers.append(console)
    for handler in handlers:  # a connection's password never reaches the log or the screen
        handler.addFilter(MaskSecrets())
    logging.basicConfig(
        level=logging.INFO,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("great_expectations", "py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_sources(args) -> int:
    from transforms.contracts.loading import load_contracts

    for c in load_contracts().values():
        reporter = c.reporter or "(per row)"
        print(f"{c.source_id}\t{reporter}\t{c.conference or ''}\t{c.reader.format}\t{c.title}")
    return EXIT_OK


def one_line(text, limit: int = 500) -> str:
    """A message as one printable line: control characters (a newline in a file name) escaped,
    and at most ``limit`` characters (a refused value may be a 100 kB field)."""
    out = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
    return out if len(out) <= limit else out[: limit - 1] + "…"


def error_line(text, limit: int = 1000) -> str:
    """An error as one line the user reads: the message's own lines (a database's CONTEXT, a
    contract's several problems) joined by " — " instead of shown as a literal ``\\n``, every
    other control character escaped, at most ``limit`` characters."""
    parts = [line.strip() for line in str(text).splitlines() if line.strip()]
    return one_line(" — ".join(parts), limit)


def _exit_for(result) -> int:
    if result.status in ("loaded", "skipped"):
        return EXIT_OK
    return EXIT_UNREADABLE if result.status == "unreadable" else EXIT_REFUSED


def cmd_contract_lint(args) -> int:
    """Every problem of each contract file, with its line and the closest valid key; 0 or 2."""
    from transforms.contracts.loading import contract_problems

    bad = 0
    for path in args.files:
        _, problems = contract_problems(path)
        for problem in problems:
            print(one_line(problem, 1000), file=sys.stderr)
        if problems:
            bad += 1
        else:
            print(f"{path}: ok")
    return EXIT_UNREADABLE if bad else EXIT_OK


def cmd_check(args) -> int:
    from transforms.contracts.loading import get_contract
    from transforms.contracts.model import ContractError
    from transforms.ingest.pipeline import check_file
    from transforms.messages import label, language, translate

    try:
        contract = get_contract(args.source)
    except ContractError as exc:  # a contract that cannot be used: the file cannot be read with it
        print(error_line(f"omh check: {exc}"), file=sys.stderr)
        return EXIT_UNREADABLE
    lang = language(args.lang, contract.language)
    result = check_file(args.file, args.source, report=args.report, lang=lang)
    if result.ok:
        print(label("would_load", lang, file=result.file, n=result.rows))
    else:
        print_problems(result, lang)
    for w in result.warnings:
        print(f"{label('warning', lang)}: {one_line(translate(w, lang))}")
    if result.report:
        print(f"report: {one_line(result.report, 4096)}")
    return _exit_for(result)


SHOWN_PROBLEMS = 50  # a huge file's problems are counted; the report keeps the first ones


def print_problems(result, lang: str = "en", out=None) -> None:
    """Every problem of a refused file, in two groups: what the sender fixes in the file, and the
    labels the observatory may map instead; in ``lang``, capped at ``SHOWN_PROBLEMS``."""
    from transforms.messages import label, translate

    out = out or sys.stdout
    name = result.file
    lines = [
        p[len(name) + 2 :] if p.startswith(f"{name}: ") else p for p in result.problems or [result.reason]
    ]
    labels = [p for p in lines if "unknown" in p and " label " in p]
    in_file = [p for p in lines if p not in labels]
    verdict = "cannot_read" if result.status == "unreadable" else "would_refuse"
    print(label(verdict, lang, file=name, n=len(lines)), file=out)
    shown = 0
    for title, group in (("fix_in_file", in_file), ("labels_unknown", labels)):
        if not group:
            continue
        print(label(title, lang), file=out)
        for line in group:
            if shown == SHOWN_PROBLEMS:
                print(f"  {label('more', lang, n=len(lines) - shown)}", file=out)
                return
            print(f"  {one_line(translate(line, lang))}", file=out)
            shown += 1


def cmd_ingest(args) -> int:
    from transforms.ingest.pipeline import ingest_file

    result = ingest_file(args.file, args.source)
    print(one_line(result.reason), file=sys.stdout if result.ok else sys.stderr)
    if result.report and not result.ok:
        print(f"report: {one_line(result.report, 4096)}", file=sys.stderr)
    return _exit_for(result)


def cmd_sql(args) -> int:
    from transforms.config import settings
    from transforms.storage.warehouse import open_for_reading
    from transforms.tools.export import read_only_query

    with open_for_reading(settings()) as wh:
        cols, rows = read_only_query(wh, args.query)
    if args.csv:
        from transforms.stages.guard import write_csv
        from transforms.tools.export import whole_numbers

        write_csv(
            sys.stdout, cols, whole_numbers(rows)
        )  # text cells starting with =, +, - or @ get a ' prefix
        return EXIT_OK
    widths = [
        max(len(str(c)), *(len(_fmt(r[i])) for r in rows)) if rows else len(str(c))
        for i, c in enumerate(cols)
    ]
    print("  ".join(str(c).ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(v).ljust(w) for v, w in zip(r, widths, strict=True)))
    print(f"({len(rows)} rows)")
    return EXIT_OK


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return f"{int(v)}"
    return str(v)


def cmd_export(args) -> int:
    from transforms.tools.export import export

    n = export(args.out, view=args.view, query=args.query)
    print(f"{args.out}: {n} rows (cells starting with =, +, - or @ are prefixed with ')")
    return EXIT_OK


def cmd_sdmx(args) -> int:
    from transforms.publish.sdmx import SdmxError, compare, read_back, write_sdmx_files

    out = Path(args.out)
    try:
        written = write_sdmx_files(out, flows=args.dataflow)
        read = read_back(out, list(written))
    except SdmxError as exc:
        print(f"omh sdmx: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    s = read["structure"]
    print(
        f"{out / 'structure.xml'}: {', '.join(s['dsd'])}, {s['codelists']} code lists, dataflows {', '.join(s['dataflows'])}"
    )
    print(
        f"{'file':<24} {'from view':<20} {'observations':>12} {'suppressed':>10} {'sum OBS_VALUE':>16}  read back"
    )
    for fid, w in written.items():
        for ext in ("csv", "xml"):
            r = read[f"{fid}.{ext}"]
            same = r["observations"] == w["observations"] and not r["problems"]
            print(
                f"{fid + '.' + ext:<24} {w['view']:<20} {r['observations']:>12,} {w['suppressed']:>10,} "
                f"{r['sum']:>16,.0f}  {'valid, equal to the view' if same else 'DIFFERS'}"
            )
    problems = compare(written, read)
    for p in problems:
        print(f"omh sdmx: {p}", file=sys.stderr)
    return EXIT_REFUSED if problems else EXIT_OK


def cmd_bulletin(args) -> int:
    from transforms.publish.bulletin import BulletinError, build, default_period, parse_period

    try:
        period = parse_period(args.period) if args.period else default_period()
        out = Path(args.out) if args.out else None
        if out is None:
            from transforms.config import settings
            from transforms.publish.bulletin import bulletins_root

            out = bulletins_root(settings()) / f"{period:%Y-%m}" / args.lang
        made = build(period, args.lang, out)
    except BulletinError as exc:
        print(error_line(f"omh bulletin: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    print(f"{made.html} ({made.charts} charts)")
    print(made.pdf)
    return EXIT_OK


def cmd_dismiss(args) -> int:
    import getpass

    from transforms.config import settings
    from transforms.ingest.landing import sha256_of
    from transforms.storage.warehouse import Warehouse

    who = args.by or getpass.getuser()
    with Warehouse(settings(), purpose=f"the dismissal of {Path(args.file).name}") as wh:
        name = wh.dismiss(args.source, sha256_of(Path(args.file)), who, args.reason)
    print(f"{name}: dismissed by {who} ({args.reason}); later runs of {args.source} leave it aside")
    return EXIT_OK


def cmd_suites(args) -> int:
    from transforms.contracts.loading import load_contracts
    from transforms.stages.validate import write_suites

    for path in write_suites(load_contracts()):
        print(path)
    return EXIT_OK


def cmd_samples(args) -> int:
    from transforms.tools.samples import write_samples
    from transforms.tools.samples_mirror import write_mirror_samples

    where, year = Path(args.out) if args.out else None, [args.year] if args.year else []
    written = write_samples(where, *year)
    counterparts = write_mirror_samples(where, *year)
    print(f"{len(written)} landing files written, and {len(counterparts)} counterpart feeds (mirror pairs)")
    return EXIT_OK


def cmd_demo(args) -> int:
    from transforms.tools.demo import run_demo

    return run_demo()


def cmd_airflow(args) -> int:
    from transforms.ops.airflow_env import run_standalone
    from transforms.tools.demo import seed_landing

    print(seed_landing(), flush=True)
    return run_standalone()


def cmd_cluster(args) -> int:
    from transforms.tools.cluster import run

    return run()


def cmd_summary(args) -> int:
    from transforms.ingest.pipeline import summary

    rows = summary()
    print(f"{'reporter':8} {'conf':4} {'files':>5} {'refused':>7} {'observations':>12}  periods")
    for r in rows:
        periods = f"{r['first_period']} .. {r['last_period']}" if r["first_period"] else "-"
        print(
            f"{r['reporter_iso3']:8} {r['conference'] or '':4} {r['files']:>5} {r['refused']:>7} "
            f"{r['observations']:>12}  {periods}"
        )
    return EXIT_OK


def cmd_verify(args) -> int:
    from transforms.storage.verify import main as verify

    return verify(repair=args.repair)


def _command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand that also takes ``-v`` after its name (``omh check FILE --source ID -v``);
    left out there, the ``-v`` given before the command stands."""
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress to stderr"
    )
    return sub.add_parser(name, parents=[verbose], **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omh", description="Observatorio de Movilidad Humana data pipeline")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True)
    _command(sub, "sources", help="list source ids (first column) with reporter and title").set_defaults(
        func=cmd_sources
    )
    c = _command(sub, "check", help="validate a file against its contract; nothing is stored")
    c.add_argument("file")
    c.add_argument("--source", required=True)
    c.add_argument("--report", help="write the HTML validation report here")
    c.add_argument(
        "--lang", choices=["es", "en", "pt", "fr"], help="messages' language (default: the contract's)"
    )
    c.set_defaults(func=cmd_check)
    k = _command(sub, "contract", help="work on source contracts")
    ksub = k.add_subparsers(dest="action", required=True)
    lint = ksub.add_parser("lint", help="check contract files against the schema (docs/contracts.md); 0 or 2")
    lint.add_argument("files", nargs="+", metavar="FILE")
    lint.set_defaults(func=cmd_contract_lint)
    i = _command(sub, "ingest", help="the whole pipeline for one file")
    i.add_argument("file")
    i.add_argument("--source", required=True)
    _wait_flag(i)
    i.set_defaults(func=cmd_ingest)
    d = _command(sub, "dismiss", help="set a refused landing file aside: later runs do not try it again")
    d.add_argument("file")
    d.add_argument("--source", required=True)
    d.add_argument("--reason", required=True, help="why (kept with who and when)")
    d.add_argument("--by", help="who dismisses it (default: the login name)")
    d.set_defaults(func=cmd_dismiss)
    q = _command(sub, "sql", help="run a query on the warehouse (read-only)")
    q.add_argument("query")
    q.add_argument("--csv", action="store_true")
    q.set_defaults(func=cmd_sql)
    e = _command(
        sub, "export", help="write a view or a query to CSV, XLSX or Parquet (read-only, formula-safe)"
    )
    e.add_argument("out", help="output file, .csv, .xlsx or .parquet")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--view", help="a warehouse view, e.g. pub_flow_by_period")
    what.add_argument("--query", help="a SELECT on the warehouse")
    e.set_defaults(func=cmd_export)
    x = _command(
        sub, "sdmx", help="write the published figures as SDMX (structure, SDMX-CSV 2.0, SDMX-ML 3.0)"
    )
    x.add_argument("--out", required=True, help="output folder")
    x.add_argument(
        "--dataflow",
        action="append",
        choices=["DF_FLOW_BY_PERIOD", "DF_CORRIDOR"],
        help="only this dataflow (repeatable; default: all)",
    )
    x.set_defaults(func=cmd_sdmx)
    b = _command(sub, "bulletin", help="the monthly bulletin (HTML and PDF) from the pub_* views")
    b.add_argument("--period", help="the month, YYYY-MM (default: the latest with published monthly figures)")
    b.add_argument("--lang", choices=["es", "en", "pt", "fr"], default="es", help="language (default es)")
    b.add_argument(
        "--out",
        help="folder for bulletin.html and bulletin.pdf (default $OMH_HOME/bulletins/<period>/<lang>)",
    )
    b.set_defaults(func=cmd_bulletin)
    _command(sub, "suites", help="regenerate expectations/*.json from contracts and code lists").set_defaults(
        func=cmd_suites
    )
    s = _command(
        sub,
        "samples",
        help="write the sample landing files of all 23 member states and the mirror pairs' counterpart feeds",
    )
    s.add_argument("--out", help="landing folder (default $OMH_HOME/landing)")
    s.add_argument(
        "--year", type=int, help="the year the files report (default 2024, the year of their figures)"
    )
    s.set_defaults(func=cmd_samples)
    _command(sub, "demo", help="land samples and real files, run every DAG through Airflow").set_defaults(
        func=cmd_demo
    )
    _command(sub, "summary", help="per-country summary of what is loaded").set_defaults(func=cmd_summary)
    v = _command(sub, "verify", help="compare lake and warehouse per partition (rows, sums); 1 on a mismatch")
    v.add_argument("--repair", action="store_true", help="rewrite differing lake leaves from the warehouse")
    _wait_flag(v)
    v.set_defaults(func=cmd_verify)
    _command(sub, "airflow", help="Airflow standalone + Observatory on 127.0.0.1:8080").set_defaults(
        func=cmd_airflow
    )
    _command(
        sub, "cluster", help="Airflow with CeleryExecutor, 2 workers, PostgreSQL and Redis (production shape)"
    ).set_defaults(func=cmd_cluster)
    return p


def _wait_flag(parser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="how long to wait for another load of the embedded warehouse to finish "
        "(default $OMH_WRITE_WAIT, else 1800; 0: do not wait)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    if getattr(args, "wait", None) is not None:
        import os

        from transforms.storage.writelock import WAIT_ENV

        if not 0 <= args.wait < float("inf"):
            print(f"omh {args.command}: --wait takes a number of seconds, 0 or more", file=sys.stderr)
            return EXIT_USAGE
        os.environ[WAIT_ENV] = str(args.wait)  # read where the lock is taken
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `omh sql ... | head`: the reader stopped reading; end quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the user gets one line; the log gets the trace
        logging.getLogger("omh").exception("omh %s failed", args.command)
        from transforms.contracts.model import ContractError
        from transforms.storage.writelock import WarehouseBusy

        if isinstance(exc, WarehouseBusy):  # plain words, no exception class
            print(error_line(f"omh {args.command}: {exc}"), file=sys.stderr)
            return EXIT_BUSY
        code = EXIT_USAGE if isinstance(exc, ContractError) else EXIT_REFUSED
        from transforms.config import mask_secrets

        print(error_line(mask_secrets(f"omh {args.command}: {_kind(exc)}{exc}")), file=sys.stderr)
        return code


def _kind(exc: Exception) -> str:
    """The exception's class as a prefix, except for the project's own errors, whose messages
    already say what went wrong in plain words."""
    if type(exc).__module__.startswith("transforms."):
        return ""
    return f"{exc.__class__.__name__}: "


if __name__ == "__main__":
    sys.exit(main())

"""SDMX output: the observatory's published figures as SDMX, with pysdmx (decision 0009).

``write_sdmx_files(out)`` writes, from the ``pub_*`` views (disclosure-controlled):

* ``structure.xml``: the structure (SDMX-ML 3.0): the code lists of ``data/codelists/`` with their
  names in es/en/pt/fr, the concept scheme, the Data Structure Definition ``OMH:DSD_OMH_MIG`` and
  one dataflow per published view;
* ``<DATAFLOW>.csv`` (SDMX-CSV 2.0) and ``<DATAFLOW>.xml`` (SDMX-ML 3.0 structure-specific data),
  one observation per row of the view: a suppressed cell is a missing OBS_VALUE with
  CONF_STATUS ``C``, a published one CONF_STATUS ``F``; OBS_STATUS comes from the facts.

``read_back(out)`` reads the files again with pysdmx (the XML ones validated against the SDMX-ML
schemas), checks every dataset against the structure it read (``validate_dataset``) and returns
the counts and sums per dataflow and format, which ``omh sdmx`` compares with the view.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from transforms.contracts import codelists

log = logging.getLogger("omh.sdmx")

AGENCY = "OMH"
VERSION = "1.0"
DSD_ID = "DSD_OMH_MIG"
LANGS = ("es", "en", "pt", "fr")
STRUCTURE_FILE = "structure.xml"


@dataclass(frozen=True)
class Flow:
    """A dataflow: the pub_* view it publishes and the columns that give its dimensions."""

    id: str
    view: str
    names: dict[str, str]
    citizenship: str | None  # the view's citizenship column; None: all citizenships (_T)


DATAFLOWS = {
    "DF_FLOW_BY_PERIOD": Flow(
        "DF_FLOW_BY_PERIOD",
        "pub_flow_by_period",
        {
            "es": "Flujos por país informante, tipo de flujo y período",
            "en": "Flows by reporting country, flow type and period",
            "pt": "Fluxos por país informante, tipo de fluxo e período",
            "fr": "Flux par pays déclarant, type de flux et période",
        },
        None,
    ),
    "DF_CORRIDOR": Flow(
        "DF_CORRIDOR",
        "pub_corridor",
        {
            "es": "Corredores: flujos por nacionalidad y país informante",
            "en": "Corridors: flows by citizenship and reporting country",
            "pt": "Corredores: fluxos por nacionalidade e país informante",
            "fr": "Corridors : flux par nationalité et pays déclarant",
        },
        "citizenship_iso3",
    ),
}

# Concept id -> (names es/en/pt/fr, code list id or None). Order of the dimensions = the key.
CONCEPTS = {
    "REF_AREA": (("País informante", "Reporting country", "País informante", "Pays déclarant"), "CL_AREA"),
    "FLOW_TYPE": (("Tipo de flujo", "Flow type", "Tipo de fluxo", "Type de flux"), "CL_FLOW_TYPE"),
    "CITIZENSHIP": (("Nacionalidad", "Citizenship", "Nacionalidade", "Nationalité"), "CL_AREA"),
    "COUNTERPART_AREA": (
        ("País contraparte", "Counterpart country", "País contraparte", "Pays partenaire"),
        "CL_AREA",
    ),
    "SEX": (("Sexo", "Sex", "Sexo", "Sexe"), "CL_SEX"),
    "AGE": (("Edad", "Age", "Idade", "Âge"), "CL_AGE"),
    "UNIT_MEASURE": (
        ("Unidad de medida", "Unit of measure", "Unidade de medida", "Unité de mesure"),
        "CL_UNIT",
    ),
    "FREQ": (("Frecuencia", "Frequency", "Frequência", "Fréquence"), "CL_FREQ"),
    "TIME_PERIOD": (("Período", "Time period", "Período", "Période"), None),
    "OBS_VALUE": (("Valor", "Observation value", "Valor", "Valeur"), None),
    "OBS_STATUS": (
        ("Estado de la observación", "Observation status", "Estado da observação", "Statut de l'observation"),
        "CL_OBS_STATUS",
    ),
    "CONF_STATUS": (
        ("Confidencialidad", "Confidentiality status", "Confidencialidade", "Confidentialité"),
        "CL_CONF_STATUS",
    ),
}
DIMENSIONS = (
    "REF_AREA",
    "FLOW_TYPE",
    "CITIZENSHIP",
    "COUNTERPART_AREA",
    "SEX",
    "AGE",
    "UNIT_MEASURE",
    "FREQ",
)
ATTRIBUTES = ("OBS_STATUS", "CONF_STATUS")

FREQ_CODES = {
    "A": ("Anual", "Annual", "Anual", "Annuel"),
    "Q": ("Trimestral", "Quarterly", "Trimestral", "Trimestriel"),
    "M": ("Mensual", "Monthly", "Mensal", "Mensuel"),
}
CONF_CODES = {
    "F": ("Libre", "Free", "Livre", "Libre"),
    "C": (
        "Confidencial (no publicado)",
        "Confidential (not published)",
        "Confidencial (não publicado)",
        "Confidentiel (non publié)",
    ),
}
# Several facts make one published figure: its status is the first of these the facts carry
# (a break in series or a provisional figure says more than an estimate), else A.
OBS_STATUS_ORDER = ("B", "P", "E", "R", "S", "M")


def sdmx_code(code: str) -> str:
    """A code as SDMX allows it (letters, digits, _ @ $ -): a child flow type's dot becomes "_"
    (IRR_ENC.APP -> IRR_ENC_APP)."""
    return code.replace(".", "_")


class SdmxError(RuntimeError):
    """The SDMX files could not be written or do not hold what the views hold."""


# ---------------------------------------------------------------------------- code lists


def _names(row: dict, prefix: str) -> dict[str, str]:
    return {lang: (row.get(f"{prefix}_{lang}") or "").strip() for lang in LANGS}


def code_lists() -> dict[str, dict[str, dict[str, str]]]:
    """Code list id -> code -> names by language, from ``data/codelists/`` (and the SDMX lists of
    frequency and confidentiality, which the observatory does not keep as files)."""
    area = {r["iso3"]: _names(r, "name") for r in codelists.load("countries")}
    area.setdefault(
        "_T",
        dict(
            zip(
                LANGS,
                (
                    "Todas las nacionalidades",
                    "All citizenships",
                    "Todas as nacionalidades",
                    "Toutes nationalités",
                ),
                strict=True,
            )
        ),
    )
    sex = {r["code"]: _names(r, "label") for r in codelists.load("sex")}
    sex.setdefault(
        "_T", dict(zip(LANGS, ("Ambos sexos", "Total", "Ambos os sexos", "Les deux sexes"), strict=True))
    )
    lists = {
        "CL_AREA": area,
        "CL_FLOW_TYPE": {sdmx_code(r["code"]): _names(r, "label") for r in codelists.load("flow_types")},
        "CL_SEX": sex,
        "CL_AGE": {r["code"]: _names(r, "label") for r in codelists.load("age_bands")},
        "CL_UNIT": {r["code"]: _names(r, "label") for r in codelists.load("units")},
        "CL_OBS_STATUS": {r["code"]: _names(r, "label") for r in codelists.load("obs_status")},
        "CL_FREQ": {c: dict(zip(LANGS, n, strict=True)) for c, n in FREQ_CODES.items()},
        "CL_CONF_STATUS": {c: dict(zip(LANGS, n, strict=True)) for c, n in CONF_CODES.items()},
    }
    flow_types = [r["code"] for r in codelists.load("flow_types")]
    if len(lists["CL_FLOW_TYPE"]) != len(flow_types):
        raise SdmxError("data/codelists/flow_types.csv: two codes give the same SDMX code (a dot read as _)")
    for cl, codes in lists.items():
        for code, names in codes.items():
            for lang in LANGS:  # a name missing in a language falls back to English, then the code
                names[lang] = names[lang] or names.get("en") or code
            if not code:
                raise SdmxError(f"{cl}: an empty code")
    return lists


CODELIST_NAMES = {
    "CL_AREA": "Countries and areas",
    "CL_FLOW_TYPE": "Flow types",
    "CL_SEX": "Sex",
    "CL_AGE": "Age bands",
    "CL_UNIT": "Units of measure",
    "CL_OBS_STATUS": "Observation status",
    "CL_FREQ": "Frequency",
    "CL_CONF_STATUS": "Confidentiality status",
}


# ---------------------------------------------------------------------------- the structure


def structures(flows: list[str] | None = None):
    """The pysdmx artefacts: code lists, concept scheme, DSD and the dataflows."""
    from pysdmx.model import (
        Code,
        Codelist,
        Component,
        Components,
        Concept,
        ConceptScheme,
        Dataflow,
        DataStructureDefinition,
        DataType,
        Role,
    )

    lists = {
        cl: Codelist(
            id=cl,
            agency=AGENCY,
            version=VERSION,
            name=CODELIST_NAMES[cl],
            items=[Code(id=code, name=names["en"]) for code, names in codes.items()],
        )
        for cl, codes in code_lists().items()
    }
    concepts = {
        cid: Concept(
            id=cid,
            name=names[1],
            dtype=DataType.DOUBLE if cid == "OBS_VALUE" else None,
            urn=f"urn:sdmx:org.sdmx.infomodel.conceptscheme.Concept={AGENCY}:CS_OMH_MIG({VERSION}).{cid}",
        )
        for cid, (names, _) in CONCEPTS.items()
    }
    scheme = ConceptScheme(
        id="CS_OMH_MIG",
        agency=AGENCY,
        version=VERSION,
        name="OMH migration concepts",
        items=list(concepts.values()),
    )

    def component(cid: str, role, required: bool = True, dtype=DataType.STRING, level=None):
        cl = CONCEPTS[cid][1]
        return Component(
            id=cid,
            required=required,
            role=role,
            concept=concepts[cid],
            local_dtype=dtype,
            local_codes=lists[cl] if cl else None,
            attachment_level=level,
        )

    comps = [component(d, Role.DIMENSION) for d in DIMENSIONS]
    comps.append(component("TIME_PERIOD", Role.DIMENSION, dtype=DataType.PERIOD))
    comps.append(component("OBS_VALUE", Role.MEASURE, required=False, dtype=DataType.DOUBLE))
    comps += [component(a, Role.ATTRIBUTE, required=True, level="O") for a in ATTRIBUTES]
    dsd = DataStructureDefinition(
        id=DSD_ID,
        agency=AGENCY,
        version=VERSION,
        name="OMH human mobility flows",
        components=Components(comps),
    )
    dataflows = [
        Dataflow(id=f.id, agency=AGENCY, version=VERSION, name=f.names["en"], structure=dsd)
        for f in (DATAFLOWS[i] for i in (flows or DATAFLOWS))
    ]
    return list(lists.values()), scheme, dsd, dataflows


def _add_languages(xml: str) -> str:
    """pysdmx writes names in English only: add the es/pt/fr names of every code, concept and
    dataflow beside it (SDMX-ML allows one Name per language)."""
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"))
    com = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/common"
    lang_attr = "{http://www.w3.org/XML/1998/namespace}lang"
    lists = code_lists()
    names: dict[tuple[str, str], dict[str, str]] = {}
    for cl, codes in lists.items():
        for code, n in codes.items():
            names[(cl, code)] = n
    for cid, (n, _) in CONCEPTS.items():
        names[("CS_OMH_MIG", cid)] = dict(zip(LANGS, n, strict=True))
    for f in DATAFLOWS.values():
        names[("", f.id)] = f.names
    for item in root.iter():
        tag = etree.QName(item).localname
        if tag not in ("Code", "Concept", "Dataflow") or item.get("id") is None:
            continue
        parent = "" if tag == "Dataflow" else item.getparent().get("id")
        n = names.get((parent, item.get("id")))
        english = item.find(f"{{{com}}}Name")
        if not n or english is None:
            continue
        at = english
        for lang in ("es", "pt", "fr"):
            extra = etree.Element(f"{{{com}}}Name")
            extra.set(lang_attr, lang)
            extra.text = n[lang]
            extra.tail = english.tail
            at.addnext(extra)
            at = extra
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode("utf-8")


# ---------------------------------------------------------------------------- the data


def _time_period(period_type: str, start: dt.date, end: dt.date) -> tuple[str, str]:
    """FREQ and TIME_PERIOD of a period (a year not starting in January is a time range)."""
    if period_type == "M":
        return "M", f"{start:%Y-%m}"
    if period_type == "Q" and start.month in (1, 4, 7, 10):
        return "Q", f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if period_type in ("Y", "A"):
        if (start.month, start.day) == (1, 1):
            return "A", str(start.year)
        return "A", f"{start.isoformat()}/P1Y"
    raise SdmxError(f"period {start}..{end} of type {period_type!r} has no SDMX frequency here")


def _obs_status(wh, flow: Flow) -> dict[tuple, str]:
    """OBS_STATUS of each published figure, from the facts it adds up."""
    cit = "citizenship_iso3" if flow.citizenship else "CAST(NULL AS VARCHAR)"
    cols, rows = wh.query(
        f"SELECT reporter_iso3, {cit} AS citizenship_iso3, flow_type, unit, period_type, period_start, "
        "period_end, obs_status, count(*) AS n FROM fact_flow "
        f"GROUP BY reporter_iso3, {cit}, flow_type, unit, period_type, period_start, period_end, obs_status"
    )
    seen: dict[tuple, set[str]] = {}
    for r in rows:
        seen.setdefault(tuple(r[:7]), set()).add(r[7] or "A")
    out = {}
    for key, flags in seen.items():
        out[key] = next((f for f in OBS_STATUS_ORDER if f in flags), "A")
    return out


def dataset_frame(wh, flow: Flow) -> pd.DataFrame:
    """The rows of the flow's view as SDMX observations (one per row, in a stable order)."""
    cit = flow.citizenship or "CAST(NULL AS VARCHAR)"
    cols, rows = wh.query(
        f"SELECT reporter_iso3, {cit} AS citizenship_iso3, flow_type, unit, period_type, period_start, "
        f"period_end, value, suppressed FROM {flow.view} "
        "ORDER BY reporter_iso3, citizenship_iso3, flow_type, unit, period_type, period_start"
    )
    status = _obs_status(wh, flow)
    records = []
    for reporter, citizenship, flow_type, unit, ptype, start, end, value, suppressed in rows:
        freq, period = _time_period(ptype, start, end)
        published = value is not None and not suppressed
        records.append(
            {
                "REF_AREA": reporter,
                "FLOW_TYPE": sdmx_code(flow_type),
                "CITIZENSHIP": citizenship or "_T",
                "COUNTERPART_AREA": "_T",
                "SEX": "_T",
                "AGE": "_T",
                "UNIT_MEASURE": unit,
                "FREQ": freq,
                "TIME_PERIOD": period,
                "OBS_VALUE": float(value) if published else math.nan,
                "OBS_STATUS": status.get((reporter, citizenship, flow_type, unit, ptype, start, end), "A"),
                "CONF_STATUS": "F" if published else "C",
            }
        )
    columns = [*DIMENSIONS, "TIME_PERIOD", "OBS_VALUE", *ATTRIBUTES]
    return pd.DataFrame(records, columns=columns)


def _schema(dsd, dataflow):
    from pysdmx.model import Schema

    return Schema(
        context="dataflow", agency=AGENCY, id=dataflow.id, version=VERSION, components=dsd.components
    )


def write_sdmx_files(out: Path, home=None, flows: list[str] | None = None, wh=None) -> dict:
    """Write the structure and the data of ``flows`` (default: every dataflow) under ``out``.
    Returns, per dataflow, the view, the files and the view's observation count and sum.
    ``wh``: an open warehouse to read (default: the installation's, opened for reading)."""
    from transforms.config import settings
    from transforms.storage.warehouse import open_for_reading

    unknown = sorted(set(flows or ()) - set(DATAFLOWS))
    if unknown:
        raise SdmxError(f"unknown dataflow {unknown}; known: {', '.join(DATAFLOWS)}")
    if wh is None:
        with open_for_reading(settings(home)) as reader:
            return _write(Path(out), list(flows or DATAFLOWS), reader)
    return _write(Path(out), list(flows or DATAFLOWS), wh)


def _write(out: Path, chosen: list[str], wh) -> dict:
    from pysdmx.io import write_sdmx
    from pysdmx.io.format import Format
    from pysdmx.io.pd import PandasDataset

    out.mkdir(parents=True, exist_ok=True)
    lists, scheme, dsd, dataflows = structures(chosen)
    xml = write_sdmx([*lists, scheme, dsd, *dataflows], Format.STRUCTURE_SDMX_ML_3_0)
    _replace(out / STRUCTURE_FILE, _add_languages(xml))
    summary = {}
    for dataflow in dataflows:
        flow = DATAFLOWS[dataflow.id]
        frame = dataset_frame(wh, flow)
        count, total = _view_totals(wh, flow.view)
        if len(frame) != count:
            raise SdmxError(f"{flow.view}: {count} rows, {len(frame)} observations")
        ds = PandasDataset(structure=_schema(dsd, dataflow), data=frame)
        _replace(out / f"{dataflow.id}.csv", write_sdmx(ds, Format.DATA_SDMX_CSV_2_0_0))
        _replace(out / f"{dataflow.id}.xml", write_sdmx(ds, Format.DATA_SDMX_ML_3_0))
        summary[dataflow.id] = {
            "view": flow.view,
            "observations": count,
            "sum": total,
            "suppressed": int((frame["CONF_STATUS"] == "C").sum()),
            "files": [f"{dataflow.id}.csv", f"{dataflow.id}.xml"],
        }
        log.info("%s: %d observations from %s", dataflow.id, count, flow.view)
    return summary


def _view_totals(wh, view: str) -> tuple[int, float]:
    count, total = wh.fetchall(f"SELECT count(*), coalesce(sum(value), 0) FROM {view}")[0]
    return int(count), float(total)


def _replace(path: Path, text: str | None) -> None:
    """Write a whole file or nothing: a temporary file renamed over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text or "", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------- reading back


def _missing_as_none(value) -> str | None:
    """An OBS_VALUE as text, None when missing (NaN, empty, or SDMX's "NaN")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text in ("", "NaN", "nan", "<NA>") else text


def validate_dataset(dataset) -> list[str]:
    """Problems of a dataset read back against the structure pysdmx gave it: every component of
    the structure present, every coded value in its code list, every required value there,
    OBS_VALUE a number, and a missing OBS_VALUE only where CONF_STATUS says it is withheld."""
    from pysdmx.model import Schema

    schema = dataset.structure
    if not isinstance(schema, Schema):
        return [f"the dataset has no structure (only {schema!r})"]
    frame = dataset.data
    problems = []
    for comp in schema.components:
        if comp.id not in frame.columns:
            problems.append(f"{comp.id}: no column")
            continue
        values = frame[comp.id]
        blank = values.isna() | (values.astype(str).str.strip() == "")
        if comp.required and comp.id != "OBS_VALUE" and blank.any():
            problems.append(f"{comp.id}: {int(blank.sum())} empty values")
        if comp.enumeration is not None:
            allowed = {c.id for c in comp.enumeration}
            bad = sorted(set(values[~blank].astype(str)) - allowed)
            if bad:
                problems.append(f"{comp.id}: codes not in {comp.enumeration.id}: {bad[:5]}")
    if "OBS_VALUE" in frame.columns:
        text = frame["OBS_VALUE"].astype(object).map(_missing_as_none)
        numbers = pd.to_numeric(text, errors="coerce")
        not_numbers = numbers.isna() & text.notna()
        if not_numbers.any():
            problems.append(f"OBS_VALUE: {int(not_numbers.sum())} values are not numbers")
        if "CONF_STATUS" in frame.columns:
            unexplained = numbers.isna() & (frame["CONF_STATUS"] != "C")
            if unexplained.any():
                problems.append(f"OBS_VALUE: {int(unexplained.sum())} missing values without CONF_STATUS C")
    return problems


def read_back(out: Path, flows: list[str] | None = None) -> dict:
    """Read ``out``'s files with pysdmx: the structure (validated against the SDMX-ML 3.0
    schemas), then each data file with it; per dataflow and format the observation count, the
    sum of OBS_VALUE and the problems ``validate_dataset`` finds."""
    from pysdmx.io import get_datasets, read_sdmx

    out = Path(out)
    structure = read_sdmx(out / STRUCTURE_FILE, validate=True)
    dsds = structure.get_data_structure_definitions()
    result: dict = {
        "structure": {
            "codelists": len(structure.get_codelists()),
            "dsd": [d.short_urn for d in dsds],
            "dataflows": [d.id for d in structure.get_dataflows()],
        }
    }
    for fid in flows or DATAFLOWS:
        for ext in ("csv", "xml"):
            path = out / f"{fid}.{ext}"
            datasets = get_datasets(path, out / STRUCTURE_FILE, validate=True)
            if len(datasets) != 1:
                raise SdmxError(f"{path.name}: {len(datasets)} datasets, expected 1")
            frame = datasets[0].data
            values = pd.to_numeric(frame["OBS_VALUE"].astype(object).map(_missing_as_none), errors="coerce")
            result[f"{fid}.{ext}"] = {
                "observations": len(frame),
                "sum": float(values.sum()),
                "problems": validate_dataset(datasets[0]),
            }
    return result


def compare(written: dict, read: dict) -> list[str]:
    """Where what was read back differs from the views it came from (count or sum), or does not
    validate against the structure; empty when the output is proven."""
    problems = []
    for fid, w in written.items():
        for ext in ("csv", "xml"):
            r = read[f"{fid}.{ext}"]
            name = f"{fid}.{ext}"
            if r["observations"] != w["observations"]:
                problems.append(
                    f"{name}: {r['observations']} observations, {w['view']} has {w['observations']}"
                )
            if not math.isclose(r["sum"], w["sum"], rel_tol=0, abs_tol=1e-6 * max(1.0, abs(w["sum"]))):
                problems.append(f"{name}: OBS_VALUE sums to {r['sum']:,.0f}, {w['view']} to {w['sum']:,.0f}")
            problems += [f"{name}: {p}" for p in r["problems"]]
    return problems

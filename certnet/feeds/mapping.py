"""Declarative mappings: how one report type's columns become harmonised event fields.

A mapping is a data file (`mappings/<provider>/<report>.yaml`), never a class per feed:

    report: scan_rdp                      # the report type, as the provider names it
    provider: Shadowserver
    feed: Accessible-RDP
    detect:                               # how a file is recognised (either is enough)
      file_name: scan_rdp                 # Shadowserver's YYYY-MM-DD-<report>-<details>.csv
      columns: [timestamp, ip, rdp_protocol]
    constants: {classification.taxonomy: vulnerable, classification.type: vulnerable-system}
    columns:
      timestamp: {field: time.source, required: true}
      ip: {field: source.ip, required: true}
      asn: {field: source.asn, zero_is_empty: true}
      tag: [{field: extra.tag}, {field: product.vulnerabilities, extract: cve}]
    dedup: [time.source, source.ip, source.port, classification.identifier]

Columns the mapping does not name are kept as `extra.<column>`. A value a field's type refuses makes
the row malformed if the field is required; otherwise the text is kept in `extra.<column>` and the
field left empty, so nothing the feed said is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from certnet.feeds import convert
from certnet.feeds.schema import EventSchema, event_schema

MAPPINGS_DIR = Path(__file__).with_name("mappings")
# What IntelMQ's deduplicator compares by default: everything but the raw line and the observation time.
DEFAULT_DEDUP_EXCLUDES = ("raw", "time.observation")
EXTRACTORS = {"cve": convert.extract_cves, "host": convert.extract_host}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class ColumnRule:
    column: str
    field: str
    required: bool = False
    zero_is_empty: bool = False
    extract: str = ""


@dataclass(frozen=True)
class Mapping:
    report: str
    provider: str
    feed: str
    rules: tuple[ColumnRule, ...]
    constants: dict[str, str] = field(default_factory=dict)
    detect_file_name: str = ""
    detect_columns: tuple[str, ...] = ()
    dedup: tuple[str, ...] = ()
    documentation: str = ""
    origin: str = ""

    @property
    def key(self) -> str:
        return f"{self.provider.lower()}/{self.report}"

    @property
    def required_columns(self) -> list[str]:
        return sorted({rule.column for rule in self.rules if rule.required})

    def output_fields(self, columns: Iterable[str]) -> list[str]:
        """The fields an input with these columns produces, in a stable order."""
        schema = event_schema()
        mapped = {rule.column for rule in self.rules}
        names = [rule.field for rule in self.rules]
        names += [*self.constants]
        names += [schema.extra_prefix + c for c in columns if c not in mapped]
        return list(dict.fromkeys(names))

    def dedup_fields(self, fields: Iterable[str]) -> list[str]:
        if self.dedup:
            return [name for name in self.dedup if name in set(fields)]
        return [name for name in fields if name not in DEFAULT_DEDUP_EXCLUDES]


@dataclass
class MappedBatch:
    """A batch in harmonised fields, the rows that must be quarantined and why."""

    table: pa.Table
    malformed: np.ndarray  # bool per row
    reasons: list[str]  # per malformed row, in row order
    coerced: int  # optional values refused and kept in extra.*


def _rules_from(column: str, spec: Any, where: str) -> list[ColumnRule]:
    if isinstance(spec, str):
        return [ColumnRule(column=column, field=spec)]
    if isinstance(spec, dict):
        unknown = set(spec) - {"field", "required", "zero_is_empty", "extract"}
        if unknown or "field" not in spec:
            raise MappingError(
                f"{where}: column {column!r} needs 'field' and knows only "
                "field, required, zero_is_empty, extract"
            )
        extract = str(spec.get("extract", ""))
        if extract and extract not in EXTRACTORS:
            raise MappingError(
                f"{where}: column {column!r}: unknown extract {extract!r} (known: {', '.join(EXTRACTORS)})"
            )
        return [
            ColumnRule(
                column=column,
                field=str(spec["field"]),
                required=bool(spec.get("required", False)),
                zero_is_empty=bool(spec.get("zero_is_empty", False)),
                extract=extract,
            )
        ]
    if isinstance(spec, list):
        return [rule for item in spec for rule in _rules_from(column, item, where)]
    raise MappingError(f"{where}: column {column!r}: expected a field name, a rule or a list of rules")


def mapping_from_dict(
    document: MappingType[str, Any], where: str, schema: EventSchema | None = None
) -> Mapping:
    schema = schema or event_schema()
    for key in ("report", "provider", "columns"):
        if not document.get(key):
            raise MappingError(f"{where}: {key!r} is missing")
    rules = [
        rule
        for column, spec in dict(document["columns"]).items()
        for rule in _rules_from(str(column), spec, where)
    ]
    constants = {str(k): str(v) for k, v in (document.get("constants") or {}).items()}
    problems = [
        f"field {rule.field!r} (column {rule.column!r})" for rule in rules if not schema.knows(rule.field)
    ]
    problems += [f"constant {name!r}" for name in constants if not schema.knows(name)]
    dedup = tuple(str(name) for name in document.get("dedup") or ())
    problems += [f"dedup field {name!r}" for name in dedup if not schema.knows(name)]
    if problems:
        raise MappingError(f"{where}: unknown " + "; unknown ".join(problems))
    detect = document.get("detect") or {}
    return Mapping(
        report=str(document["report"]),
        provider=str(document["provider"]),
        feed=str(document.get("feed") or document["report"]),
        rules=tuple(rules),
        constants=constants,
        detect_file_name=str(detect.get("file_name", "")),
        detect_columns=tuple(str(c) for c in detect.get("columns") or ()),
        dedup=dedup,
        documentation=str(document.get("documentation", "")),
        origin=where,
    )


def load_mapping(path: Path) -> Mapping:
    try:
        # The C loader where libyaml is there: two dozen mapping files load at every start.
        safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=safe_loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as error:
        raise MappingError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise MappingError(f"{path}: expected a mapping document")
    return mapping_from_dict(document, str(path))


@cache
def shipped_mappings() -> dict[str, Mapping]:
    """Every mapping shipped with certnet, by `provider/report`."""
    return mappings_in(MAPPINGS_DIR)


def mappings_in(directory: Path) -> dict[str, Mapping]:
    found: dict[str, Mapping] = {}
    for path in sorted(directory.rglob("*.yaml")) if directory.is_dir() else []:
        mapping = load_mapping(path)
        found[mapping.key] = mapping
    return found


def available_mappings(local: Path | None) -> dict[str, Mapping]:
    """The shipped mappings, overridden and extended by an installation's own (e.g. translated from
    a newer Shadowserver schema) in `local`."""
    return {**shipped_mappings(), **(mappings_in(local) if local is not None else {})}


def apply_mapping(mapping: Mapping, text: pa.Table, schema: EventSchema | None = None) -> MappedBatch:
    """Convert a table of text columns (as read) into harmonised fields."""
    schema = schema or event_schema()
    rows = text.num_rows
    malformed = np.zeros(rows, dtype=bool)
    reasons = np.full(rows, "", dtype=object)
    columns: dict[str, pa.Array] = {}
    coerced = 0
    present = set(text.column_names)
    for name in mapping.required_columns:
        if name not in present:
            raise MappingError(f"the input has no column {name!r}, which {mapping.key} requires")
    for rule in mapping.rules:
        if rule.column not in present:
            continue
        raw = text.column(rule.column).combine_chunks()
        result = _convert_column(rule, raw, schema)
        if result.refused.any():
            if rule.required:
                fresh = result.refused & ~malformed
                reasons[fresh] = [
                    f"column {rule.column!r}: {value!r} is not a valid {schema.field(rule.field).type}"
                    for value in pc.filter(raw, pa.array(fresh)).to_pylist()
                ]
                malformed |= result.refused
            else:
                coerced += result.refused_count
                keep_as = schema.extra_prefix + rule.column
                kept = pc.if_else(pa.array(result.refused), raw, pa.scalar(None, pa.string()))
                columns[keep_as] = pc.coalesce(columns[keep_as], kept) if keep_as in columns else kept
        if rule.required:
            absent = (
                ~np.asarray(pc.is_valid(result.values).to_numpy(zero_copy_only=False), dtype=bool)
                & ~malformed
            )
            if absent.any():
                reasons[absent] = f"column {rule.column!r} is empty; {rule.field} is required"
                malformed |= absent
        if rule.field in columns:
            columns[rule.field] = pc.coalesce(columns[rule.field], result.values)
        else:
            columns[rule.field] = result.values
    for name, value in mapping.constants.items():
        columns.setdefault(name, convert.CONVERTERS[schema.field(name).type](pa.array([value])).values)
        if len(columns[name]) == 1 and rows != 1:
            columns[name] = pa.repeat(columns[name][0], rows)
    mapped = {rule.column for rule in mapping.rules}
    for name in text.column_names:
        if name not in mapped:
            columns.setdefault(
                schema.extra_prefix + name, convert.convert_string(text.column(name).combine_chunks()).values
            )
    table = pa.table(columns)
    return MappedBatch(
        table=table, malformed=malformed, reasons=[str(r) for r in reasons[malformed]], coerced=coerced
    )


# A column converts once per distinct value when a sample of it repeats this much: feeds repeat ports,
# AS numbers, tags and countries, and hashing a column costs a fraction of converting it.
_DISTINCT_SAMPLE = 512
_SAMPLE_SHARE = 0.9
_DISTINCT_SHARE = 0.5
_KEEPING_TEXT = frozenset({convert.convert_string, convert.convert_raw})


def _convert_column(rule: ColumnRule, raw: pa.Array, schema: EventSchema) -> convert.Converted:
    """The rule's conversion of one column (every converter is a function of the value alone)."""
    converter: Callable[[pa.Array], convert.Converted]
    if rule.extract:
        converter = EXTRACTORS[rule.extract]
    else:
        converter = convert.CONVERTERS[schema.field(rule.field).type]

    def apply(text: pa.Array) -> convert.Converted:
        return converter(convert.zero_to_null(text) if rule.zero_is_empty else text)

    if converter in _KEEPING_TEXT or len(raw) <= _DISTINCT_SAMPLE:
        return apply(raw)
    if pc.count_distinct(raw.slice(0, _DISTINCT_SAMPLE)).as_py() > _SAMPLE_SHARE * _DISTINCT_SAMPLE:
        return apply(raw)  # addresses, times, host names: (nearly) every value new
    encoded = pc.dictionary_encode(raw)
    if len(encoded.dictionary) > _DISTINCT_SHARE * len(raw):
        return apply(raw)
    distinct = apply(encoded.dictionary)
    present = np.asarray(pc.is_valid(encoded.indices).to_numpy(zero_copy_only=False), dtype=bool)
    indices = np.asarray(pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    refused = distinct.refused[indices] & present if len(distinct.refused) else np.zeros(len(raw), bool)
    return convert.Converted(values=pc.take(distinct.values, encoded.indices), refused=refused)


def shadowserver_report_from_file_name(name: str) -> str:
    """`2024-05-01-scan_rdp-benchcert-geo.csv` → `scan_rdp`; '' when the name is not in that form."""
    stem = Path(name).name
    stem = stem.removesuffix(".csv")
    parts = stem.split("-")
    if len(parts) >= 4 and all(p.isdigit() for p in parts[:3]):
        return parts[3]
    return ""


def detect_mapping(
    file_name: str, columns: Iterable[str], candidates: MappingType[str, Mapping] | None = None
) -> Mapping | None:
    """The mapping for a file: by the report type in its name, else by its header."""
    candidates = candidates if candidates is not None else shipped_mappings()
    report = shadowserver_report_from_file_name(file_name)
    stem = Path(file_name).name.removesuffix(".csv")
    for mapping in candidates.values():
        if mapping.detect_file_name and mapping.detect_file_name in (report, stem):
            return mapping
    header = set(columns)
    best: tuple[int, Mapping] | None = None
    for mapping in candidates.values():
        wanted = set(mapping.detect_columns) or set(mapping.required_columns)
        if wanted and wanted <= header and (best is None or len(wanted) > best[0]):
            best = (len(wanted), mapping)
    return best[1] if best else None

"""Shadowserver's published report schema, translated into certnet mappings.

Shadowserver publishes a machine-readable description of every report it sends (the file IntelMQ's
parser downloads, `intelmq.json` in a snapshot): per report type its constant classification, and the
columns as `[field, column, helper]` triples, where the helper names the IntelMQ function that checks or
reshapes the value. certnet's field types already do what most helpers do (parse a timestamp as UTC, check
an address, read an integer, treat empty text as absent), so most triples become a plain column rule. The
helpers that change meaning are translated to rule options (`invalidate_zero` → `zero_is_empty`,
`extract_cve_from_tag` → `extract: cve`); helpers certnet cannot express (ones that read a second column or
compute a classification) map the column as it is and leave a note, so a new helper in a future schema never
stops the import.

A CERT keeps its mappings current with `certnet feeds shadowserver-schema`; the mappings certnet ships
under `mappings/shadowserver/` were written by `write_mapping_files` and then read by a person.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from certnet.feeds.mapping import Mapping, mapping_from_dict
from certnet.feeds.schema import EventSchema, event_schema

PROVIDER = "Shadowserver"
REPORT_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")
# What makes two events the same report line; feed.name is set by the engine on every event, and keeps
# one report's lines from deduplicating against another's.
IDENTIFYING_FIELDS = (
    "time.source",
    "source.ip",
    "source.network",  # the blocklist lists whole networks; without it their rows would collide
    "source.port",
    "destination.ip",
    "destination.port",
    "source.url",
    "source.fqdn",
    "classification.identifier",
    "feed.name",
)
ENGINE_FIELDS = ("feed.name",)
# Shadowserver's "required" means the column is always in the file (IntelMQ refuses a file without it); an
# empty value is still accepted. certnet's `required` quarantines a row whose value is empty, so it is kept
# for the fields no event can do without. Ports are empty for whole classes of events (spoofing and ICMP
# sources, the `special` report) and absent from older URL report files, so they become ordinary rules.
NOT_REQUIRED_IN_CERTNET = frozenset({"source.port", "destination.port"})

# Helpers whose work the target field's type already does, or that only matter to IntelMQ's own
# representation (base64 for binary text, None for empty text, a date string for extra.*, which certnet
# keeps as received text anyway).
PLAIN_HELPERS = frozenset(
    {
        "",
        "add_UTC_to_timestamp",
        "validate_to_none",
        "validate_ip",
        "validate_network",
        "validate_fqdn",
        "convert_int",
        "convert_float",
        "convert_bool",
        "convert_date",
        "convert_date_utc",
        "force_base64",
    }
)
# Helpers that become a rule option.
OPTION_HELPERS: dict[str, dict[str, Any]] = {
    "invalidate_zero": {"zero_is_empty": True},
    "extract_cve_from_tag": {"extract": "cve"},
}
# Helpers certnet knows about but cannot express: why the plain column is the best it can do.
KNOWN_LIMITS = {
    "convert_http_host_and_url": "Shadowserver joins it with the host column when it is only a path; "
    "certnet maps the column as it is, and a bare path stays in extra.{column}",
    "category_or_detail": "Shadowserver falls back to the detail column when it is empty; certnet maps "
    "only this column",
    "scan_exchange_taxonomy": "Shadowserver derives the classification from the tag; certnet maps the tag "
    "as it is, so the field is empty unless the tag is itself a valid value",
    "scan_exchange_type": "Shadowserver derives the classification from the tag; certnet maps the tag as "
    "it is, so the field is empty unless the tag is itself a valid value",
    "scan_exchange_identifier": "Shadowserver derives the classification from the tag; certnet maps the "
    "tag as it is",
}


class ShadowserverSchemaError(ValueError):
    """A schema file that cannot be read; the message names the report type and the entry."""


@dataclass
class SchemaTranslation:
    """Every report type of one schema file as certnet mappings, with what the translation could not keep."""

    mappings: dict[str, Mapping]  # by report type (Shadowserver's file-name part)
    notes: dict[str, list[str]] = field(default_factory=dict)
    schema_date: str = ""  # YYYY-MM-DD from the schema's _meta, when it says


def _load(source: str | Path | MappingType[str, Any]) -> MappingType[str, Any]:
    if isinstance(source, MappingType):
        return source
    path = Path(source)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShadowserverSchemaError(f"{path}: cannot read the schema: {error}") from error
    if not isinstance(document, dict):
        raise ShadowserverSchemaError(f"{path}: expected an object of report types")
    return document


def _entries(report: str, spec: MappingType[str, Any], key: str) -> list[list[Any]]:
    entries = spec.get(key) or []
    if not isinstance(entries, list) or not all(
        isinstance(e, list) and len(e) >= 2 and isinstance(e[0], str | bool | None) and isinstance(e[1], str)
        for e in entries
    ):
        raise ShadowserverSchemaError(f"{report}: {key} must be a list of [field, column, helper] entries")
    return entries


def _target(name: str, column: str, schema: EventSchema, notes: list[str]) -> str:
    if name == schema.extra_prefix or name == schema.extra_prefix.rstrip("."):
        return schema.extra_prefix + column
    if schema.knows(name):
        return name
    kept = schema.extra_prefix + column
    notes.append(f"column {column!r}: Shadowserver's field {name!r} is not a certnet field; kept as {kept}")
    return kept


def translate_report(
    report: str, spec: MappingType[str, Any], schema: EventSchema | None = None
) -> tuple[dict[str, Any], list[str]]:
    """One report type's entry as a certnet mapping document, and notes on what it could not express."""
    schema = schema or event_schema()
    if not isinstance(spec, MappingType):
        raise ShadowserverSchemaError(f"{report}: expected an object")
    notes: list[str] = []
    columns: dict[str, list[dict[str, Any]]] = {}
    entries = [(e, True) for e in _entries(report, spec, "required_fields")]
    entries += [(e, False) for e in _entries(report, spec, "optional_fields")]
    for entry, required in entries:
        name, column = entry[0], entry[1]
        if not name:
            continue  # IntelMQ's "ignore this column": certnet keeps it as extra.<column> like any other
        helper = entry[2] if len(entry) > 2 and isinstance(entry[2], str) else ""
        rule: dict[str, Any] = {"field": _target(name, column, schema, notes)}
        if required and rule["field"] not in NOT_REQUIRED_IN_CERTNET:
            rule["required"] = True
        if helper in OPTION_HELPERS:
            rule.update(OPTION_HELPERS[helper])
        elif helper in KNOWN_LIMITS:
            notes.append(f"column {column!r} ({helper}): " + KNOWN_LIMITS[helper].format(column=column))
        elif helper not in PLAIN_HELPERS:
            notes.append(
                f"column {column!r}: helper {helper!r} is unknown to certnet; the column is mapped as it is"
            )
        rules = columns.setdefault(column, [])
        same = next((r for r in rules if r["field"] == rule["field"]), None)
        if same is None:
            rules.append(rule)
        else:
            # The schema lists some pairs twice (scan_exchange's tag); keep the stricter reading.
            same.update({k: v for k, v in rule.items() if v})
    for column, rules in columns.items():
        typed = [r for r in rules if not r["field"].startswith(schema.extra_prefix)]
        if len(typed) > 1 and any(r.get("required") for r in typed):
            # The blocklist's `ip` holds an address or a network: neither field alone may refuse the row.
            for r in rules:
                r.pop("required", None)
            fields = " or ".join(r["field"] for r in typed)
            notes.append(f"column {column!r} holds either a {fields}, so none of them is required")
    constants: dict[str, str] = {}
    for name, value in (spec.get("constant_fields") or {}).items():
        target = name if schema.knows(name) else schema.extra_prefix + name
        if target != name:
            notes.append(f"constant {name!r} is not a certnet field; kept as {target}")
        constants[target] = str(value)
    produced = {r["field"] for rules in columns.values() for r in rules} | set(constants) | set(ENGINE_FIELDS)
    name = str(spec.get("file_name") or report)
    if not REPORT_NAME.fullmatch(name):
        # The name becomes a file name and matches file names: a downloaded schema must not pick a path.
        raise ShadowserverSchemaError(f"{report}: {name!r} is not a report type name")
    document: dict[str, Any] = {
        "report": name,
        "provider": PROVIDER,
        "feed": str(spec.get("feed_name") or report),
    }
    if spec.get("url"):
        document["documentation"] = str(spec["url"])
    document["detect"] = {"file_name": document["report"], "columns": list(columns)}
    if constants:
        document["constants"] = constants
    document["columns"] = {c: rules[0] if len(rules) == 1 else rules for c, rules in columns.items()}
    document["dedup"] = [name for name in IDENTIFYING_FIELDS if name in produced]
    return document, notes


def translate_schema(
    source: str | Path | MappingType[str, Any], schema: EventSchema | None = None
) -> SchemaTranslation:
    """Every report type of a schema file (a path, or the parsed document)."""
    schema = schema or event_schema()
    document = _load(source)
    where = str(source) if isinstance(source, str | Path) else "the Shadowserver schema"
    meta = document.get("_meta")
    created = str(meta.get("date_created", "")) if isinstance(meta, MappingType) else ""
    translation = SchemaTranslation(mappings={}, schema_date=created[:10])
    for report, spec in document.items():
        if report.startswith("_"):
            continue
        mapping_document, notes = translate_report(report, spec, schema)
        name = mapping_document["report"]
        if name in translation.mappings:
            raise ShadowserverSchemaError(f"{where}: report type {name!r} is described twice")
        translation.mappings[name] = mapping_from_dict(mapping_document, f"{where}: {report}", schema)
        if notes:
            translation.notes[name] = notes
    if not translation.mappings:
        raise ShadowserverSchemaError(f"{where}: no report types")
    return translation


def mappings_from_schema(source: str | Path | MappingType[str, Any]) -> dict[str, Mapping]:
    """certnet mappings for every report type in a Shadowserver schema file, by report type."""
    return translate_schema(source).mappings


def mapping_document(mapping: Mapping) -> dict[str, Any]:
    """A mapping in the form of a mapping file, so that `mapping_from_dict` reads it back unchanged."""
    columns: dict[str, list[dict[str, Any]]] = {}
    for rule in mapping.rules:
        spec: dict[str, Any] = {"field": rule.field}
        if rule.required:
            spec["required"] = True
        if rule.zero_is_empty:
            spec["zero_is_empty"] = True
        if rule.extract:
            spec["extract"] = rule.extract
        columns.setdefault(rule.column, []).append(spec)
    document: dict[str, Any] = {"report": mapping.report, "provider": mapping.provider, "feed": mapping.feed}
    if mapping.documentation:
        document["documentation"] = mapping.documentation
    detect: dict[str, Any] = {}
    if mapping.detect_file_name:
        detect["file_name"] = mapping.detect_file_name
    if mapping.detect_columns:
        detect["columns"] = list(mapping.detect_columns)
    if detect:
        document["detect"] = detect
    if mapping.constants:
        document["constants"] = dict(mapping.constants)
    document["columns"] = {c: specs[0] if len(specs) == 1 else specs for c, specs in columns.items()}
    if mapping.dedup:
        document["dedup"] = list(mapping.dedup)
    return document


def _flow(value: Any, width: int = 1 << 20) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=width)
    return text.removesuffix("...\n").strip()


def _short_rule(spec: dict[str, Any]) -> Any:
    return spec["field"] if set(spec) == {"field"} else spec


def render_mapping(mapping: Mapping, *, schema_date: str = "", notes: Iterable[str] = ()) -> str:
    """A mapping file's text: one line per column, so a reviewer reads it like the example mappings."""
    document = mapping_document(mapping)
    of = f" of {schema_date}" if schema_date else ""
    lines = [
        f"# Generated from Shadowserver's published report schema{of} by `certnet feeds shadowserver-schema`."
    ]
    for note in notes:
        lines += textwrap.wrap(note, width=108, initial_indent="# Note: ", subsequent_indent="#   ")
    for key in ("report", "provider", "feed", "documentation"):
        if key in document:
            lines.append(f"{key}: {_flow(document[key])}")
    if "detect" in document:
        lines.append("detect:")
        lines += [
            f"  {key}: {_flow(value, width=100)}".replace("\n", "\n    ")
            for key, value in document["detect"].items()
        ]
    if "constants" in document:
        lines.append("constants:")
        lines += [f"  {_flow(key)}: {_flow(value)}" for key, value in document["constants"].items()]
    lines.append("columns:")
    for column, specs in document["columns"].items():
        value = [_short_rule(s) for s in specs] if isinstance(specs, list) else _short_rule(specs)
        lines.append(f"  {_flow(column)}: {_flow(value)}")
    if "dedup" in document:
        lines.append(f"dedup: {_flow(document['dedup'])}")
    return "\n".join(lines) + "\n"


def write_mapping_files(
    mappings: MappingType[str, Mapping],
    directory: str | Path,
    *,
    schema_date: str = "",
    notes: MappingType[str, Iterable[str]] | None = None,
) -> list[Path]:
    """Write each mapping to `<directory>/<report>.yaml`; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for mapping in mappings.values():
        path = directory / f"{mapping.report}.yaml"
        path.write_text(
            render_mapping(mapping, schema_date=schema_date, notes=(notes or {}).get(mapping.report, ())),
            encoding="utf-8",
        )
        written.append(path)
    return written

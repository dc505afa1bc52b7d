"""Feed formats other than a provider's CSV: generic CSV, IntelMQ's JSON lines, MISP feeds, STIX bundles.

Every reader here gives text tables whose columns are harmonised field names, so the same
`mapping.apply_mapping` types and checks them as it does a provider's CSV. What a reader cannot turn
into an event (a MISP attribute type with no field, a STIX object that is not an observation) is
counted and noted on the `TableStream` it returns, never dropped silently.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import difflib
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from certnet.feeds import convert
from certnet.feeds.mapping import ColumnRule, Mapping, MappingError, mapping_from_dict
from certnet.feeds.reader import BadLine, UnreadableFile
from certnet.feeds.schema import EventSchema, event_schema

Row = dict[str, str]  # field name -> text, one event
ColumnSpec = str | dict[str, Any] | list[Any]  # as in a mapping file's `columns`
BATCH_LINES = 50_000
# Notes are for people to read; past this many only the counts grow, so a huge feed stays bounded.
MAX_NOTES = 1_000
UNDETERMINED = {"classification.taxonomy": "other", "classification.type": "undetermined"}
# route.* is certnet's own; IntelMQ's name for the first is the constituency expert's.
ROUTE_AS_INTELMQ = {"route.organisation": "extra.constituency"}


@dataclass(frozen=True)
class Note:
    where: str
    kind: str
    value: str
    reason: str


class TableStream(Iterator[pa.Table]):
    """Tables as a reader produces them; `notes` and `counts` say what it left out so far."""

    def __init__(self, produce: Callable[[TableStream], Iterator[pa.Table]]) -> None:
        self.notes: list[Note] = []
        self.counts: Counter[str] = Counter()
        self.rows = 0
        self._tables = produce(self)

    def __next__(self) -> pa.Table:
        table = next(self._tables)
        self.rows += table.num_rows
        return table

    def note(self, where: str, kind: str, value: str, reason: str) -> None:
        self.counts[kind] += 1
        if len(self.notes) < MAX_NOTES:
            self.notes.append(Note(where, kind, value[:500], reason))


def _table(rows: list[Row]) -> pa.Table:
    names = list(dict.fromkeys(name for row in rows for name in row))
    return pa.table({name: pa.array([row.get(name) for row in rows], pa.string()) for name in names})


def _batched(rows: Iterable[Row], size: int) -> Iterator[pa.Table]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield _table(batch)
            batch = []
    if batch:
        yield _table(batch)


# --- generic CSV -----------------------------------------------------------------------------------


def generic_csv_mapping(
    name: str, provider: str, columns: dict[str, ColumnSpec], constants: dict[str, Any] | None = None
) -> Mapping:
    """A mapping for a CSV source an operator describes: `columns` maps each CSV column to a field
    name or a rule ({field, required, zero_is_empty, extract}); `constants` fills fields for every row."""
    schema = event_schema()
    where = f"source {name!r}"
    if not isinstance(name, str) or not name.strip():
        raise MappingError("a generic CSV source needs a name")
    if not isinstance(columns, dict) or not columns:
        raise MappingError(f"{where}: 'columns' must map at least one CSV column to a field")
    constants = dict(constants or {})
    problems: list[str] = []
    for column, spec in columns.items():
        if not isinstance(column, str) or not column.strip():
            problems.append(f"column {column!r}: a column name must be non-empty text")
            continue
        rules: list[Any] = spec if isinstance(spec, list) else [spec]
        for rule in rules:
            field = rule.get("field") if isinstance(rule, dict) else rule
            if isinstance(rule, dict):
                problems += [
                    f"column {column!r}: {flag!r} must be true or false, not {rule[flag]!r}"
                    for flag in ("required", "zero_is_empty")
                    if flag in rule and not isinstance(rule[flag], bool)
                ]
            if isinstance(field, str) and field and not schema.knows(field):
                problems.append(f"column {column!r}: unknown field {field!r}{_did_you_mean(field, schema)}")
    for field, value in constants.items():
        if not schema.knows(str(field)):
            problems.append(f"constant {field!r}: unknown field{_did_you_mean(str(field), schema)}")
        elif not isinstance(value, str | int | float | bool) or value == "":
            problems.append(f"constant {field!r}: expected one value, not {value!r}")
        elif convert.CONVERTERS[schema.field(str(field)).type](pa.array([str(value)])).refused.any():
            problems.append(f"constant {field!r}: {value!r} is not a valid {schema.field(str(field)).type}")
    if problems:
        raise MappingError(f"{where}: " + "; ".join(problems))
    document = {"report": name, "provider": provider, "columns": columns, "constants": constants}
    mapping = mapping_from_dict(document, where, schema)
    # apply_mapping gives a column's value precedence, so such a constant would never be used.
    clashes = [
        f"constant {r.field!r} is also column {r.column!r}'s field"
        for r in mapping.rules
        if r.field in constants
    ]
    if clashes:
        raise MappingError(f"{where}: " + "; ".join(clashes))
    return mapping


def _did_you_mean(name: str, schema: EventSchema) -> str:
    close = difflib.get_close_matches(name, list(schema.fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- IntelMQ JSON lines ----------------------------------------------------------------------------


def read_json_lines(
    path: Path, on_bad_line: Callable[[BadLine], None], *, batch_lines: int = BATCH_LINES
) -> Iterator[pa.Table]:
    """Text tables from a file of one JSON object per line (IntelMQ's events, flat or nested)."""
    return _batched(_json_rows(path, on_bad_line), batch_lines)


def _json_rows(path: Path, on_bad_line: Callable[[BadLine], None]) -> Iterator[Row]:
    extra = event_schema().extra_prefix
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                row, reason = _json_row(raw, extra)
                if row is None:
                    on_bad_line(BadLine(number, raw.decode("utf-8", errors="replace").rstrip("\r\n"), reason))
                else:
                    yield row


def _json_row(raw: bytes, extra: str) -> tuple[Row | None, str]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError as error:
        return None, f"not JSON: {error.msg} at column {error.colno}"
    if isinstance(document, list):
        return None, "a JSON array, not an object: one event per line"
    if not isinstance(document, dict):
        return None, f"a JSON {type(document).__name__}, not an object"
    row: Row = {}
    _flatten(document, "", row, extra)
    if not row:
        return None, "an object with no values"
    if "raw" in row:
        row["raw"] = _unbase64(row["raw"])
    return row, ""


def _flatten(document: dict[str, Any], prefix: str, row: Row, extra: str) -> None:
    for key, value in document.items():
        name = prefix + (str(key) or "_")
        if name == "__type":
            continue  # IntelMQ's message class, not a field
        if name == extra.rstrip(".") and isinstance(value, str) and value.startswith("{"):
            with contextlib.suppress(ValueError):  # older IntelMQ wrote extra as one JSON string
                value = json.loads(value)
        if name == extra.rstrip(".") and isinstance(value, dict):
            for key2, inner in value.items():
                if inner is not None:
                    row[extra + (str(key2) or "_")] = _json_text(inner)
        elif isinstance(value, dict) and not name.startswith(extra):
            _flatten(value, name + ".", row, extra)
        elif value is not None:
            row[name] = _json_text(value)


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _unbase64(text: str) -> str:
    # IntelMQ keeps the original line base64-encoded; certnet keeps it as received.
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return text


def intelmq_mapping_for(columns: Iterable[str]) -> Mapping:
    """Every harmonised column to itself (so apply_mapping types it), anything else to extra."""
    schema = event_schema()
    rules = []
    for column in columns:
        known = column in schema.fields or (column.startswith(schema.extra_prefix) and schema.knows(column))
        rules.append(ColumnRule(column=column, field=column if known else schema.extra_prefix + column))
    return Mapping(
        report="intelmq", provider="IntelMQ", feed="IntelMQ events", rules=tuple(rules), origin="IntelMQ JSON"
    )


def write_intelmq_json(table: pa.Table, out: TextIO, *, batch_rows: int = 10_000) -> int:
    """Write events as IntelMQ's JSON lines (flat dotted keys, absent values left out); returns the count.

    route.* has no IntelMQ field: route.organisation becomes extra.constituency, the rest
    extra.certnet_<name>. When the table also has that extra column, the route value wins."""
    schema = event_schema()
    names = sorted(table.column_names, key=lambda name: name.startswith("route."))
    plan = []
    for name in names:
        if name.startswith("route."):
            key = ROUTE_AS_INTELMQ.get(name, schema.extra_prefix + "certnet_" + name.removeprefix("route."))
        else:
            key = name if schema.knows(name) else schema.extra_prefix + name
        plan.append((name, key, schema.field(name).type if schema.knows(name) else "string"))
    written = 0
    for batch in table.select(names).to_batches(max_chunksize=batch_rows):
        values = [(key, kind, batch.column(name).to_pylist()) for name, key, kind in plan]
        for row in range(batch.num_rows):
            event: dict[str, Any] = {}
            for key, kind, column in values:
                value = column[row]
                if value is not None and value != "":
                    event[key] = _intelmq_value(kind, value)
            out.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
            written += 1
    return written


def _intelmq_value(kind: str, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    if kind == "raw":
        return base64.b64encode(str(value).encode("utf-8")).decode("ascii")
    return value


# --- MISP feeds ------------------------------------------------------------------------------------

_HASHES = {"md5": "malware.hash.md5", "sha1": "malware.hash.sha1", "sha256": "malware.hash.sha256"}
# MISP attribute type -> the field its value fills; for a "a|b" type, the field of each half.
_IP, _HOST, _URL = "source.ip", "source.fqdn", "source.url"
MISP_FIELDS = {"ip-src": _IP, "ip-dst": _IP, "domain": _HOST, "hostname": _HOST, "url": _URL, "uri": _URL}
MISP_FIELDS |= {"AS": "source.asn", "vulnerability": "product.vulnerabilities"}
MISP_FIELDS |= {
    f"{kind}|port": f"{MISP_FIELDS[kind]}|source.port" for kind in ("ip-src", "ip-dst", "hostname")
}
MISP_FIELDS |= _HASHES | {f"filename|{kind}": f"extra.file_name|{field}" for kind, field in _HASHES.items()}
MISP_FIELDS["malware-sample"] = "extra.file_name|malware.hash.md5"
_RSIT_TAG = re.compile(r'^rsit:(?P<taxonomy>[a-z-]+)="(?P<type>[^"]+)"$')


def misp_feed_tables(directory: Path, *, batch_rows: int = BATCH_LINES) -> TableStream:
    """A MISP feed directory (manifest.json and one <uuid>.json per event): one row per attribute whose
    type has a field. Unsupported or malformed attributes, unreadable events and files the manifest does
    not name are noted; a directory without a readable manifest raises UnreadableFile."""
    try:
        manifest = json.loads((directory / "manifest.json").read_bytes())
    except (OSError, ValueError) as error:
        raise UnreadableFile(f"{directory.name}: no readable manifest.json ({error})") from None
    if not isinstance(manifest, dict):
        raise UnreadableFile(f"{directory.name}: manifest.json is not an object of event uuids")
    return TableStream(lambda stream: _batched(_misp_rows(directory, manifest, stream), batch_rows))


def _misp_rows(directory: Path, manifest: dict[str, Any], stream: TableStream) -> Iterator[Row]:
    from certnet.core.errors import InvalidInput
    from certnet.intel import misp

    listed = set()
    for key in manifest:
        try:
            name = f"{uuid.UUID(key)}.json"  # only a uuid becomes a file name: no path can slip in
        except ValueError:
            stream.note(f"manifest.json[{key[:80]!r}]", "manifest entry", key, "not an event uuid")
            continue
        listed.add(name)
        try:
            event = misp.parse_event(json.loads((directory / name).read_bytes()), prefix=f"{name}:")
        except (OSError, ValueError) as error:
            stream.note(name, "event file", key, f"cannot be read as JSON: {error}")
            continue
        except InvalidInput as error:
            stream.note(name, "event", key, error.detail)
            continue
        for unsupported in event.unsupported:
            stream.note(unsupported.where, unsupported.type, unsupported.value, unsupported.note)
        for refused in event.refused:
            stream.note(refused.where, refused.type or "attribute", refused.uuid, "; ".join(refused.reasons))
        yield from _misp_event_rows(event, stream)
    for path in sorted(directory.glob("*.json")):
        if path.name != "manifest.json" and path.name not in listed:
            stream.note(path.name, "event file", path.stem, "not in manifest.json; not read")


def _misp_event_rows(event: Any, stream: TableStream) -> Iterator[Row]:
    common = {"comment": event.info, "extra.misp_event_uuid": str(event.uuid)}
    if event.orgc.get("name"):
        common["feed.name"] = event.orgc["name"]
    for attribute in event.attributes:
        fields = MISP_FIELDS.get(attribute.type, "").split("|")
        if not fields[0]:
            reason = f"MISP type {attribute.type!r} has no harmonised field"
            stream.note(attribute.where, attribute.type, attribute.value, reason)
            continue
        parts = attribute.value.split("|") if len(fields) > 1 else [attribute.value]
        row = dict(common)
        for field, part in zip(fields, parts, strict=True):
            if field == "source.ip" and "/" in part:
                field = "source.network"
            row[field] = part.strip()
        tags = [*event.tags, *attribute.tags]
        classes = [found.groupdict() for tag in reversed(tags) if (found := _RSIT_TAG.match(tag))]
        # An attribute's own RSIT tag is more specific than its event's, so it wins.
        row.update({f"classification.{k}": v for k, v in classes[0].items()} if classes else UNDETERMINED)
        tlp = attribute.tlp or event.tlp
        if tlp is not None:
            row["tlp"] = tlp.value.upper()
        moment = attribute.first_seen or attribute.timestamp or event.timestamp
        if moment is not None:
            row["time.source"] = moment.astimezone(dt.UTC).isoformat()
        others = sorted({tag for tag in tags if not tag.startswith("rsit:")})
        optional = {
            "event_description.text": attribute.comment,
            "extra.tags": ",".join(others),
            "extra.misp_type": attribute.type,
            "extra.misp_category": attribute.category or "",
            "extra.misp_attribute_uuid": str(attribute.uuid or ""),
        }
        row.update({key: value for key, value in optional.items() if value})
        yield row


# --- STIX 2.1 bundles ------------------------------------------------------------------------------

# An observable kind (certnet.intel.observables.Kind) or SCO type -> the field its value fills.
_KIND_FIELDS = {"ipv4": "source.ip", "ipv6": "source.ip", "cidr": "source.network", "domain": "source.fqdn"}
_KIND_FIELDS |= {"url": "source.url", "asn": "source.asn"} | _HASHES
_KIND_FIELDS |= {"ipv4-addr": "source.ip", "ipv6-addr": "source.ip", "domain-name": "source.fqdn"}
_VALUE_SCOS = ("ipv4-addr", "ipv6-addr", "domain-name", "url")
NOT_AN_EVENT = "not an event: certnet reads indicators and observed-data"
NO_FIELD = "certnet has no field for the value it compares (or it compares more than one)"


def stix_bundle_tables(path: Path, *, batch_rows: int = BATCH_LINES) -> TableStream:
    """Rows from a STIX 2.x bundle: indicators whose pattern compares one value certnet has a field
    for, and the observables observed-data names. Everything else is noted as not an event.

    The bundle is streamed twice (ijson): first for the observables, malware names and `indicates`
    relationships that rows refer to, then for the rows, so objects may come in any order."""
    return TableStream(lambda stream: _batched(_stix_rows(path, stream), batch_rows))


def _stix_objects(path: Path) -> Iterator[tuple[int, Any]]:
    import ijson

    try:
        with path.open("rb") as handle:
            yield from enumerate(ijson.items(handle, "objects.item", use_float=True))
    except ijson.JSONError as error:
        raise UnreadableFile(f"{path.name}: not a JSON STIX bundle ({error})") from None


def _sco_fields(body: dict[str, Any]) -> Row:
    """The fields an observable fills; empty when certnet has none for it."""
    kind = body.get("type")
    if kind in _VALUE_SCOS and isinstance(body.get("value"), str):
        value = body["value"]
        return {"source.network" if "/" in value and kind != "url" else _KIND_FIELDS[kind]: value}
    if kind == "autonomous-system" and isinstance(body.get("number"), int | float):
        return {"source.asn": str(int(body["number"]))}
    if kind == "file" and isinstance(body.get("hashes"), dict):
        hashes = {str(name).lower().replace("-", ""): value for name, value in body["hashes"].items()}
        return {_HASHES[name]: str(value) for name, value in hashes.items() if name in _HASHES}
    return {}


def _stix_rows(path: Path, stream: TableStream) -> Iterator[Row]:
    from certnet.intel import stix

    observables: dict[str, Row] = {}
    malware: dict[str, str] = {}
    indicates: dict[str, str] = {}
    observed: set[str] = set()
    objects = 0
    for _, body in _stix_objects(path):
        objects += 1
        if not isinstance(body, dict):
            continue
        kind, stix_id = body.get("type"), str(body.get("id", ""))
        if kind == "malware" and isinstance(body.get("name"), str):
            malware[stix_id] = body["name"]
        elif kind == "relationship" and body.get("relationship_type") == "indicates":
            indicates[str(body.get("source_ref"))] = str(body.get("target_ref"))
        elif kind == "observed-data":
            observed.update(str(ref) for ref in body.get("object_refs") or [])
        elif fields := _sco_fields(body):
            observables[stix_id] = fields
    if not objects:
        raise UnreadableFile(f"{path.name}: no objects; not a STIX bundle")
    for index, body in _stix_objects(path):
        where = f"{path.name}:objects[{index}]"
        if not isinstance(body, dict):
            stream.note(where, "not an object", str(body), "a bundle's objects are JSON objects")
            continue
        kind, stix_id = str(body.get("type", "")), str(body.get("id", ""))
        common = {"extra.stix_id": stix_id, **UNDETERMINED}
        tlp = stix.strictest_tlp(ref for ref in body.get("object_marking_refs") or [] if isinstance(ref, str))
        if tlp is not None:
            common["tlp"] = tlp.value.upper()
        if kind == "indicator":
            row = _indicator_row(body, where, stream)
            if row is not None:
                if malware.get(indicates.get(stix_id, "")):
                    row["malware.name"] = malware[indicates[stix_id]]
                yield {**common, **row}
        elif kind == "observed-data":
            yield from _observed_rows(body, where, common, observables, stream)
        elif stix_id in observed:
            continue  # read through the observed-data that names it
        else:
            stream.note(where, kind or "untyped", stix_id, NOT_AN_EVENT)


def _indicator_row(body: dict[str, Any], where: str, stream: TableStream) -> Row | None:
    from certnet.intel import stix

    pattern = body.get("pattern")
    if body.get("revoked") is True:
        stream.note(where, "indicator", str(body.get("id", "")), "revoked")
        return None
    if body.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
        reason = f"pattern type {body.get('pattern_type')!r} is not read"
        stream.note(where, "indicator", str(pattern), reason)
        return None
    try:
        found = stix.read_pattern(pattern)
    except stix.PatternError as error:
        stream.note(where, "indicator", pattern, f"not a valid STIX pattern: {error}")
        return None
    field = _KIND_FIELDS.get(str(found[0])) if found else None
    if found is None or field is None:
        stream.note(where, "indicator", pattern, NO_FIELD)
        return None
    row = {field: found[1], "time.source": str(body.get("valid_from") or "")}
    optional = {
        "comment": body.get("name"),
        "event_description.text": body.get("description"),
        "extra.valid_until": body.get("valid_until"),
        "extra.indicator_types": ",".join(str(t) for t in body.get("indicator_types") or []),
    }
    row.update({key: str(value) for key, value in optional.items() if value})
    return {key: value for key, value in row.items() if value}


def _observed_rows(
    body: dict[str, Any], where: str, common: Row, scos: dict[str, Row], stream: TableStream
) -> Iterator[Row]:
    timing = {"time.source": body.get("first_observed"), "extra.last_observed": body.get("last_observed")}
    timing["extra.number_observed"] = body.get("number_observed")
    base = {**common, **{key: str(value) for key, value in timing.items() if value is not None}}
    # STIX 2.0 embeds its observables in `objects`; 2.1 names them in `object_refs`.
    embedded = body["objects"] if isinstance(body.get("objects"), dict) else {}
    named = [(f"objects[{key!r}]", item) for key, item in embedded.items()]
    named += [(str(ref), ref) for ref in body.get("object_refs") or []]
    for name, item in named:
        fields = _sco_fields(item) if isinstance(item, dict) else scos.get(str(item), {})
        if fields:
            yield {**base, **fields}
        else:
            stream.note(
                f"{where}.{name}", "observable", name, "not in the bundle, or certnet has no field for it"
            )

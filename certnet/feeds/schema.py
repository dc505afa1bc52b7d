"""The harmonised feed event: its fields, their types and the Arrow type each is stored as.

The fields are data (`data/fields.yaml`); this module loads and checks them once, and renders the field
reference in `docs/feeds-fields.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
import yaml

FIELDS_FILE = Path(__file__).with_name("data") / "fields.yaml"

# How each field type is stored in Arrow tables and in the Parquet events store.
ARROW_TYPES: dict[str, pa.DataType] = {
    "datetime": pa.timestamp("us", tz="UTC"),
    "ip": pa.string(),
    "network": pa.string(),
    "integer": pa.int64(),
    "port": pa.int32(),
    "asn": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "fqdn": pa.string(),
    "url": pa.string(),
    "string": pa.string(),
    "lower": pa.string(),
    "upper": pa.string(),
    "hash": pa.string(),
    "taxonomy": pa.string(),
    "type": pa.string(),
    "tlp": pa.string(),
    "cc": pa.string(),
    "raw": pa.string(),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    doc: str
    group: str

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


@dataclass(frozen=True)
class EventSchema:
    fields: dict[str, Field]
    extra_prefix: str

    def field(self, name: str) -> Field:
        """The field called `name`; an `extra.*` name is free text."""
        found = self.fields.get(name)
        if found is not None:
            return found
        if name.startswith(self.extra_prefix) and len(name) > len(self.extra_prefix):
            return Field(name=name, type="string", doc="Kept from the feed as received.", group="extra")
        raise KeyError(name)

    def knows(self, name: str) -> bool:
        try:
            self.field(name)
        except KeyError:
            return False
        return True

    def arrow_schema(self, names: list[str]) -> pa.Schema:
        return pa.schema([pa.field(name, self.field(name).arrow_type) for name in names])


class SchemaError(ValueError):
    pass


def load_schema(path: Path = FIELDS_FILE) -> EventSchema:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    fields: dict[str, Field] = {}
    problems: list[str] = []
    for group, members in (document.get("groups") or {}).items():
        for name, spec in (members or {}).items():
            unknown = set(spec or {}) - {"type", "doc"}
            if unknown:
                problems.append(f"{path.name}: field {name!r} has unknown keys {sorted(unknown)}")
            kind = (spec or {}).get("type")
            if kind not in ARROW_TYPES:
                problems.append(f"{path.name}: field {name!r} has unknown type {kind!r}")
                continue
            if name in fields:
                problems.append(f"{path.name}: field {name!r} is defined twice")
                continue
            fields[name] = Field(name=name, type=kind, doc=str(spec.get("doc", "")), group=group)
    if problems:
        raise SchemaError("; ".join(problems))
    return EventSchema(fields=fields, extra_prefix=str(document.get("extra_prefix", "extra.")))


@cache
def event_schema() -> EventSchema:
    return load_schema()


def field_reference(schema: EventSchema | None = None) -> str:
    """The field reference as Markdown, generated from the data file."""
    schema = schema or event_schema()
    lines = [
        "# Feed event fields",
        "",
        "Generated from `certnet/feeds/data/fields.yaml` by",
        "`certnet feeds fields --write docs/feeds-fields.md`; edit the data file, not this page.",
        "Names are IntelMQ's harmonised names; `route.*` is what certnet adds when it routes an event.",
        "",
    ]
    groups: dict[str, list[Field]] = {}
    for item in schema.fields.values():
        groups.setdefault(item.group, []).append(item)
    for group, members in groups.items():
        lines += [f"## {group}", "", "| field | type | stored as | meaning |", "| --- | --- | --- | --- |"]
        lines += [f"| `{f.name}` | {f.type} | {f.arrow_type} | {f.doc} |" for f in members]
        lines.append("")
    lines += [
        "## extra",
        "",
        "Every column a feed carries that maps to no field above is kept as "
        f"`{schema.extra_prefix}<column>` (text).",
        "",
    ]
    return "\n".join(lines)

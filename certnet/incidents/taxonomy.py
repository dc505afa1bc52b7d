"""RSIT classification (data/rsit.yaml): validate a taxonomy/type pair, accepting known aliases."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from certnet.core.errors import FieldError, InvalidInput

RSIT_FILE = Path(__file__).resolve().parent / "data" / "rsit.yaml"


@dataclass(frozen=True)
class Taxonomy:
    types: dict[str, tuple[str, ...]]
    aliases: dict[str, str]

    def classify(self, taxonomy: str, type_: str) -> tuple[str, str]:
        """The canonical (taxonomy, type), or InvalidInput saying what is allowed."""
        tax = taxonomy.strip().lower()
        kind = self.aliases.get(type_.strip().lower(), type_.strip().lower())
        if tax not in self.types:
            raise InvalidInput(
                f"classification_taxonomy: {taxonomy!r} is not an RSIT taxonomy",
                errors=[FieldError("classification_taxonomy", f"expected one of: {', '.join(self.types)}")],
            )
        if kind not in self.types[tax]:
            raise InvalidInput(
                f"classification_type: {type_!r} is not a type of {tax}",
                errors=[FieldError("classification_type", f"expected one of: {', '.join(self.types[tax])}")],
            )
        return tax, kind


@lru_cache(maxsize=1)
def rsit() -> Taxonomy:
    data = yaml.safe_load(RSIT_FILE.read_text(encoding="utf-8"))
    return Taxonomy(
        types={tax: tuple(types) for tax, types in data["taxonomies"].items()},
        aliases={str(k).lower(): v for k, v in data["aliases"].items()},
    )

"""Traffic Light Protocol 2.0 labels, their order, and their names in the formats certnet speaks."""

from __future__ import annotations

from django.db import models


class TLP(models.TextChoices):
    CLEAR = "clear", "TLP:CLEAR"
    GREEN = "green", "TLP:GREEN"
    AMBER = "amber", "TLP:AMBER"
    AMBER_STRICT = "amber+strict", "TLP:AMBER+STRICT"
    RED = "red", "TLP:RED"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> TLP:
        """Accept 'amber', 'TLP:AMBER', 'tlp:amber+strict' and the TLP 1.0 name WHITE."""
        key = text.strip().lower().removeprefix("tlp:")
        if key == "white":
            return cls.CLEAR
        try:
            return cls(key)
        except ValueError:
            allowed = ", ".join(label for label in cls.values)
            raise ValueError(f"unknown TLP label {text!r}; expected one of {allowed}") from None

    def is_stricter_than(self, other: TLP) -> bool:
        return self.rank > other.rank

    @property
    def stix_marking_id(self) -> str:
        return STIX_MARKING_IDS[self]


_RANK = {TLP.CLEAR: 0, TLP.GREEN: 1, TLP.AMBER: 2, TLP.AMBER_STRICT: 3, TLP.RED: 4}

# The TLP 2.0 marking-definition objects FIRST published for STIX 2.1.
STIX_MARKING_IDS = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

"""`field__in_ids=[…]`: membership in a set of ids sent as ONE query parameter.

Visibility filters by "owner in the user's reach", which for a national CERT is every organisation in
the country. A plain `__in` compiles and binds one parameter per id on every query; this sends the set
as one JSON text (SQLite: json_each) or one array (PostgreSQL: = ANY), so the cost does not grow with
the size of the reach."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.lookups import Lookup
from django.db.models.sql.compiler import SQLCompiler


@models.Field.register_lookup
class InIds(Lookup):  # type: ignore[type-arg]
    lookup_name = "in_ids"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        if not isinstance(self.rhs, frozenset | set | list | tuple):
            raise TypeError("__in_ids takes a collection of integer ids")
        return sorted(self.rhs)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        ids: Iterable[int] = self.rhs
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, list(ids)]
        # Only the compiled column reference is interpolated; the ids travel as a bound parameter.
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*lhs_params, json.dumps(list(ids))]  # noqa: S608

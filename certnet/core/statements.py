"""Prepared-once statements for the few hot paths every API write walks through.

An ORM query rebuilds and recompiles its SQL on each call; on this platform's small machines that
costs about a millisecond of CPU, several times the cost of the statement itself. The helpers below
build a statement's text once per model and database vendor, and still go through each field's own
conversions (so values are stored and read exactly as the ORM would store and read them).

They cover only what the ORM call they replace does on these models: no signals (the project uses
none), no inherited models, no database-side defaults.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.fields import AutoFieldMixin

ModelT = TypeVar("ModelT", bound=models.Model)
Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


def _quoted(connection: BaseDatabaseWrapper, name: str) -> str:
    return str(connection.ops.quote_name(name))


def _stored_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    fields = list(model._meta.concrete_fields)
    if model._meta.parents:
        raise TypeError(f"{model._meta.label} inherits from another model; use the ORM")
    for found in fields:
        if found.db_default is not models.NOT_PROVIDED:
            raise TypeError(f"{model._meta.label}.{found.name} has a database default; use the ORM")
    return fields


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    found = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(found, models.Field) or not found.concrete:
        raise TypeError(f"{model._meta.label}.{name} is not a stored field")
    return found


@functools.cache
def _select_sql(vendor: str, model: type[models.Model], keys: tuple[str, ...]) -> str:
    connection = transaction.get_connection()
    meta = model._meta
    columns = ", ".join(_quoted(connection, f.column) for f in _stored_fields(model))
    where = " AND ".join(f"{_quoted(connection, _field(model, key).column)} = %s" for key in keys)
    return f"SELECT {columns} FROM {_quoted(connection, meta.db_table)} WHERE {where} LIMIT 1"  # noqa: S608


@functools.cache
def _converters(vendor: str, model: type[models.Model]) -> list[tuple[int, list[Converter], Any]]:
    """Per column, the backend's and the field's read conversions (what the ORM applies to rows)."""
    connection = transaction.get_connection()
    found = []
    for index, stored in enumerate(_stored_fields(model)):
        column = stored.get_col(model._meta.db_table)
        steps = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if steps:
            found.append((index, steps, column))
    return found


def columns(model: type[models.Model], alias: str = "") -> str:
    """The model's stored columns, in the order `from_row` reads them (qualified by `alias` if given),
    for a fixed statement that joins the model's table to another."""
    connection = transaction.get_connection()
    qualifier = f"{_quoted(connection, alias)}." if alias else ""
    return ", ".join(qualifier + _quoted(connection, f.column) for f in _stored_fields(model))


def from_row(model: type[ModelT], row: Sequence[Any], start: int = 0) -> ModelT:
    """A model instance from the columns of `row` that begin at `start` (as listed by `columns`),
    converted the way the ORM converts what it reads."""
    connection = transaction.get_connection()
    fields = _stored_fields(model)
    values = list(row[start : start + len(fields)])
    for index, steps, column in _converters(connection.vendor, model):
        for convert in steps:
            values[index] = convert(values[index], column, connection)
    return model.from_db(connection.alias, [f.attname for f in fields], values)


def get_by(model: type[ModelT], **equals: Any) -> ModelT | None:
    """The row whose fields equal `equals` (a unique key: at most one row is read), as a model
    instance loaded the way the ORM loads one, or None."""
    connection = transaction.get_connection()
    sql = _select_sql(connection.vendor, model, tuple(equals))
    params = [
        _field(model, key).get_db_prep_value(value, connection, prepared=False)
        for key, value in equals.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else from_row(model, row)


@functools.cache
def _insert_sql(vendor: str, model: type[models.Model]) -> tuple[str, list[models.Field[Any, Any]]]:
    connection = transaction.get_connection()
    meta = model._meta
    pk = meta.pk
    if pk is None or not isinstance(pk, AutoFieldMixin):
        raise TypeError(f"{meta.label} has no automatic primary key; use the ORM")
    fields = [f for f in _stored_fields(model) if f is not pk]
    columns = ", ".join(_quoted(connection, f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    table = _quoted(connection, meta.db_table)
    returning = _quoted(connection, pk.column)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING {returning}", fields  # noqa: S608


def insert_statement(instance: models.Model) -> tuple[str, list[Any]]:
    """The INSERT ... RETURNING pk statement that stores a new instance, with its parameters, for a
    caller that runs it as part of a larger statement. The instance's pre-save values (such as
    auto_now_add times) are set on it, as `save()` would set them."""
    connection = transaction.get_connection()
    sql, fields = _insert_sql(connection.vendor, type(instance))
    if instance.pk is not None:
        raise ValueError(f"{instance._meta.label} {instance.pk} is already stored")
    return sql, [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]


def stored(instance: ModelT, pk: Any) -> ModelT:
    """Mark an instance stored by `insert_statement`'s statement under its new primary key."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = transaction.get_connection().alias
    return instance


def insert(instance: ModelT) -> ModelT:
    """Store a new instance, as `instance.save()` would on a first save, and give it its primary key."""
    sql, params = insert_statement(instance)
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return stored(instance, row[0])

"""Values read back from the database checked against what Nomina writes there.

Someone holding the database file can put anything in a column: text in a score, a date that is no date,
JSON that does not parse, a number where roles belong. Nomina never writes such a value, so reading one
means the database was edited behind its back. Every column of the schema is read through
:class:`Checked`, which refuses such a value with :class:`~nomina.errors.RecordTampered` naming the table
and column, instead of letting it crash a command further on with a traceback (or, for a flag, read as
true). What a value *means* (a score changed to another score) is the audit trail's record digests'
business (:mod:`nomina.digests`); this only guarantees that what is read has the type the code expects.

The expected type is the column's ``Mapped[...]`` annotation in :mod:`nomina.store.schema`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

from ..errors import RecordTampered
from ..records import shown

__all__ = ["Checked", "CheckedBoolean", "check_reads", "conforms"]

_SIMPLE: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "datetime": datetime,
    "date": date,
    "bytes": bytes,
}

#: The type a value of each simple kind has when nothing converts it on the way out of the database.
_EXACT: dict[str, type] = {"str": str, "int": int, "float": float, "bytes": bytes}


def conforms(value: Any, kind: str) -> bool:
    """Whether ``value`` (not None) is of ``kind``, a type as the schema's annotations write it: ``str``,
    ``float``, ``list[list[float]]``, ``dict[str, object]``, ``Any``... (a bool is not an int or float; flags
    are :class:`CheckedBoolean`'s)."""
    if kind in ("Any", "object"):
        return True
    if kind.startswith("list[") and kind.endswith("]"):
        inner = kind[5:-1]
        return isinstance(value, list) and all(v is not None and conforms(v, inner) for v in value)
    if kind.startswith("dict["):
        return isinstance(value, dict)
    expected = _SIMPLE[kind]
    return isinstance(value, expected) and not isinstance(value, bool)


class Checked(TypeDecorator[Any]):
    """A column's own type (its DDL and how values are bound unchanged), its values checked as they are read.
    Not for flags: SQL comparisons of a decorated Boolean lose "IS true" (:class:`CheckedBoolean` is used)."""

    impl = NullType  # replaced by the column's own type
    cache_ok = True

    def __init__(self, inner: TypeEngine[Any], where: str, kind: str) -> None:
        super().__init__()
        self.impl = inner  # type: ignore[assignment]
        self.where = where
        self.kind = kind

    @property
    def python_type(self) -> type:
        return self.impl_instance.python_type

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        inner = super().result_processor(dialect, coltype)
        where, kind = self.where, self.kind
        exact = _EXACT.get(kind) if inner is None else None
        if exact is not None:  # the common case, kept quick: a gallery of a million faces is read in one go

            def quick(value: Any) -> Any:
                if value is None or type(value) is exact:
                    return value
                if not conforms(value, kind):
                    raise _refusal(where, value, kind)
                return value

            return quick

        def process(value: Any) -> Any:
            if value is None:
                return None
            try:
                out = value if inner is None else inner(value)
            except (ValueError, TypeError, OverflowError):
                raise _refusal(where, value, kind) from None
            if out is not None and not conforms(out, kind):
                raise _refusal(where, value, kind)
            return out

        return process


class CheckedBoolean(Boolean):
    """A flag read back checked: SQLite's flags are 0 and 1, and Boolean reads anything else as true (a user
    edited to ``active = 'no'`` would be active)."""

    def __init__(self, where: str = "", **options: Any) -> None:  # options: Boolean's, as SQLAlchemy copies it
        super().__init__(**options)
        self.where = where

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        where = self.where

        def process(value: Any) -> Any:
            if value is None or type(value) is bool:
                return value
            if type(value) is int and value in (0, 1):
                return value == 1
            raise _refusal(where, value, "bool")

        return process


def _refusal(where: str, value: Any, kind: str) -> RecordTampered:
    return RecordTampered(
        f"{where}: the database holds {shown(value)}, which Nomina never writes there (expected: {kind}): it was "
        "edited behind Nomina's back; the audit trail's check names the record",
        field=where,
    )


def check_reads(base: type[DeclarativeBase]) -> None:
    """Give every mapped column of ``base``'s tables the :class:`Checked` form of its type (once); a model
    whose readers take any value themselves says ``__checked__ = False``."""
    for mapper in base.registry.mappers:
        if not getattr(mapper.class_, "__checked__", True):
            continue
        table = mapper.local_table
        assert isinstance(table, Table)
        annotations: dict[str, Any] = {}
        for cls in reversed(mapper.class_.__mro__):
            annotations.update(getattr(cls, "__annotations__", {}))
        for column in table.columns:
            if isinstance(column.type, Checked | CheckedBoolean):
                continue
            key = mapper.get_property_by_column(column).key
            kind = _kind(str(annotations[key]))
            where = f"{table.name}.{column.name}"
            if isinstance(column.type, Boolean):  # a subclass: a decorated Boolean loses SQL's "IS true"
                column.type = CheckedBoolean(
                    where, create_constraint=column.type.create_constraint, name=column.type.name
                )
            else:
                column.type = Checked(column.type, where, kind)


def _kind(annotation: str) -> str:
    """``Mapped[float | None]`` -> ``float``."""
    inner = annotation.removeprefix("Mapped[").removesuffix("]")
    return inner.removesuffix(" | None")

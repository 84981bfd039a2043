"""Records: small immutable value classes, declared like frozen dataclasses, that cost next to nothing to define.

Importing `dataclasses` costs a process ~40 M instructions (it imports inspect, ast, dis and tokenize), and
each frozen dataclass compiles six methods when its module is imported, ~3 M instructions a class: together
they were ~40% of a cron `claims acquire` (docs/benchmarks.md). The modules that command imports declare
their records as `Record` subclasses instead, and tests/integration/test_claims_startup.py keeps
`dataclasses` off that path. Everything else may use dataclasses as usual.

    class Clock(Record):
        wall: float
        mono: float
        boot_id: str = ""

A subclass's annotated attributes are its fields, in order (a value is the field's default); it gets the
constructor, equality, hash and repr a frozen dataclass has, and `replace` makes a changed copy. Type
checkers read it as a frozen dataclass (PEP 681). Field names in `_unshown` are left out of the repr
(a token). `class Action(Record, kw_only=True)` makes a record (and its subclasses) take keyword arguments
only, as `@dataclass(kw_only=True)`: then a field without a default may follow one with a default.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from typing import Any, ClassVar, TypeVar, dataclass_transform

    R = TypeVar("R", bound="Record")
else:
    def dataclass_transform(**_kwargs):
        return lambda cls: cls


class FrozenRecordError(AttributeError):
    """A field of a record was assigned or deleted: records never change (`replace` makes a new one)."""


@dataclass_transform(frozen_default=True, eq_default=True, kw_only_default=False)
class Record:
    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _unshown: ClassVar[tuple[str, ...]] = ()
    _kw_only: ClassVar[bool] = False

    def __init_subclass__(cls, kw_only: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kw_only is not None:
            cls._kw_only = kw_only
        annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 -- this module exists to avoid inspect
        own = [name for name, kind in annotations.items() if not str(kind).startswith(("ClassVar", "typing.ClassVar"))]
        cls._fields = (*cls._fields, *(name for name in own if name not in cls._fields))
        cls._defaults = {**cls._defaults, **{name: cls.__dict__[name] for name in own if name in cls.__dict__}}
        setattr(cls, "__match_args__", cls._fields)  # noqa: B010 -- mypy refuses the assignment; patterns need it
        required = [name for name in cls._fields if name not in cls._defaults]
        if required and cls._fields.index(required[-1]) >= len(required) and not cls._kw_only:
            raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if args and self._kw_only:
            raise TypeError(f"{type(self).__name__}() takes keyword arguments only")
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        for name, value in zip(fields, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}() got {name!r} twice")
            object.__setattr__(self, name, value)
        for name in fields[len(args):]:
            if name in kwargs:
                object.__setattr__(self, name, kwargs.pop(name))
            elif name in self._defaults:
                object.__setattr__(self, name, self._defaults[name])
            else:
                raise TypeError(f"{type(self).__name__}() is missing {name!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}() has no field {next(iter(kwargs))!r}")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = (f"{name}={getattr(self, name)!r}" for name in self._fields if name not in self._unshown)
        return f"{type(self).__name__}({', '.join(shown)})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r} of a {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r} of a {type(self).__name__}")


def replace(record: R, **changes: Any) -> R:
    """A copy of `record` with `changes` (field name -> value), as `dataclasses.replace`."""
    unknown = set(changes) - set(record._fields)
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {sorted(unknown)[0]!r}")
    return type(record)(**{name: changes.get(name, getattr(record, name)) for name in record._fields})


def values(record: Record) -> dict[str, Any]:
    """Field name -> value, in field order (shallow, unlike `dataclasses.asdict`)."""
    return {name: getattr(record, name) for name in record._fields}

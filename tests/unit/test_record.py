"""core/record.py: a Record behaves as the frozen dataclass it replaces on the claim path."""

from dataclasses import FrozenInstanceError, dataclass
from dataclasses import replace as dc_replace

import pytest

from agentmesh.core.record import FrozenRecordError, Record, replace, values
from agentmesh.git.run import Git


class Point(Record):
    x: int
    y: int = 0
    label: str | None = None

    def moved(self, dx: int) -> "Point":
        return replace(self, x=self.x + dx)


@dataclass(frozen=True)
class DataPoint:
    x: int
    y: int = 0
    label: str | None = None


class Labelled(Point):
    colour: str = "red"


@pytest.mark.parametrize(("args", "kwargs"), [
    ((1,), {}), ((1, 2), {}), ((1,), {"label": "a"}), ((), {"x": 1, "y": 2, "label": "b"}), ((1, 2, "c"), {}),
])
def test_construction_equality_hash_and_repr_match_a_frozen_dataclass(args, kwargs):
    ours, theirs = Point(*args, **kwargs), DataPoint(*args, **kwargs)
    assert repr(ours).removeprefix("Point") == repr(theirs).removeprefix("DataPoint")
    assert values(ours) == {"x": theirs.x, "y": theirs.y, "label": theirs.label}
    assert ours == Point(*args, **kwargs) and hash(ours) == hash(Point(*args, **kwargs))
    assert ours != Point(99) and ours != theirs  # another class is never equal, as dataclasses do it
    changed = dc_replace(theirs, y=7)
    assert values(replace(ours, y=7)) == {"x": changed.x, "y": changed.y, "label": changed.label}


@pytest.mark.parametrize(("args", "kwargs"), [
    ((), {}),  # x is missing
    ((1, 2, "c", "d"), {}),  # too many
    ((1,), {"x": 2}),  # x twice
    ((1,), {"z": 2}),  # no such field
])
def test_bad_arguments_raise_type_error_as_a_dataclass_does(args, kwargs):
    with pytest.raises(TypeError):
        DataPoint(*args, **kwargs)
    with pytest.raises(TypeError):
        Point(*args, **kwargs)


def test_a_record_never_changes():
    p = Point(1)
    with pytest.raises(FrozenRecordError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenRecordError):
        del p.x  # type: ignore[misc]
    with pytest.raises(FrozenRecordError):
        p.other = 1  # type: ignore[attr-defined]
    assert issubclass(FrozenRecordError, AttributeError) and issubclass(FrozenInstanceError, AttributeError)
    assert p.moved(2) == Point(3) and p == Point(1)
    with pytest.raises(TypeError):
        replace(p, z=1)


def test_a_subclass_adds_fields_after_its_base():
    assert Labelled(1, 2, "l", "blue") == Labelled(x=1, y=2, label="l", colour="blue")
    assert values(Labelled(1)) == {"x": 1, "y": 0, "label": None, "colour": "red"}
    assert Labelled(1) != Point(1)


def test_a_required_field_after_a_default_is_refused_when_the_class_is_made():
    with pytest.raises(TypeError):
        class Bad(Record):
            a: int = 0
            b: int


def test_positional_patterns_match_the_fields():
    match Point(1, 2):
        case Point(x, y, None):
            assert (x, y) == (1, 2)
        case _:
            pytest.fail("no match")


def test_unshown_fields_stay_out_of_the_repr():
    git = Git(token="s3cret-token")
    assert "s3cret" not in repr(git) and git.token == "s3cret-token"


class Act(Record, kw_only=True):
    issue: int | None = None
    detail: str = ""


class Merge(Act):
    head: str  # required after the base's defaults: allowed with kw_only, as in a kw_only dataclass


@dataclass(frozen=True, kw_only=True)
class DataAct:
    issue: int | None = None
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class DataMerge(DataAct):
    head: str


def test_keyword_only_records_take_what_a_kw_only_dataclass_takes():
    assert values(Merge(head="h", issue=3)) == {"issue": 3, "detail": "", "head": "h"}
    assert repr(Merge(head="h")).removeprefix("Merge") == repr(DataMerge(head="h")).removeprefix("DataMerge")
    assert Merge(head="h") == Merge(head="h") != Merge(head="g") and hash(Merge(head="h")) == hash(Merge(head="h"))
    for make in (Merge, DataMerge):
        with pytest.raises(TypeError):
            make(3, head="h")  # positional
        with pytest.raises(TypeError):
            make(issue=3)  # the required field
    assert replace(Merge(head="h"), detail="d") == Merge(head="h", detail="d")


# Modules every cron tick imports whose value classes are Records: a frozen dataclass costs a process ~3.8 M
# instructions when its module is imported (docs/benchmarks.md, "What cron pays", session 12).
TICK_RECORD_MODULES = ("agentmesh.core.plan", "agentmesh.core.memory")


@pytest.mark.parametrize("name", TICK_RECORD_MODULES)
def test_the_ticks_value_classes_are_records(name):
    import dataclasses
    import importlib

    module = importlib.import_module(name)
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name]
    assert [c.__name__ for c in classes if dataclasses.is_dataclass(c)] == []
    assert sum(issubclass(c, Record) for c in classes) >= 9

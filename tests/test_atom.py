"""Data-only atoms: what Storage reads from them."""

from __future__ import annotations

import pytest

from persistence.atom import Atom, History, Retry, Task, version_string
from persistence.failure import Failure


def test_provides_forms_map_to_save_as():
    assert Task("a", provides="x").save_as == {"x": None}
    assert Task("a", provides=["lo", "hi"]).save_as == {"lo": 0, "hi": 1}
    assert Task("a", provides=("lo",)).save_as == {"lo": 0}
    assert Task("a", provides={"k2", "k1"}).save_as == {"k1": "k1", "k2": "k2"}
    assert Task("a", provides={"x": "key"}).save_as == {"x": "key"}
    assert Task("a").save_as == {}
    assert Task("a", provides=["lo", "hi"]).provides == frozenset({"lo", "hi"})


def test_default_provides_and_version_come_from_the_class():
    class Fetch(Task):
        default_provides = "rows"
        version = (3, 11)

    t = Fetch()
    assert t.name == "Fetch"
    assert t.save_as == {"rows": None}
    assert version_string(t) == "3.11"
    assert version_string(Task("x", version="2.0-beta")) == "2.0-beta"
    assert version_string(Task("x")) == "1.0"


def test_requires_rebind_and_optional_build_the_argument_mapping():
    t = Task("a", requires=["x", "y"], rebind={"y": "other"}, optional="z")
    assert t.rebind == {"x": "x", "y": "other", "z": "z"}
    assert t.requires == frozenset({"x", "other"})
    assert t.optional == frozenset({"z"})


def test_rebind_by_position_and_extra_names():
    t = Task("a", requires=["x", "y"], rebind=["p", "q", "r"])
    assert t.rebind == {"x": "p", "y": "q", "r": "r"}
    assert t.requires == frozenset({"p", "q", "r"})


def test_inject_is_kept_per_atom():
    assert Task("a", inject={"k": 1}).inject == {"k": 1}


@pytest.mark.parametrize("kwargs", [
    {"name": ""}, {"name": 3}, {"provides": 5}, {"requires": [""]},
    {"requires": {"a": "b"}}, {"rebind": "x"}, {"rebind": {"a": 1}},
])
def test_bad_definitions_raise_type_error(kwargs):
    kwargs.setdefault("name", "a")
    with pytest.raises(TypeError):
        Task(**kwargs)


def test_retry_is_an_atom_and_repr_names_it():
    r = Retry("again", provides="attempt")
    assert isinstance(r, Atom)
    assert repr(r) == "<Retry 'again'>"


def test_history_iterates_attempts_and_matches_failures():
    boom = Failure.from_exception(ValueError("boom"))
    history = History([(1, {}), (2, {"fetch": boom})])
    assert len(history) == 2
    assert list(history.provided_iter()) == [1, 2]
    assert history[1] == (2, {"fetch": boom})
    assert history.caused_by(ValueError)
    assert not history.caused_by(ValueError, index=0)
    assert not history.caused_by(KeyError)
    own = History([], failure=Failure.from_exception(KeyError("k")))
    assert own.caused_by(KeyError, include_retry=True)
    assert not own.caused_by(KeyError)

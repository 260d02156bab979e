"""Every public name of TaskFlow 6.5.0's persistence API has its counterpart here.

Compared with TaskFlow itself (installed from PyPI, unchanged): each public
class, function and method of ``taskflow.storage``, ``taskflow.persistence``
(``backends``, ``base``, ``path_based``, ``models``) and
``taskflow.types.failure`` exists in ``persistence``, and takes TaskFlow's
parameters under the same names, in the same order, with the same defaults
(ours may add keyword-only ones after them).  The storage-related exceptions
keep TaskFlow's relations.  What differs on purpose is in :data:`DIFFERENCES`
and in ``doc/migrating-from-taskflow.rst``.
"""

from __future__ import annotations

import inspect

import pytest

import persistence
from persistence import base, exceptions, failure, models, path_based, storage
from persistence.backends import fakefs

taskflow = pytest.importorskip("taskflow")

from taskflow import exceptions as tf_exceptions  # noqa: E402
from taskflow import storage as tf_storage  # noqa: E402
from taskflow.persistence import backends as tf_backends  # noqa: E402
from taskflow.persistence import base as tf_base  # noqa: E402
from taskflow.persistence import models as tf_models  # noqa: E402
from taskflow.persistence import path_based as tf_path_based  # noqa: E402
from taskflow.persistence.backends import impl_memory as tf_impl_memory  # noqa: E402
from taskflow.types import failure as tf_failure  # noqa: E402

#: (TaskFlow object, attribute) -> why ours differs.  Mirrored in the docs.
DIFFERENCES = {
    ("Failure", "SCHEMA"): "validation is written out in Failure.validate (no jsonschema)",
    ("backends", "fetch"): "``namespace`` defaults to 'persistence.backends', our "
                           "entry-point group",
    ("backends", "backend"): "``namespace`` defaults to 'persistence.backends', our "
                             "entry-point group",
    ("PathBasedConnection", "get_atom_details"):
        "TaskFlow's base Connection calls the parameter ad_uuid and its path-based one "
        "atom_uuid; ours is ad_uuid on every backend (positional calls are unaffected)",
    ("PathBasedConnection", "get_atoms_for_flow"):
        "as get_atom_details: fd_uuid (TaskFlow's base name) rather than flow_uuid",
    ("PathBasedConnection", "get_flow_details"):
        "as get_atom_details: fd_uuid (TaskFlow's base name) rather than flow_uuid",
}

PAIRS = [
    ("Storage", tf_storage.Storage, storage.Storage),
    ("LogBook", tf_models.LogBook, models.LogBook),
    ("FlowDetail", tf_models.FlowDetail, models.FlowDetail),
    ("AtomDetail", tf_models.AtomDetail, models.AtomDetail),
    ("TaskDetail", tf_models.TaskDetail, models.TaskDetail),
    ("RetryDetail", tf_models.RetryDetail, models.RetryDetail),
    ("Backend", tf_base.Backend, base.Backend),
    ("Connection", tf_base.Connection, base.Connection),
    ("PathBasedBackend", tf_path_based.PathBasedBackend, path_based.PathBasedBackend),
    ("PathBasedConnection", tf_path_based.PathBasedConnection,
     path_based.PathBasedConnection),
    ("Failure", tf_failure.Failure, failure.Failure),
    ("FakeFilesystem", tf_impl_memory.FakeFilesystem, fakefs.FakeFilesystem),
]

MODULES = [
    ("models", tf_models, models, ["atom_detail_class", "atom_detail_type", "ATOM_TYPES",
                                   "LogBook", "FlowDetail", "AtomDetail", "TaskDetail",
                                   "RetryDetail"]),
    ("backends", tf_backends, persistence, ["fetch", "backend"]),
    ("storage", tf_storage, storage, ["Storage", "META_INJECTED", "META_PROGRESS",
                                      "META_PROGRESS_DETAILS", "STATES_WITH_RESULTS"]),
]


def _sample(name: str):
    """An instance of our class ``name`` (attributes set in ``__init__`` count too)."""
    if name == "LogBook":
        return models.LogBook("book")
    if name in ("FlowDetail", "AtomDetail", "TaskDetail", "RetryDetail"):
        return getattr(models, name)("record", "uuid-1")
    if name == "PathBasedConnection":
        return persistence.fetch("memory://").get_connection()
    return None


def _public(cls) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_"))


def _check_signature(where: str, theirs, ours) -> None:
    try:
        their_sig, our_sig = inspect.signature(theirs), inspect.signature(ours)
    except (TypeError, ValueError):
        return
    their_params = [p for p in their_sig.parameters.values()
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    our_params = list(our_sig.parameters.values())
    our_names = [p.name for p in our_params]
    assert our_names[:len(their_params)] == [p.name for p in their_params], \
        f"{where}: TaskFlow takes {their_sig}, ours {our_sig}"
    for mine, their in zip(our_params, their_params):
        # Same default; where TaskFlow's parameter is required, ours may be optional.
        assert mine.default == their.default or their.default is inspect.Parameter.empty, \
            f"{where}({their.name}): TaskFlow's default {their.default!r}, ours {mine.default!r}"
    for extra in our_params[len(their_params):]:
        assert extra.kind in (extra.KEYWORD_ONLY, extra.VAR_KEYWORD, extra.VAR_POSITIONAL) \
            or extra.default is not inspect.Parameter.empty, \
            f"{where}: our extra parameter {extra.name!r} must be optional"


@pytest.mark.parametrize("name,theirs,ours", PAIRS, ids=[p[0] for p in PAIRS])
def test_class_has_every_public_member_with_taskflows_signature(name, theirs, ours):
    sample = _sample(name)
    for attr in _public(theirs):
        if (name, attr) in DIFFERENCES:
            continue
        assert hasattr(ours, attr) or hasattr(sample, attr), f"{name}.{attr} is missing"
        if not hasattr(ours, attr):
            continue
        their_member, our_member = getattr(theirs, attr), getattr(ours, attr)
        if callable(their_member) and not isinstance(their_member, type):
            _check_signature(f"{name}.{attr}", their_member, our_member)
    # The constructor too: TaskFlow code builds these positionally and by keyword.
    _check_signature(f"{name}.__init__", theirs.__init__, ours.__init__)
    if inspect.isabstract(theirs):
        # What a TaskFlow backend author must implement, ours asks for too (or provides).
        # The path-based primitives (underscored) differ on purpose: ours carry
        # revisions; see doc/migrating-from-taskflow.rst.
        for attr in (a for a in theirs.__abstractmethods__ if not a.startswith("_")):
            assert hasattr(ours, attr), f"{name}.{attr} (abstract in TaskFlow) is missing"


@pytest.mark.parametrize("label,theirs,ours,names", MODULES, ids=[m[0] for m in MODULES])
def test_module_level_names(label, theirs, ours, names):
    for attr in names:
        assert hasattr(ours, attr), f"{label}.{attr} is missing"
        if (label, attr) in DIFFERENCES or not callable(getattr(theirs, attr)):
            continue
        if isinstance(getattr(theirs, attr), type):
            continue
        _check_signature(f"{label}.{attr}", getattr(theirs, attr), getattr(ours, attr))


def test_module_constants_are_taskflows():
    assert storage.META_INJECTED == tf_storage.META_INJECTED
    assert storage.META_PROGRESS == tf_storage.META_PROGRESS
    assert storage.META_PROGRESS_DETAILS == tf_storage.META_PROGRESS_DETAILS
    assert set(storage.STATES_WITH_RESULTS) == set(tf_storage.STATES_WITH_RESULTS)
    assert models.ATOM_TYPES == tf_models.ATOM_TYPES


STORAGE_ERRORS = ["NotFound", "Duplicate", "StorageFailure", "DisallowedAccess",
                  "InvalidFormat", "InvalidState"]


@pytest.mark.parametrize("name", STORAGE_ERRORS)
def test_storage_errors_exist_and_take_taskflows_arguments(name):
    ours = getattr(exceptions, name)
    assert issubclass(ours, exceptions.PersistenceError)
    cause = ValueError("root")
    err = ours("message", cause)        # TaskFlow's (message, cause) form
    assert err.cause is cause and err.__cause__ is cause
    assert "message" in err.pformat() and "root" in err.pformat()
    assert str(err) == "message"


def test_a_refused_result_is_caught_as_not_found():
    """TaskFlow's Storage turns DisallowedAccess into NotFound; ours is one."""
    assert issubclass(exceptions.DisallowedAccess, exceptions.NotFound)
    err = exceptions.DisallowedAccess("no result", None, "PENDING")   # TaskFlow's order
    assert err.state == "PENDING"


def test_wrapped_failure_behaves_as_taskflows():
    def captured(exc):
        try:
            raise exc
        except Exception:
            return failure.Failure()

    one, two = captured(ValueError("a")), captured(KeyError("b"))
    theirs = tf_exceptions.WrappedFailure([tf_failure.Failure.from_exception(ValueError("a")),
                                           tf_failure.Failure.from_exception(KeyError("b"))])
    ours = failure.WrappedFailure([one, two])
    assert len(ours) == len(theirs) == 2
    assert ours.check(KeyError) is KeyError and theirs.check(KeyError) is KeyError
    assert list(ours) == [one, two]
    with pytest.raises(failure.WrappedFailure) as info:
        failure.Failure.reraise_if_any([one, two])
    assert len(info.value) == 2
    with pytest.raises(ValueError):
        failure.Failure.reraise_if_any([one])
    assert failure.Failure.reraise_if_any([]) is None


def test_failure_dicts_cross_both_ways():
    """A failure TaskFlow wrote (``causes`` list, ``exc_args``) reads back here, and
    ours validates under TaskFlow's own schema."""
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError("outer", 7) from inner
    except RuntimeError:
        theirs = tf_failure.Failure()
    ours = failure.Failure.from_dict(theirs.to_dict())
    assert ours.exc_type_names[0] == "RuntimeError" and ours.exception_str == str(theirs
                                                                                   .exception)
    assert ours.exception_args == ("outer", 7)
    assert ours.cause is not None and ours.cause.check(KeyError) is KeyError
    assert [c.exception_str for c in ours.causes] == [c.exception_str for c in theirs.causes]
    failure.Failure.validate(theirs.to_dict())
    tf_failure.Failure.validate(ours.to_dict())
    with pytest.raises(exceptions.InvalidFormat, match="exc_type_names"):
        failure.Failure.validate({"version": 1, "exception_str": "x", "traceback_str": "",
                                  "exc_type_names": ["Bogus"]})

"""Failure: capture, cause chains, matching, re-raising, formatting and dict round trips."""

from __future__ import annotations

import json

import pytest

from persistence.failure import Failure, WrappedFailure


class OuterError(RuntimeError):
    pass


class InnerError(LookupError):
    pass


def _deepest():
    raise InnerError("inner ✗")


def _middle():
    try:
        _deepest()
    except InnerError as err:
        raise OuterError("outer") from err


def _capture(fn) -> Failure:
    try:
        fn()
    except BaseException:
        return Failure()
    raise AssertionError("did not raise")


def test_capture_inside_except_block():
    failure = _capture(_middle)
    assert isinstance(failure.exception, OuterError)
    assert failure.exception_str == "outer"
    assert failure.exc_type_names == (
        f"{__name__}.OuterError", "RuntimeError", "Exception", "BaseException")
    assert "_middle" in failure.traceback_str and "raise OuterError" in failure.traceback_str


def test_cause_chain_is_captured():
    failure = _capture(_middle)
    cause = failure.cause
    assert cause is not None and cause.cause is None
    assert cause.exc_type_names == (
        f"{__name__}.InnerError", "LookupError", "Exception", "BaseException")
    assert cause.exception_str == "inner ✗"
    assert "_deepest" in cause.traceback_str
    assert isinstance(cause.exception, InnerError)


def test_implicit_context_is_a_cause_unless_suppressed():
    def implicit():
        try:
            raise KeyError("first")
        except KeyError:
            raise ValueError("second")  # noqa: B904 - the implicit context is the point

    def suppressed():
        try:
            raise KeyError("first")
        except KeyError:
            raise ValueError("second") from None

    assert _capture(implicit).cause.check(KeyError) is KeyError
    assert _capture(suppressed).cause is None


def test_from_exception_and_no_exception():
    err = ValueError("x")
    failure = Failure.from_exception(err)
    assert failure.exception is err and failure.traceback_str == ""
    assert failure.exc_type_names[0] == "ValueError"
    with pytest.raises(ValueError):
        Failure()  # outside an except block
    with pytest.raises(ValueError):
        Failure(exc_type_names=[])


def test_check_by_class_by_name_and_order():
    failure = _capture(_middle)
    assert failure.check(OuterError) is OuterError
    assert failure.check(RuntimeError) is RuntimeError
    assert failure.check(Exception) is Exception
    assert failure.check(InnerError, KeyError) is None
    assert failure.check(KeyError, RuntimeError, OuterError) is RuntimeError
    assert failure.check("RuntimeError") == "RuntimeError"
    assert failure.check(f"{__name__}.OuterError") == f"{__name__}.OuterError"
    assert failure.check("OuterError") is None  # names are module-qualified
    assert failure.cause.check(LookupError) is LookupError


def test_dict_round_trip_keeps_everything_but_the_live_exception():
    failure = _capture(_middle)
    data = json.loads(json.dumps(failure.to_dict()))
    assert data["version"] == 1
    back = Failure.from_dict(data)
    assert back.exception is None and back.cause.exception is None
    assert back.exc_type_names == failure.exc_type_names
    assert back.exception_str == failure.exception_str
    assert back.traceback_str == failure.traceback_str
    assert back.cause.exc_type_names == failure.cause.exc_type_names
    assert back.matches(failure) and failure.matches(back)
    assert back == failure and hash(back) == hash(failure)
    assert back.check(OuterError) is OuterError and back.check("LookupError") is None
    assert back.cause.check(InnerError) is InnerError


def test_from_dict_rejects_garbage():
    for bad in ({}, {"exc_type_names": None}, {"exc_type_names": []}, "nope"):
        with pytest.raises(ValueError):
            Failure.from_dict(bad)


def test_matches_compares_types_message_traceback_and_cause():
    failure = _capture(_middle)
    data = failure.to_dict()
    for key, value in (("exception_str", "other"), ("traceback_str", "tb"),
                       ("exc_type_names", ["ValueError"]), ("cause", None)):
        other = Failure.from_dict({**data, key: value})
        assert not failure.matches(other), key
        assert failure != other
    deeper_cause = dict(data["cause"], exception_str="different inner")
    assert not failure.matches(Failure.from_dict({**data, "cause": deeper_cause}))
    assert not failure.matches("not a failure")
    assert failure != "not a failure"


def test_reraise_live_and_reloaded():
    failure = _capture(_middle)
    with pytest.raises(OuterError) as info:
        failure.reraise()
    assert info.value is failure.exception
    reloaded = Failure.from_dict(failure.to_dict())
    with pytest.raises(WrappedFailure) as info:
        reloaded.reraise()
    assert info.value.failure is reloaded
    assert info.value.check(RuntimeError) is RuntimeError
    assert "outer" in str(info.value)


def test_pformat_str_and_repr():
    failure = _capture(_middle)
    assert failure.pformat() == f"Failure: {__name__}.OuterError: outer"
    assert str(failure) == failure.pformat()
    assert repr(failure) == f"<Failure {__name__}.OuterError: 'outer'>"
    full = failure.pformat(traceback=True)
    assert "Traceback (most recent call last):" in full
    assert "_middle" in full and "Caused by:" in full
    assert f"Failure: {__name__}.InnerError: inner ✗" in full
    assert full.index("Caused by:") < full.index("_deepest")


def test_copy_matches_and_keeps_live_exception():
    failure = _capture(_middle)
    clone = failure.copy()
    assert clone is not failure and clone.matches(failure)
    assert clone.exception is failure.exception
    assert clone.cause is not failure.cause and clone.cause.matches(failure.cause)

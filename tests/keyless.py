"""One check for "no secret anywhere in an error": its chain, its typed sub-errors, their text."""

from __future__ import annotations

import mmsdk


def exception_chain(error: BaseException) -> list[BaseException]:
    """*error* and every exception reachable from it: ``__cause__``, ``__context__``, ``.errors``."""
    seen: dict[int, BaseException] = {}
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen[id(current)] = current
        pending += [current.__cause__, current.__context__, *getattr(current, "errors", [])]
    return list(seen.values())


def assert_keyless(error: BaseException, secret: str, *, only_mmsdk: bool = True) -> None:
    """No exception reachable from *error* shows *secret* in its text, args or attributes.

    With *only_mmsdk*, every one of them must also be an mmsdk error: an SDK
    exception (its request holds the auth header) must not stay reachable, not
    even as a suppressed ``__context__``.
    """
    chain = exception_chain(error)
    if only_mmsdk:
        assert all(isinstance(e, mmsdk.MMSDKError) for e in chain), chain
    for item in chain:
        for text in (str(item), repr(item), repr(item.args), repr(vars(item))):
            assert secret not in text, (type(item).__name__, text)

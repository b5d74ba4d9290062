"""The date model-lifecycle decisions are made against, and lifecycle tables read with it.

Whether a model name is retired (fails before any request), deprecated (works,
with a note) or about to shut down (works, with a note and a warning) depends
on the date. Every such decision reads :func:`today`, never ``date.today()``,
so tests and "what breaks next month?" checks can pin one date for the whole
process::

    from mmsdk.testing import pinned_today

    with pinned_today(datetime.date(2027, 1, 15)):
        ...  # every plugin sees 2027-01-15

or, for a whole process and the processes it starts, ``MMSDK_TODAY=2027-01-15``
(``MMSDK_TODAY=2027-01-15 mmsdk providers`` shows what stops working by then).
A pinned date wins over the variable, which wins over the real date.

Plugins describe their models' end-of-life dates with :class:`ModelLifecycle`
and hand ``lifecycle.retired`` (a mapping evaluated on every lookup) to their
``ProviderSpec``; the decision is made when a name is resolved or called, not
when the plugin is registered.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ._errors import InvalidInputError, UnknownProviderError

__all__ = ["ENV_VAR", "WARN_DAYS", "EndOfLife", "ModelDeprecationWarning", "ModelLifecycle", "pin", "today"]

ENV_VAR = "MMSDK_TODAY"
# A model this close to its end-of-life warns (once per process) on first use.
WARN_DAYS = 30

_pinned: dt.date | None = None
_lock = threading.Lock()
_warned: set[str] = set()


def today() -> dt.date:
    """The date lifecycle decisions use: the pinned one, else ``MMSDK_TODAY``, else the
    real local date."""
    pinned = _pinned
    if pinned is not None:
        return pinned
    text = os.environ.get(ENV_VAR)
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{ENV_VAR}={text!r} is not a date; set it as YYYY-MM-DD "
                                f"(e.g. 2027-01-15) or unset it.") from None


def pin(day: dt.date | None) -> dt.date | None:
    """Make :func:`today` return *day* (``None``: the real date again); returns the previous pin.

    A new date is a new situation: which models already warned is forgotten.
    Tests use :func:`mmsdk.testing.pinned_today` rather than this.
    """
    global _pinned
    if day is not None and (not isinstance(day, dt.date) or isinstance(day, dt.datetime)):
        raise TypeError(f"pin() takes a datetime.date or None, got {day!r}")
    with _lock:
        previous, _pinned = _pinned, day
        _warned.clear()
    return previous


class ModelDeprecationWarning(FutureWarning):
    """A model in use shuts down soon: move to the successor the message names.

    A :class:`FutureWarning` (shown by default) because it is meant for whoever
    runs the app, not only for library developers. Issued once per model per
    process; the same note is also in ``result.warnings`` of every call.
    """


@dataclass(frozen=True)
class EndOfLife:
    """One model's announced end-of-life: the first day it no longer works, and its successor."""

    date: dt.date
    successor: str


class _Retired(Mapping[str, str]):
    """Names past end-of-life on :func:`today`, each mapped to a message naming its successor.

    Evaluated on every lookup, so a name retires the day its date passes in a
    process that has been running since before. ``lifecycle`` is the table it
    reads (``mmsdk providers`` asks it for deprecation notes).
    """

    def __init__(self, lifecycle: ModelLifecycle) -> None:
        self.lifecycle = lifecycle

    def __getitem__(self, model: str) -> str:
        message = self.lifecycle.retired_message(model)
        if message is None:
            raise KeyError(model)
        return message

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lifecycle.retired_message(model) is not None

    def __iter__(self) -> Iterator[str]:
        day = today()
        dated = [name for name, eol in self.lifecycle.table.items() if eol.date <= day]
        return iter([*self.lifecycle.shut_down, *dated])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<retired {self.lifecycle.plugin} models on {today().isoformat()}: {list(self)}>"


class ModelLifecycle:
    """A plugin's end-of-life table, read against :func:`today` on every question.

    Args:
        plugin: the plugin name in provider strings (``"openai"``).
        table: model name -> :class:`EndOfLife` (or a ``(date, successor)`` pair).
            The date is the first day the provider no longer serves the model.
        messages: optional text per model for the retired message, used instead
            of the generated one (e.g. the provider's own wording).
        shut_down: names shut down before any date was recorded, each mapped to
            the message naming its successor: retired on every date.

    Example:
        >>> import datetime as dt
        >>> from mmsdk.testing import pinned_today
        >>> life = ModelLifecycle("acme", {"v1": (dt.date(2026, 1, 1), "v2")})
        >>> with pinned_today(dt.date(2026, 2, 1)):
        ...     "v1" in life.retired
        True
    """

    def __init__(self, plugin: str,
                 table: Mapping[str, EndOfLife | tuple[dt.date, str]],
                 messages: Mapping[str, str] | None = None,
                 shut_down: Mapping[str, str] | None = None) -> None:
        self.plugin = plugin
        self.table: dict[str, EndOfLife] = {
            name: entry if isinstance(entry, EndOfLife) else EndOfLife(*entry)
            for name, entry in table.items()}
        self.messages = dict(messages or {})
        self.shut_down = dict(shut_down or {})
        self.retired: Mapping[str, str] = _Retired(self)

    def end_of_life(self, model: str) -> EndOfLife | None:
        """The announced end-of-life of *model*, or ``None`` when none is known."""
        return self.table.get(model)

    def retired_message(self, model: str) -> str | None:
        """Why *model* fails before any request (``None`` while it still works)."""
        if model in self.shut_down:
            return self.shut_down[model]
        eol = self.table.get(model)
        if eol is None or eol.date > today():
            return None
        return self.messages.get(model) or (
            f"It reached end-of-life on {eol.date.isoformat()}; use "
            f"'{self.plugin}:{eol.successor}' instead.")

    def deprecation(self, model: str) -> str | None:
        """A note for a model that still works but has an announced end-of-life, else ``None``."""
        eol = self.table.get(model)
        if eol is None or eol.date <= today():
            return None
        return (f"{self.plugin}:{model} is deprecated and reaches end-of-life on "
                f"{eol.date.isoformat()}; move to '{self.plugin}:{eol.successor}'.")

    def days_left(self, model: str) -> int | None:
        """Days until *model* stops working (0 or less: already past), or ``None``."""
        eol = self.table.get(model)
        return None if eol is None else (eol.date - today()).days

    def soon(self, model: str, days: int = WARN_DAYS) -> bool:
        """Whether *model* is still served but reaches end-of-life within *days*."""
        left = self.days_left(model)
        return left is not None and 0 < left <= days

    def on_call(self, model: str) -> list[str]:
        """Lifecycle check at the start of a call to *model*: notes for ``result.warnings``.

        Raises :class:`UnknownProviderError` (before any request) when *model*
        is retired by now: a process that resolved the name earlier must not
        keep calling it past its end-of-life. On the first call of a model
        within :data:`WARN_DAYS` of its end-of-life it also issues a
        :class:`ModelDeprecationWarning`, once per model per process.
        """
        retired = self.retired_message(model)
        if retired is not None:
            raise UnknownProviderError(f"{self.plugin}:{model} is retired. {retired}",
                                       provider=f"{self.plugin}:{model}", code="retired_model")
        note = self.deprecation(model)
        if note is None:
            return []
        if self.soon(model):
            key = f"{self.plugin}:{model}"
            with _lock:
                first = key not in _warned
                _warned.add(key)
            if first:
                warnings.warn(note, ModelDeprecationWarning, stacklevel=2)
        return [note]

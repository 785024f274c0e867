"""The base of every answer a projection gives."""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

import msgspec

K = TypeVar("K")
V = TypeVar("V")


class ReadOnlyDict(dict[K, V]):
    """A dict an answer holds: read like any dict (and encoded as one), never changed.

    Answers are shared (cached views, the live state's derived answers): a caller that
    changed one in place changed every later answer and its digest.
    """

    __slots__ = ()

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:  # noqa: ANN401 - any call
        msg = "an answer's mapping is read-only: copy it (dict(...)) to change it"
        raise TypeError(msg)

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple[type[ReadOnlyDict[K, V]], tuple[dict[K, V]]]:
        """Copied and pickled whole (`copy` would otherwise fill an empty one item by item)."""
        return (type(self), (dict(self),))


class View(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of the answers: immutable, keyword-only, encodable as JSON.

    `gc=False`: answers hold no reference cycles, so the garbage collector need not track
    the hundreds of thousands a large view has.
    """

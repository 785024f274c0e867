"""The base of every answer a projection gives."""

from __future__ import annotations

import msgspec


class View(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of the answers: immutable, keyword-only, encodable as JSON.

    `gc=False`: answers hold no reference cycles, so the garbage collector need not track
    the hundreds of thousands a large view has.
    """

"""Pausing CPython's cyclic garbage collector while a fold or a derivation runs.

A replay allocates millions of objects that live on (the state) and none that form
reference cycles; the collector would traverse the growing heap again and again for
nothing (about a quarter of a 200,000-event replay). Reference counting still frees
everything as usual. The collector is switched back on afterwards only if it was on
before, so nested and concurrent pauses leave it as they found it, at worst collecting
a little later.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (if it was on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def without_gc(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function to run under `paused_gc`."""

    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused_gc():
            return function(*args, **kwargs)

    return paused

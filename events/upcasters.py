"""Schema evolution: old payload versions are upcast on read, never rewritten in the log.

An upcaster turns the `data` of version N of a type into version N+1. `CURRENT_VERSIONS`
holds the version the code writes; a type not listed is at version 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

CURRENT_VERSIONS: dict[str, int] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def current_version(event_type: str) -> int:
    """The schema version the code writes for a type."""
    return CURRENT_VERSIONS.get(event_type, 1)


def register_upcaster(event_type: str, from_version: int, upcaster: Upcaster) -> None:
    """Register the step from `from_version` to the next and make that next one current if newer."""
    _UPCASTERS[(event_type, from_version)] = upcaster
    CURRENT_VERSIONS[event_type] = max(current_version(event_type), from_version + 1)


def unregister_upcaster(event_type: str, from_version: int) -> None:
    """Remove a step (tests use this to restore the registry)."""
    del _UPCASTERS[(event_type, from_version)]
    steps = [v for (t, v) in _UPCASTERS if t == event_type]
    if steps:
        CURRENT_VERSIONS[event_type] = max(steps) + 1
    else:
        CURRENT_VERSIONS.pop(event_type, None)


def upcast(event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    """Bring `data` of `version` up to the current version of its type, one step at a time."""
    target = current_version(event_type)
    while version < target:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            msg = f"no upcaster for {event_type} from version {version}"
            raise LookupError(msg)
        data = step(data)
        version += 1
    return data

"""The ASGI entry point for servers that import an app factory (`uvicorn --factory`, granian)."""

from __future__ import annotations

from litestar import Litestar

from service.app import create_app
from service.settings import load_settings


def application() -> Litestar:
    """The app on the settings of the environment (`LEDGER_*`)."""
    return create_app(load_settings())

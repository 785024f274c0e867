"""The body of `POST /v1/events`, decoded once from its bytes.

The batch's own fields are decoded into `BatchIn`, each event kept as its raw JSON; each
event is then decoded once, by the decoder `ledger append` uses (`events.intake`), from
those very bytes. Nothing is decoded into Python values and encoded again on the way, so a
money amount sent as a JSON number keeps every digit (`1.10` stays `1.10`; through a float
it was `1.1`, and `12345678901234567890.12` lost its cents), and every event's bad fields
are named, whichever event they are in.

The route (through `BatchDTO`, Litestar's own hook for decoding a body) and the fast path
of `service.fastpost` share these functions, so both accept exactly the same batches and
build exactly the same events from them.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar.dto import AbstractDTO
from litestar.exceptions import ClientException
from litestar.typing import FieldDefinition
from msgspec import Meta

from events.codec import TOO_DEEP, invalid_from
from events.envelope import NewEvent, StreamName
from events.errors import InvalidEvent
from events.field_errors import every_error
from events.intake import parse_event
from service.problems import invalid
from service.schemas import AppendBody

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.dto._backend import DTOBackend
    from litestar.openapi.spec import Reference, Schema


Version = Annotated[int, Meta(ge=0)]


class BatchIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`AppendBody` with each event still raw JSON: what a batch is before its events."""

    events: list[msgspec.Raw]
    expected_versions: dict[StreamName, Version] | None = None


class _Wire(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`BatchIn` with `expected_versions` unchecked, so that each bad entry can be named."""

    events: list[msgspec.Raw]
    expected_versions: dict[str, msgspec.Raw] | None = None


_BATCH = msgspec.json.Decoder(_Wire)
_STREAM = msgspec.json.Decoder(StreamName)
_VERSION = msgspec.json.Decoder(Version)


def decode_batch(body: bytes) -> BatchIn:
    """The batch's own fields: 400 if the body is not JSON, 422 naming each bad field's path.

    A bad entry of `expected_versions` is named by its key (`$.expected_versions["site-x"]`).
    """
    try:
        wire = _BATCH.decode(body)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: JSON, not a batch
        raise invalid([invalid_from(exc)]) from None
    except msgspec.DecodeError as exc:
        raise ClientException(status_code=400, detail=str(exc)) from None
    except RecursionError:  # msgspec's depth guard (about 1,000 levels): bad input
        raise ClientException(status_code=400, detail=TOO_DEEP) from None
    if wire.expected_versions is None:
        return BatchIn(events=wire.events)
    errors: list[InvalidEvent] = []
    versions: dict[str, int] = {}
    for stream, raw in wire.expected_versions.items():
        path = f"$.expected_versions[{msgspec.json.encode(stream).decode()}]"
        try:
            _STREAM.decode(msgspec.json.encode(stream))
            versions[stream] = _VERSION.decode(raw)
        except msgspec.ValidationError as exc:
            errors.append(InvalidEvent(invalid_from(exc).message, path))
    if errors:
        raise invalid(errors)
    return BatchIn(events=wire.events, expected_versions=versions)


def events_of(batch: BatchIn, subject: str) -> list[NewEvent]:
    """Every event of the batch, validated; 422 naming every bad field of every event.

    `subject` (the token's) becomes each event's `metadata.recorded_by`.
    """
    errors: list[InvalidEvent] = []
    events: list[NewEvent] = []
    for index, raw in enumerate(batch.events):
        try:
            events.append(parse_event(raw, subject))
        except InvalidEvent as exc:  # each bad field of it, not only the first
            errors.extend(e.under(f"$.events[{index}]") for e in every_error(raw, exc))
    if errors:
        raise invalid(errors)
    if not events:
        raise invalid([InvalidEvent("a batch holds at least one event", "$.events")])
    return events


class BatchDTO(AbstractDTO[BatchIn]):
    """Litestar's body hook for the append route: `decode_batch` on the body's bytes.

    Litestar would otherwise decode the body into Python values and convert those into the
    handler's type, a second pass over the batch. The OpenAPI document still describes the
    wire shape, `AppendBody`.
    """

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[Any, None, None]:
        """No transfer model: nothing to generate."""
        del model_type
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        """No transfer model: nothing is nested."""
        del field_definition
        return False

    @classmethod
    def create_for_field_definition(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        backend_cls: type[DTOBackend] | None = None,
    ) -> None:
        """No backend to build: `decode_bytes` decodes by itself."""
        del field_definition, handler_id, backend_cls

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        """The request body as clients send it: `AppendBody`."""
        del handler_id
        return schema_creator.for_field_definition(
            FieldDefinition.from_annotation(
                AppendBody, kwarg_definition=field_definition.kwarg_definition
            )
        )

    def decode_bytes(self, value: bytes) -> BatchIn:
        """The batch's own fields, each event still raw (`decode_batch`)."""
        return decode_batch(value)

    def decode_builtins(self, value: dict[str, Any]) -> BatchIn:
        """Not used for JSON bodies (Litestar decodes them with `decode_bytes`)."""
        return decode_batch(msgspec.json.encode(value))

"""The OpenAPI document's settings: bearer auth, headers, and a schema Litestar gets wrong.

`/schema` describes what the service checks: the bearer token and its scope on every write
(and every read when reads need a token too), and arrays such as `metadata.tags`
(`Annotated[tuple[Label, ...], Meta(max_length=…)]`), which Litestar 2 renders with an
item schema of `oneOf: [string, {}]` (the `...` taken for a second item type): a schema
that every real tag breaks, since a string matches both branches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar.datastructures import ResponseHeader
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.plugins import OpenAPISchemaPlugin
from litestar.routes import HTTPRoute

from events.log import MAX_POSITION
from events.payloads import PAYLOAD_TYPES

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

BEARER: Final = "bearer"
"""The security scheme's name in the document."""

WRITE_SECURITY: Final[list[dict[str, list[str]]]] = [{BEARER: []}]

POSITION_BOUNDS: Final = {"minimum": 0, "maximum": MAX_POSITION}
"""A position parameter's bounds as integers (Litestar renders `ge=0` as nothing or 0.0,
and `le=MAX_POSITION` as a float past it)."""

# Headers the answers carry, for the document only (the code that sets them is elsewhere).
REQUEST_ID_HEADER: Final = ResponseHeader(
    name="X-Request-ID",
    documentation_only=True,
    description="The request's id: the one sent, if it was valid, else a new one; in the log",
)
ETAG_HEADER: Final = ResponseHeader(
    name="ETag",
    documentation_only=True,
    description="A weak ETag of the answer: send it as If-None-Match to get a 304",
)
LINK_HEADER: Final = ResponseHeader(
    name="Link",
    documentation_only=True,
    description='`<URL of the next page>; rel="next"`, while entries remain (as `next`)',
)
"""The `security` of a route that needs a token (its scope is in its description)."""


def components() -> Components:
    """The document's shared components: the bearer token scheme."""
    return Components(
        security_schemes={
            BEARER: SecurityScheme(
                type="http",
                scheme="bearer",
                description="A token from `ledger token create --scope append|admin`: scope"
                " `append` for `POST /v1/events`, `admin` for the audit replay (and for"
                " everything `append` may do); reads too once the service runs with"
                " `LEDGER_READ_TOKEN_REQUIRED=true` (any scope).",
            )
        }
    )


class VariadicTuples(OpenAPISchemaPlugin):
    """`tuple[X, ...]` with length bounds: an array of X, with `minItems` and `maxItems`."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        """A tuple of any length of one item type."""
        inner = field_definition.inner_types
        return field_definition.origin is tuple and len(inner) == 2 and inner[1].annotation is ...

    def to_openapi_schema(
        self,
        field_definition: FieldDefinition,
        schema_creator: SchemaCreator,
    ) -> Schema:
        """The array schema, its bounds from the field's constraints."""
        schema = Schema(
            type=OpenAPIType.ARRAY,
            items=schema_creator.for_field_definition(field_definition.inner_types[0]),
        )
        bounds: Any = field_definition.kwarg_definition
        if bounds is not None:
            schema.min_items = bounds.min_items or bounds.min_length
            schema.max_items = bounds.max_items or bounds.max_length
        return schema


def document_headers(app: Litestar) -> None:
    """Every 2xx answer of the document lists the response headers its route declares.

    Litestar lists them on the success answer it makes itself, not on one a route gives in
    its `responses` (every projection route's 200, the append's 200 replay). The document
    is built here once, with them, and kept: Litestar serves the one it built.
    """
    declared: dict[str, dict[str, OpenAPIHeader]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler, _ in route.route_handler_map.values():
                if isinstance(handler.operation_id, str):
                    declared[handler.operation_id] = {
                        header.name: OpenAPIHeader(
                            schema=Schema(type=OpenAPIType.STRING),
                            description=header.description,
                        )
                        for header in handler.resolve_response_headers()
                    }
    for item in (app.openapi_schema.paths or {}).values():
        for operation in (item.get, item.put, item.post, item.delete, item.patch):
            if operation is None or operation.operation_id not in declared:
                continue
            for status, answer in (operation.responses or {}).items():
                if status.startswith("2") and isinstance(answer, OpenAPIResponse):
                    answer.headers = {**declared[operation.operation_id], **(answer.headers or {})}


OUR_PACKAGES: Final = frozenset({"events", "projections", "service"})
"""Where the Structs behind the document's components come from."""


def _our_structs() -> dict[str, list[type[msgspec.Struct]]]:
    """Our msgspec Structs by class name (the document's component names)."""
    found: dict[str, list[type[msgspec.Struct]]] = {}
    pending: list[type[msgspec.Struct]] = [msgspec.Struct]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in OUR_PACKAGES:
            found.setdefault(cls.__name__, []).append(cls)
    return found


def zero_bounds(app: Litestar) -> None:
    """The bounds of 0 Litestar leaves out of the document (it tests a bound for truth).

    `sequence` said `maximum: 1000000` and nothing below, `expected_versions` a plain
    integer: a client generated from the document sent -1 and got a 422. Each integer
    field (or map value) of our Structs whose `ge` is 0 gets its `minimum: 0` back.
    """
    schemas = app.openapi_schema.components.schemas or {}
    for name, classes in _our_structs().items():
        schema = schemas.get(name)
        if len(classes) != 1 or not isinstance(schema, Schema) or not schema.properties:
            continue
        info = msgspec.inspect.type_info(classes[0])
        if not isinstance(info, msgspec.inspect.StructType):
            continue
        for field in info.fields:
            prop = schema.properties.get(field.encode_name)
            if isinstance(prop, Schema):
                _floor_zero(prop, field.type)


def _floor_zero(schema: Schema, kind: msgspec.inspect.Type) -> None:
    """`minimum: 0` on `schema` (or on its map's values) where the type says `ge=0`."""
    if isinstance(kind, msgspec.inspect.UnionType):  # `X | None`: the bound sits beside oneOf
        inner = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(inner) != 1:
            return
        kind = inner[0]
        if isinstance(kind, msgspec.inspect.DictType):
            schema = next(
                (s for s in schema.one_of or () if isinstance(s, Schema) and s.type == "object"),
                schema,
            )
    if isinstance(kind, msgspec.inspect.IntType) and kind.ge == 0 and schema.minimum is None:
        schema.minimum = 0
    elif isinstance(kind, msgspec.inspect.DictType) and isinstance(
        schema.additional_properties, Schema
    ):
        _floor_zero(schema.additional_properties, kind.value_type)


def page_bounds(app: Litestar, page_limit: int) -> None:
    """Every `limit` parameter's `maximum`: the page limit this service runs with (else 422)."""
    for item in (app.openapi_schema.paths or {}).values():
        for parameter in (item.get.parameters or []) if item.get is not None else []:
            schema = getattr(parameter, "schema", None)
            if getattr(parameter, "name", None) == "limit" and isinstance(schema, Schema):
                schema.maximum = page_limit


_REF: Final = "#/components/schemas/{name}"
SENT: Final = "In"
"""The suffix of a payload's component as a client sends it (an amount may be a number)."""


def payload_schemas(app: Litestar) -> None:
    """An event's `data` typed: one of the payload types (which one, `type` says).

    `data` was any object in the document, so a generated client could build no payload.
    The payloads' components are msgspec's own schema of the payload Structs: as the
    answers give them (amounts as decimal strings; components Litestar made already, such
    as `Money`, are kept), and as a body may send them (`…In`: an amount also as a JSON
    number, read exactly).
    """
    _, found = msgspec.json.schema_components(list(PAYLOAD_TYPES.values()), ref_template=_REF)
    schemas = app.openapi_schema.components.schemas
    if schemas is None:
        return
    for name, schema in found.items():
        schemas.setdefault(name, schema)  # a JSON Schema, kept as msgspec wrote it
        schemas[name + SENT] = _as_sent(name, schema, set(found))
    for component, suffix in (("EventBody", SENT), ("EventOut", "")):
        target = schemas.get(component)
        if isinstance(target, Schema) and target.properties is not None:
            which = ", ".join(f"`{tag}`: {c.__name__}{suffix}" for tag, c in PAYLOAD_TYPES.items())
            target.properties["data"] = Schema(
                any_of=[
                    Reference(ref=_REF.format(name=cls.__name__ + suffix))
                    for cls in PAYLOAD_TYPES.values()
                ],
                description=f"The payload of the event's `type` ({which})",
            )


def _as_sent(name: str, schema: Any, ours: set[str]) -> Any:  # noqa: ANN401 - JSON Schema
    """A payload component as a body may send it: its references to `…In`, numbers taken."""
    if isinstance(schema, dict):
        copied = {key: _as_sent(name, value, ours) for key, value in schema.items()}
        ref = copied.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in ours:
            copied["$ref"] = ref + SENT
        if name == "Money" and copied.get("format") == "decimal":  # `amount`: 1.5 or "1.5"
            return {"anyOf": [copied, {"type": "number"}]}
        return copied
    if isinstance(schema, list):
        return [_as_sent(name, item, ours) for item in schema]
    return schema


def close_objects(app: Litestar) -> None:
    """`additionalProperties: false` on the document's objects that refuse unknown fields.

    The msgspec Structs behind them (`forbid_unknown_fields`) answer an unknown field with
    a 422; the document did not say so, so a client generated from it would send extras.
    A component is closed only if every Struct of ours by its name refuses them.
    """
    refusing: dict[str, bool] = {}
    pending: list[type[msgspec.Struct]] = [msgspec.Struct]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in OUR_PACKAGES:
            refuses = bool(cls.__struct_config__.forbid_unknown_fields)
            refusing[cls.__name__] = refusing.get(cls.__name__, True) and refuses
    components = app.openapi_schema.components
    for name, schema in (components.schemas or {}).items():
        if refusing.get(name) and isinstance(schema, Schema) and schema.type == OpenAPIType.OBJECT:
            schema.additional_properties = False

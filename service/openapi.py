"""The OpenAPI document's settings: bearer auth, and a schema Litestar would get wrong.

`/schema` describes what the service checks: the bearer token and its scope on every write
(and every read when reads need a token too), and arrays such as `metadata.tags`
(`Annotated[tuple[Label, ...], Meta(max_length=…)]`), which Litestar 2 renders with an
item schema of `oneOf: [string, {}]` (the `...` taken for a second item type): a schema
that every real tag breaks, since a string matches both branches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from litestar.openapi.spec import Components, OpenAPIType, Schema, SecurityScheme
from litestar.plugins import OpenAPISchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

BEARER: Final = "bearer"
"""The security scheme's name in the document."""

WRITE_SECURITY: Final[list[dict[str, list[str]]]] = [{BEARER: []}]
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

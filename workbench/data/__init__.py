"""Data: split tables, readers for real datasets, the synthetic generator, transforms, samplers."""

from workbench.data.schema import (
    DUKE_ATTRIBUTES,
    MARKET_ATTRIBUTES,
    Attribute,
    get_schema,
    schema_table,
)
from workbench.data.split import FileNameError, Split, parse_market_name, relabel

__all__ = [
    "DUKE_ATTRIBUTES",
    "MARKET_ATTRIBUTES",
    "Attribute",
    "FileNameError",
    "Split",
    "get_schema",
    "parse_market_name",
    "relabel",
    "schema_table",
]

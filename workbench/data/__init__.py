"""Data: split tables, readers for real datasets, the synthetic generator, transforms, samplers."""

from workbench.data.attributes import (
    AttributeFileError,
    check_attributes,
    load_attributes,
    write_attribute_mat,
)
from workbench.data.readers import DatasetLayoutError, layout_names, load_split
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
    "AttributeFileError",
    "DatasetLayoutError",
    "FileNameError",
    "Split",
    "check_attributes",
    "get_schema",
    "layout_names",
    "load_attributes",
    "load_split",
    "parse_market_name",
    "relabel",
    "schema_table",
    "write_attribute_mat",
]

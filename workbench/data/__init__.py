"""Data: split tables, readers for real datasets, the synthetic generator, transforms, samplers."""

from workbench.data.attributes import (
    AttributeFileError,
    check_attributes,
    load_attributes,
    write_attribute_mat,
)
from workbench.data.dataset import ImageDecodeError, ReIDDataset, collate
from workbench.data.readers import DatasetLayoutError, layout_names, load_split
from workbench.data.sampler import DistributedIdentitySampler, RandomIdentitySampler
from workbench.data.schema import (
    DUKE_ATTRIBUTES,
    MARKET_ATTRIBUTES,
    Attribute,
    get_schema,
    schema_table,
)
from workbench.data.split import FileNameError, Split, parse_market_name, relabel
from workbench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_transforms,
    denormalize,
    worker_init_fn,
)

__all__ = [
    "DUKE_ATTRIBUTES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MARKET_ATTRIBUTES",
    "Attribute",
    "AttributeFileError",
    "DatasetLayoutError",
    "DistributedIdentitySampler",
    "FileNameError",
    "ImageDecodeError",
    "RandomIdentitySampler",
    "ReIDDataset",
    "Split",
    "build_transforms",
    "check_attributes",
    "collate",
    "denormalize",
    "get_schema",
    "layout_names",
    "load_attributes",
    "load_split",
    "parse_market_name",
    "relabel",
    "schema_table",
    "worker_init_fn",
    "write_attribute_mat",
]

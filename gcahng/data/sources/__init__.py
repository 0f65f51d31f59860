"""The built-in datasets and the registry they fill: importing this package registers them in ``DATASETS``."""
from gcahng.data.sources import cars196, cub200, digits, folder, inshop, sop
from gcahng.data.sources.base import DATASETS, ArchiveSpec, DatasetSource

__all__ = ["DATASETS", "ArchiveSpec", "DatasetSource", "cars196", "cub200", "digits", "folder", "inshop", "sop"]

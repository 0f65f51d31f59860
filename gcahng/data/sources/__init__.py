"""The built-in datasets; importing this package registers them in ``DATASETS``."""
from gcahng.data.sources import cars196, cub200, digits, folder, inshop, sop

__all__ = ["cars196", "cub200", "digits", "folder", "inshop", "sop"]

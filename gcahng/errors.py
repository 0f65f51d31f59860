"""Exceptions that carry a message meant for the user.

The CLI prints any :class:`GcahngError` as ``Error: <message>`` and exits non-zero, so
library code raises these (or their subclasses) for problems the user can fix.
"""
from __future__ import annotations


class GcahngError(Exception):
    """Base class for errors whose message is shown to the user as is."""


class InputError(GcahngError, ValueError):
    """A value passed in (tensor, argument, option) is not acceptable."""


class ConfigError(GcahngError, ValueError):
    """A configuration file or option is invalid; the message names the key."""


class DataError(GcahngError):
    """A dataset on disk is missing, incomplete or malformed; the message names the file."""


class CheckpointError(GcahngError):
    """A checkpoint or index cannot be read or does not match the model."""


class OfflineError(GcahngError):
    """Something had to be downloaded but the network is unreachable."""


class DiskFullError(GcahngError):
    """A file could not be written for lack of space; the message names it."""

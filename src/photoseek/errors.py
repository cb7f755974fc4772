"""Errors that reach the user: each message says what went wrong and what to do.

Four kinds tell callers what went wrong without reading the message: `NotFound` (an image, file,
folder or catalog that is not there), `BadInput` (a value that cannot work; change it), `Unavailable`
(a model, extra or service that cannot be reached or loaded now) and `Conflict` (the catalog's state
refuses it: busy, built with another model, empty). The REST API maps them to 404/422/503/409
(server/errors.py), the CLI to exit statuses 3/2/4/5 (cli/common.py); a plain `PhotoseekError`
is 400 and exit status 1.
"""


class PhotoseekError(Exception):
    """Base for errors the CLI and HTTP layer print without a traceback."""

    code = "error"
    """A short name for scripts: the `error` of the CLI's JSON error object."""


class NotFound(PhotoseekError):
    """An image, file, folder or catalog the request names does not exist (or is not indexed)."""

    code = "not_found"


class BadInput(PhotoseekError):
    """A value the user gave cannot work (malformed, out of range, contradicting another)."""

    code = "bad_input"


class Unavailable(PhotoseekError):
    """A model, optional extra or outside service cannot be loaded or reached right now."""

    code = "unavailable"


class Conflict(PhotoseekError):
    """The catalog's state refuses the request: busy, built with another model, or empty."""

    code = "conflict"


class ModelNotAvailableError(Unavailable):
    """A model could not be found locally and could not be downloaded."""

    code = "model_not_available"


class ModelMismatchError(Conflict):
    """The catalog was built with a different model than the one asked for."""

    code = "model_mismatch"


class UnreadableImageError(BadInput):
    """An image file could not be decoded; the message is the reason recorded for it."""

    code = "unreadable_image"


class EmptyIndexError(Conflict):
    """A search ran against a catalog with no indexed images."""

    code = "empty_index"

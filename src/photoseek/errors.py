"""Errors that reach the user: each message says what went wrong and what to do."""


class PhotoseekError(Exception):
    """Base for errors the CLI and HTTP layer print without a traceback."""

    code = "error"
    """A short name for scripts: the `error` of the CLI's JSON error object."""


class ModelNotAvailableError(PhotoseekError):
    """A model could not be found locally and could not be downloaded."""

    code = "model_not_available"


class ModelMismatchError(PhotoseekError):
    """The catalog was built with a different model than the one asked for."""

    code = "model_mismatch"


class UnreadableImageError(PhotoseekError):
    """An image file could not be decoded; the message is the reason recorded for it."""

    code = "unreadable_image"


class EmptyIndexError(PhotoseekError):
    """A search ran against a catalog with no indexed images."""

    code = "empty_index"

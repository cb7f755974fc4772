"""Search results shown outside the web UI: thumbnails in the terminal, a self-contained HTML page."""

OVERRIDE_ENV = "PHOTOSEEK_PREVIEW"
"""Names the terminal's image protocol when detection guesses wrong (here: the help text reads it cheaply)."""

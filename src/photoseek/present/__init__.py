"""Search results shown outside the web UI: thumbnails in the terminal, a self-contained HTML page."""

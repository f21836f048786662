"""What a PostgreSQL text column can hold: no NUL character, no lone surrogate."""

from __future__ import annotations

# error texts kept in the database (dead letters' detail, alert events' last_error)
MAX_TEXT_CHARS = 1000


def storable_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``text`` without NUL characters, lone surrogates replaced by ``?``, and cut to
    ``max_chars`` characters, the last one ``…`` when it was cut."""
    text = text.replace("\x00", "").encode(errors="replace").decode()
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

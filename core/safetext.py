"""Text from files made safe to show: control characters become visible.

A scenario, a data file or a trace comes from someone else, and YAML's
double-quoted strings (``"\\e]2;title\\a"``) carry ESC and BEL: printed as they
are, they set the terminal's title, write to its clipboard or redraw the
screen. Every string read from such a file passes through :func:`visible`
where it enters the program, so whatever shows it later — the app, the
headless commands, a trace replayed elsewhere — holds no control sequence.

A leaf module: it imports nothing of the project.
"""

from __future__ import annotations

# C0 controls (U+0000–U+001F) are shown as their Control Pictures (ESC → ␛, BEL → ␇),
# DEL as ␡; C1 controls (U+0080–U+009F, CSI among them) and the characters that
# reorder or split lines (bidirectional overrides, line and paragraph separators)
# as escape text, since no picture exists for them.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"
_ESCAPED = {
    code: f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    for code in (
        *range(0x80, 0xA0),
        *range(0x202A, 0x202F),  # bidirectional embeddings and overrides
        *range(0x2066, 0x206A),  # bidirectional isolates
        0x2028,  # line separator
        0x2029,  # paragraph separator
        0x200E,  # left-to-right mark
        0x200F,  # right-to-left mark
        0x061C,  # Arabic letter mark
    )
}
_TABLE: dict[int, str] = {**_PICTURES, **_ESCAPED}
_KEEP_NEWLINES: dict[int, str] = {k: v for k, v in _TABLE.items() if k != 0x0A}

# How much of a file's text an error message quotes.
QUOTE_LIMIT = 40


def visible(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character shown as a visible one.

    ``newlines=True`` keeps line feeds (for text shown over several lines);
    everything else, tab included, is replaced. Safe text comes back unchanged.
    """
    return text.translate(_KEEP_NEWLINES if newlines else _TABLE)


def is_visible(text: str) -> bool:
    """Whether ``text`` holds no control character (``visible`` would not change it)."""
    return visible(text) == text


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` for an error message: quoted, made visible and cut to about ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    cut = len(text) > limit
    shown = visible(text[:limit])
    if isinstance(value, str):
        shown = "'" + shown.replace("'", "\\'") + ("…'" if cut else "'")
    elif cut:
        shown += "…"
    return shown


def clip(text: str, limit: int = 60) -> str:
    """``text`` made visible and cut to ``limit`` characters (with … where it was cut)."""
    return visible(text[:limit]) + ("…" if len(text) > limit else "")


def visible_tree(value: object) -> object:
    """Every string in a tree of dicts and lists (keys too) made visible; the rest unchanged."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible_tree(k): visible_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [visible_tree(item) for item in value]
    return value

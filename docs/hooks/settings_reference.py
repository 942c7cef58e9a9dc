"""MkDocs hook: the settings reference, generated from `core.settings.Settings` at every build.

`docs/settings.md` holds the markers `<!-- settings-table -->` and `<!-- /settings-table -->`
(between them a note for readers of the raw file); this hook replaces them with one
row per field of `Settings`: its variable (`GANSERVE_<FIELD>`), default, description, type and
bounds, so the reference is never written twice and never falls behind the code.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # a build outside the editable install still finds `core`
    sys.path.insert(0, str(ROOT))

from core.settings import Settings  # noqa: E402  (after the path above)

MARKER = "<!-- settings-table -->"
END_MARKER = "<!-- /settings-table -->"  # what stands between, for readers of the raw file, goes
PREFIX = Settings.model_config.get("env_prefix", "")

_KIB = 1024
_DAY = 24 * 3600


def env_name(field: str) -> str:
    """The environment variable of a field, as pydantic-settings reads it."""
    return f"{PREFIX}{field}".upper()


def env_names() -> list[str]:
    """Every setting's variable, in the order of `Settings`."""
    return [env_name(name) for name in Settings.model_fields]


def _type_name(annotation: Any) -> str:
    """integer, number, boolean, path, string, or the choices of a Literal (the default column
    says when a field may be left unset)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else annotation
    if typing.get_origin(annotation) is typing.Literal:
        name = " \\| ".join(f"`{v}`" for v in typing.get_args(annotation))
    else:
        names = {int: "integer", float: "number", bool: "boolean", str: "string", Path: "path"}
        name = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return name


def _humane(field: str, value: int | float) -> str:
    """A readable gloss of a large default: bytes in MiB or GiB, pixels as a square, seconds
    in hours or days."""
    if "bytes" in field and value >= _KIB * _KIB and value % (_KIB * _KIB) == 0:
        mib = int(value) // (_KIB * _KIB)
        return f"{mib // _KIB} GiB" if mib % _KIB == 0 else f"{mib} MiB"
    if "pixels" in field:
        side = round(value**0.5)
        return f"{side}x{side}" if side * side == value else ""
    timed = ("seconds", "ttl", "time_limit", "timeout")
    if any(t in field for t in timed) and value >= 3600 and value % 3600 == 0:
        if value % _DAY == 0:
            days = int(value) // _DAY
            return f"{days} day" + ("s" if days > 1 else "")
        hours = int(value) // 3600
        return f"{hours} hour" + ("s" if hours > 1 else "")
    return ""


def _default(field: str, value: Any) -> str:
    """The default as the variable would be written, with a gloss where it helps."""
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        text = value.as_posix()
        return f"`{text if value.is_absolute() else './' + text}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | float):
        gloss = _humane(field, value)
        return f"`{value}`" + (f" ({gloss})" if gloss else "")
    return f"`{value}`"


def _bounds(metadata: list[Any]) -> str:
    """The field's constraints (`>= 1`, `> 0`, `<= 1000`) as pydantic checks them."""
    parts = []
    for item in metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            bound = getattr(item, attr, None)
            if bound is not None:
                parts.append(f"{sign} {bound}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def settings_table() -> str:
    """The Markdown table of every setting (inside a div the site's CSS keeps from wrapping the
    variable names)."""
    lines = [
        '<div class="settings-table" markdown>',
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        variable = env_name(name)
        kind = ", ".join(p for p in (_type_name(field.annotation), _bounds(field.metadata)) if p)
        lines.append(
            f'| <span id="{variable}"></span>`{variable}` '
            f"| {_default(name, field.default)} "
            f"| {_cell(field.description or '')} *({kind})* |"
        )
    lines += ["", "</div>"]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Put the generated table where the page asks for it."""
    if MARKER not in markdown:
        return markdown
    before, _, rest = markdown.partition(MARKER)
    _, found, after = rest.partition(END_MARKER)
    return before + settings_table() + (after if found else rest)

"""Read compose.yaml, compose.cpu.yaml and .env.example the way Docker Compose does (enough of it).

No Docker engine is needed: the files are parsed with PyYAML (with Compose's `!reset` tag) and
`${VAR}`, `${VAR:-default}` and `${VAR:?message}` are interpolated from a given mapping.
"""

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
COMPOSE_CPU = ROOT / "compose.cpu.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader that also accepts Compose's `!reset` and `!override` tags."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return {"__tag__": node.tag, "value": loader.construct_sequence(node)}
    if isinstance(node, yaml.MappingNode):
        return {"__tag__": node.tag, "value": loader.construct_mapping(node)}
    return {"__tag__": node.tag, "value": loader.construct_scalar(node)}


_ComposeLoader.add_constructor("!reset", _tagged)
_ComposeLoader.add_constructor("!override", _tagged)


def load(path: Path = COMPOSE) -> dict[str, Any]:
    """The compose file as data (anchors and `<<` merges resolved, nothing interpolated)."""
    return yaml.load(path.read_text(), Loader=_ComposeLoader)


def variables(path: Path = COMPOSE) -> dict[str, list[tuple[str, str]]]:
    """Every `${VAR...}` of a compose file: name -> [(operator, argument), ...]."""
    found: dict[str, list[tuple[str, str]]] = {}
    for m in VARIABLE.finditer(path.read_text()):
        found.setdefault(m["name"], []).append((m["op"] or "", m["arg"] or ""))
    return found


def interpolate(value: str, env: dict[str, str]) -> str:
    """Substitute `${...}` as Compose does; a missing `:?` variable raises."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"] or "", m["arg"] or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return VARIABLE.sub(one, value)


def env_example() -> dict[str, str]:
    """The `NAME=value` lines of .env.example (comments skipped)."""
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = value.strip()
    return out

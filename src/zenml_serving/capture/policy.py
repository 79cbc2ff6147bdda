"""Capture modes and the validated form of one `serving_capture` declaration.

A pipeline or a step declares its policy in ZenML's free-form `extra` mapping:

    @step(extra={"serving_capture": {"mode": "metadata", "inputs": {"token": "none"}}})

`parse_declaration` turns that raw mapping into a `CaptureDeclaration` or raises a
`CaptureConfigError` naming the declaration, the key, the bad value and what is allowed. Unknown
keys are errors: a typo in a privacy setting must not be silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from zenml_serving.capture.errors import CaptureConfigError

__all__ = [
    "DECLARATION_KEYS",
    "CaptureDeclaration",
    "CaptureMode",
    "parse_declaration",
    "parse_mode",
    "parse_sample_rate",
]


class CaptureMode(str, Enum):
    """What one invocation records (see capture-policies.md for the full table)."""

    FULL = "full"
    """Run and step metadata, redacted and truncated previews, persisted output artifacts."""
    SAMPLED = "sampled"
    """As `full` for a deterministic fraction `sample_rate` of invocations, else `metadata`."""
    ERRORS_ONLY = "errors_only"
    """As `metadata` while all goes well; as `full` for a failing step and for the run."""
    METADATA = "metadata"
    """Names, ids, status, timings, sizes and types only: no previews, no artifacts."""
    NONE = "none"
    """Nothing: no ZenML run, no payload in spans or logs (ids and timings only)."""

    def __str__(self) -> str:
        return self.value


_MODE_NAMES = ", ".join(m.value for m in CaptureMode)
_EMPTY: Mapping[str, CaptureMode] = MappingProxyType({})

DECLARATION_KEYS = ("mode", "sample_rate", "inputs", "outputs", "artifacts", "max_bytes", "redact")
"""Every key `serving_capture` accepts, in documentation order."""


@dataclass(frozen=True, slots=True)
class CaptureDeclaration:
    """One validated `serving_capture` mapping; `None` / empty means "not declared here"."""

    mode: CaptureMode | None = None
    """Global mode of the pipeline or step."""
    sample_rate: float | None = None
    """Fraction of invocations that `sampled` records fully, 0..1."""
    inputs: Mapping[str, CaptureMode] = field(default_factory=lambda: _EMPTY)
    """Per-input modes by input name."""
    outputs: Mapping[str, CaptureMode] = field(default_factory=lambda: _EMPTY)
    """Per-output modes by output name."""
    all_outputs: CaptureMode | None = None
    """`outputs` given as one mode: it applies to every output."""
    artifacts: CaptureMode | None = None
    """Explicit artifact policy; overrides what the value modes would derive."""
    max_bytes: int | None = None
    """Largest preview, in UTF-8 bytes."""
    redact: tuple[str, ...] = ()
    """Extra field names to redact (lower-cased), added to the built-in list."""

    def output_mode(self, name: str) -> CaptureMode | None:
        """This layer's per-value mode for output `name`, if it declares one."""
        return self.outputs.get(name, self.all_outputs)

    @property
    def is_empty(self) -> bool:
        """True when nothing at all is declared."""
        return self == _EMPTY_DECLARATION


_EMPTY_DECLARATION = CaptureDeclaration()


def parse_mode(value: object, *, where: str, key: str) -> CaptureMode:
    """A capture mode from its name (case-insensitive) or raise naming `where` and `key`."""
    if isinstance(value, CaptureMode):
        return value
    if isinstance(value, str):
        try:
            return CaptureMode(value.strip().lower())
        except ValueError:
            pass
    raise CaptureConfigError(where, key, f"= {value!r} is not a capture mode", allowed=_MODE_NAMES)


def parse_sample_rate(value: object, *, where: str, key: str = "'sample_rate'") -> float:
    """A sample rate in 0..1 (a real number, not a bool) or raise naming `where`."""
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    ):
        return float(value)
    raise CaptureConfigError(
        where, key, f"= {value!r} is not a sample rate", allowed="a number from 0 to 1"
    )


def parse_declaration(
    raw: Mapping[str, Any] | None,
    *,
    where: str,
    inputs: Collection[str] | None = None,
    outputs: Collection[str] | None = None,
    owner: str | None = None,
) -> CaptureDeclaration:
    """Validate a raw `serving_capture` mapping.

    `where` names the declaration in error messages (`step 'score'`, `pipeline 'p'`). When
    `inputs` / `outputs` are given (the real value names), per-value entries must name one of
    them; `owner` says whose values they are in that message (default: `where`).
    """
    owner = where if owner is None else owner
    if raw is None:
        return _EMPTY_DECLARATION
    if not isinstance(raw, Mapping):
        raise CaptureConfigError(
            where,
            "declaration",
            f"= {raw!r} is not a mapping",
            allowed='a dict such as {"mode": "metadata"}',
        )
    for key in raw:
        if key not in DECLARATION_KEYS:
            raise CaptureConfigError(
                where, repr(key), "is not a known key", allowed=", ".join(DECLARATION_KEYS)
            )

    mode = None if raw.get("mode") is None else parse_mode(raw["mode"], where=where, key="'mode'")
    sample_rate = None
    if raw.get("sample_rate") is not None:
        sample_rate = parse_sample_rate(raw["sample_rate"], where=where)
    artifacts = None
    if raw.get("artifacts") is not None:
        artifacts = parse_mode(raw["artifacts"], where=where, key="'artifacts'")

    input_modes = _parse_value_modes(
        raw.get("inputs"), where=where, key="inputs", known=inputs, owner=owner
    )
    output_modes: Mapping[str, CaptureMode] = _EMPTY
    all_outputs = None
    raw_outputs = raw.get("outputs")
    if isinstance(raw_outputs, (str, CaptureMode)):
        all_outputs = parse_mode(raw_outputs, where=where, key="'outputs'")
    else:
        output_modes = _parse_value_modes(
            raw_outputs, where=where, key="outputs", known=outputs, owner=owner
        )

    return CaptureDeclaration(
        mode=mode,
        sample_rate=sample_rate,
        inputs=input_modes,
        outputs=output_modes,
        all_outputs=all_outputs,
        artifacts=artifacts,
        max_bytes=_parse_max_bytes(raw.get("max_bytes"), where=where),
        redact=_parse_redact(raw.get("redact"), where=where),
    )


def _parse_value_modes(
    raw: object, *, where: str, key: str, known: Collection[str] | None, owner: str
) -> Mapping[str, CaptureMode]:
    if raw is None:
        return _EMPTY
    kind = key[:-1]  # "inputs" -> "input"
    if not isinstance(raw, Mapping):
        shape = (
            "a mode for every output or a mapping of output name to mode"
            if key == "outputs"
            else "a mapping of input name to mode"
        )
        raise CaptureConfigError(where, repr(key), f"= {raw!r} is not valid", allowed=shape)
    modes: dict[str, CaptureMode] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            raise CaptureConfigError(
                where, repr(key), f"has a bad {kind} name {name!r}", allowed="non-empty strings"
            )
        if known is not None and name not in known:
            raise CaptureConfigError(
                where,
                repr(key),
                f"names {name!r}, which is not an {kind} of {owner}",
                allowed=", ".join(sorted(known)) or f"nothing: there are no {key}",
            )
        modes[name] = parse_mode(value, where=where, key=f"{key!r}[{name!r}]")
    return MappingProxyType(modes)


def _parse_max_bytes(raw: object, *, where: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    raise CaptureConfigError(
        where, "'max_bytes'", f"= {raw!r} is not a size", allowed="an integer > 0 (bytes)"
    )


def _parse_redact(raw: object, *, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    allowed = 'a list of field names, e.g. ["ssn", "iban"]'
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
        raise CaptureConfigError(where, "'redact'", f"= {raw!r} is not a list", allowed=allowed)
    names: list[str] = []
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            raise CaptureConfigError(
                where, "'redact'", f"contains {item!r}, not a field name", allowed=allowed
            )
        names.append(item.strip().lower())
    return tuple(dict.fromkeys(names))

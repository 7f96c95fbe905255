"""Times as event logs and configs give them: units, plausibility, and the split a time implies.

Shared by the event-log adapter (which reads whole columns) and config validation (which checks
``decay_anchor`` / ``cutoff_time`` and the split mode before any rule runs).
"""

from __future__ import annotations

import datetime as dt
import math
import re

import polars as pl

from mp2v4rec.io import InputError

MS_PER_UNIT = {"s": 1000.0, "ms": 1.0, "us": 0.001}  # preprocess.timestamp_unit
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
PLAUSIBLE_MS = (31_536_000_000, 7_258_118_400_000)  # 1971-01-01 .. 2200-01-01
MS_PER_YEAR = 31_556_952_000
NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
SPLITS = ("auto", "eval_events", "temporal", "holdout")  # preprocess.split


def check_time_unit(first_ms, last_ms, unit: str, what: str) -> None:
    """Refuse times outside 1971..2200 as read under ``unit``, saying what the values look
    like (the unit that would put them in that range) and which key to set: epoch
    milliseconds read as seconds otherwise end deep in the datetime library."""
    if first_ms is None or (PLAUSIBLE_MS[0] <= first_ms and last_ms <= PLAUSIBLE_MS[1]):
        return
    raw = [v / MS_PER_UNIT[unit] for v in (first_ms, last_ms)]
    years = [int(1970 + v // MS_PER_YEAR) for v in (first_ms, last_ms)]
    fits = _fitting_units(raw[0], raw[1], unit)
    hint = (
        f"they look like epoch {UNIT_NAMES[fits[0]]}: set preprocess.timestamp_unit: {fits[0]}"
        if fits
        else "check the timestamp column (or its mapping under columns)"
    )
    raise InputError(
        f"{what}: timestamps {raw[0]:.6g} .. {raw[1]:.6g}, read as {UNIT_NAMES[unit]} since the "
        f"epoch (preprocess.timestamp_unit: {unit}), fall in the years {years[0]} .. {years[1]}; "
        f"{hint}"
    )


def _fitting_units(first: float, last: float, unit: str) -> list[str]:
    """The other units under which raw times ``first .. last`` fall in 1971..2200."""
    return [
        u
        for u, f in MS_PER_UNIT.items()
        if u != unit and PLAUSIBLE_MS[0] <= first * f and last * f <= PLAUSIBLE_MS[1]
    ]


def time_ms(value, unit: str, name: str) -> int | None:
    """A decay anchor or cutoff time given as a number in ``unit`` (within 1971..2200), an ISO
    string or a datetime, in epoch milliseconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        value = value.isoformat()
    if isinstance(value, str) and not NUMBER.match(value):
        parsed = pl.Series([value]).str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
        ms = parsed.dt.epoch("ms")[0]
        if ms is None:
            raise InputError(f"{name}: {value!r} is not an ISO date-time like 2024-01-31T12:00:00Z")
        if not PLAUSIBLE_MS[0] <= ms <= PLAUSIBLE_MS[1]:
            raise InputError(f"{name}: {value!r} is outside 1971..2200; check the date")
        return int(ms)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: {value!r} must be a number or an ISO date-time") from exc
    if not math.isfinite(number):
        raise InputError(f"{name}: {value!r} must be finite")
    ms = round(number * MS_PER_UNIT[unit])
    if not PLAUSIBLE_MS[0] <= ms <= PLAUSIBLE_MS[1]:
        fits = _fitting_units(number, number, unit)
        looks = f"it looks like epoch {UNIT_NAMES[fits[0]]}; " if fits else ""
        raise InputError(
            f"{name}: {value!r} read as {UNIT_NAMES[unit]} since the epoch falls outside "
            f"1971..2200; {looks}give it in {UNIT_NAMES[unit]} (preprocess.timestamp_unit: "
            f"{unit}) or as an ISO date-time"
        )
    return ms


def split_mode(split: str, has_eval_events: bool, cutoff_ms: int | None) -> str:
    """The split a preprocess setting means: ``auto`` resolves to eval_events (when given),
    temporal (when a cutoff is given) or holdout; a contradiction is refused."""
    if split not in SPLITS:
        raise InputError(f"split={split!r} must be one of {SPLITS}")
    if has_eval_events and cutoff_ms is not None:
        raise InputError("give either eval_events or cutoff_time (a temporal split), not both")
    if split == "auto":
        if has_eval_events:
            return "eval_events"
        return "temporal" if cutoff_ms is not None else "holdout"
    if (split == "eval_events") != has_eval_events:
        raise InputError(
            f"split={split!r} but eval_events is {'given' if has_eval_events else 'missing'}; "
            "give eval_events with split 'eval_events' (or 'auto') only"
        )
    if split == "temporal" and cutoff_ms is None:
        raise InputError("split='temporal' needs cutoff_time")
    return split

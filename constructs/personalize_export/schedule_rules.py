"""Synth-time checks of a schedule: its expression as EventBridge Scheduler reads it, and how long
its runs are kept. Like validation.py, each check returns the problems it finds."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from aws_cdk import Duration

from personalize_export.validation import is_literal, shown

SCHEDULE_RULE = (
    "EventBridge Scheduler takes rate(<n> minute|minutes|hour|hours|day|days), "
    "cron(minutes hours day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)"
)
RATE_PATTERN = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
AT_PATTERN = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class CronField:
    """One field of a cron expression: its name, its range and the names it accepts."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    # Besides numbers, ranges, lists, steps and '*': '?', 'L', 'W' or '#' where the field has them.
    special: re.Pattern[str] | None = None


CRON_FIELDS = (
    CronField("minutes", 0, 59),
    CronField("hours", 0, 23),
    CronField("day-of-month", 1, 31, special=re.compile(r"\?|L|LW|\d{1,2}W")),
    CronField("month", 1, 12, MONTHS),
    CronField("day-of-week", 1, 7, WEEKDAYS, re.compile(r"\?|L|\w{1,3}L|\w{1,3}#[1-5]")),
    CronField("year", 1970, 2199),
)


def check_schedule(expression: str) -> list[str]:
    """A literal schedule expression must be one EventBridge Scheduler accepts."""
    if not is_literal(expression):
        return []
    given = f"schedule {shown(expression)}"
    if expression.startswith("rate("):
        return [f"{given} {problem}; {SCHEDULE_RULE}" for problem in _rate_problems(expression)]
    if expression.startswith("cron("):
        return [f"{given} {problem}; {SCHEDULE_RULE}" for problem in _cron_problems(expression)]
    if expression.startswith("at("):
        return [f"{given} {problem}; {SCHEDULE_RULE}" for problem in _at_problems(expression)]
    return [f"{given} is not a schedule expression; {SCHEDULE_RULE}"]


def _rate_problems(expression: str) -> list[str]:
    match = RATE_PATTERN.fullmatch(expression)
    if match is None:
        return ["is not rate(<a whole number> <unit>)"]
    value, unit = int(match[1]), match[2]
    if value < 1:
        return ["has a rate of 0; the rate must be a positive whole number"]
    if (value == 1) == unit.endswith("s"):
        return [f"says {value} {unit}; the unit is singular for 1 and plural otherwise"]
    return []


def _at_problems(expression: str) -> list[str]:
    match = AT_PATTERN.fullmatch(expression)
    if match is None:
        return ["is not at(yyyy-mm-ddThh:mm:ss)"]
    try:
        datetime.datetime.fromisoformat(match[1])
    except ValueError:
        return [f"names {match[1]!r}, which is no date and time"]
    return []


def _cron_problems(expression: str) -> list[str]:
    if not expression.endswith(")"):
        return ["does not end with ')'"]
    fields = expression.removeprefix("cron(").removesuffix(")").split()
    if len(fields) != len(CRON_FIELDS):
        return [f"has {len(fields)} fields where cron has {len(CRON_FIELDS)}"]
    problems = [
        problem
        for field, value in zip(CRON_FIELDS, fields, strict=True)
        for problem in _cron_field_problems(field, value)
    ]
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        problems.append(
            f"has day-of-month {day_of_month!r} and day-of-week {day_of_week!r}; exactly one "
            "of the two must be '?'"
        )
    return problems


def _cron_field_problems(field: CronField, value: str) -> list[str]:
    bad = [item for item in value.split(",") if not _cron_item_valid(field, item)]
    if not bad:
        return []
    names = f" or {field.names[0]}-{field.names[-1]}" if field.names else ""
    return [
        f"has {field.name} {value!r}, where {', '.join(repr(item) for item in bad)} is not "
        f"{field.low}-{field.high}{names}, '*', a range, a list or a step"
    ]


def _cron_item_valid(field: CronField, item: str) -> bool:
    if field.special is not None and field.special.fullmatch(item):
        return item[0] in "?L" or _cron_value(field, re.split(r"[WL#]", item)[0]) is not None
    base, _, step = item.partition("/")
    if step and not (step.isdigit() and int(step) >= 1):
        return False
    if base == "*":
        return True
    bounds = base.split("-")
    return len(bounds) <= 2 and all(_cron_value(field, bound) is not None for bound in bounds)


def _cron_value(field: CronField, text: str) -> int | None:
    if text.upper() in field.names:
        return field.names.index(text.upper()) + field.low
    if text.isdigit() and field.low <= int(text) <= field.high:
        return int(text)
    return None


def check_keep(keep: Duration | None) -> list[str]:
    """How long a schedule's runs are kept: whole days, at least one (S3 lifecycle's unit)."""
    if keep is None or keep.is_unresolved():
        return []
    days = keep.to_days(integral=False)
    rule = "S3 lifecycle rules expire objects after a whole number of days, at least 1"
    if days < 1:
        return [f"keep {keep.to_human_string()} is under a day; {rule}"]
    if days != int(days):
        return [f"keep {keep.to_human_string()} is not a whole number of days; {rule}"]
    return []


def check_keep_scope(keep: Duration | None, prefix: str, bucket: str | None) -> list[str]:
    """bucket: a given bucket's name or path (None for the schedule's own bucket)."""
    if keep is None or bucket is None or prefix != "":
        return []
    return [
        f"keep with output_prefix '' would expire every object in bucket {bucket}; a schedule "
        "that keeps its runs for a time writes under a prefix of its own in a shared bucket"
    ]

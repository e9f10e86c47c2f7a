"""What one ``ddai-report`` invocation found and computed, shared by every renderer.

WHY one object: the terminal tables, the JSON document, the plots, the HTML page and the
W&B run must all show the same figures; they all read this instead of recomputing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddai.report.logstats import Thresholds

if TYPE_CHECKING:   # annotations only: importing these would import pandas before a log is read
    from ddai.report.discover import Found
    from ddai.report.manifests import Curriculum, Sweep
    from ddai.report.summarize import LogReport


@dataclass
class Options:
    """The report's knobs (command-line options)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    top: int = 10
    deciles: int = 10
    prompts: list[str] = field(default_factory=list)   # prompts to draw learning curves for
    fail_below: float = 0.3
    success_from: float = 0.7
    strict: bool = False


@dataclass
class Report:
    inputs: list[Found]
    options: Options
    logs: list[LogReport] = field(default_factory=list)
    curricula: list[Curriculum] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    join_with: Curriculum | None = None
    next_round: dict[str, Any] | None = None

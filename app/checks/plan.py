"""What a command will use (`Plan`), and what checking it found (`Checked`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import AgentConfig
from rules.allocation.tariff import Tariff
from rules.outage.config import RulesConfig
from waystation.configerror import ConfigError, Problem, Severity, Text
from waystation.configfile import Document
from waystation.registry import Registry
from waystation.settings import Origin


@dataclass
class Plan:
    """What a command will use, so what to load and check."""

    registry: Path | None = None
    registry_required: bool = True  # else: cross-check against it only if it is there
    agent_config: Path | None = None
    station: str | None = None  # `edge --station`: a registry station the agent simulates
    rules_config: Path | None = None
    rules: bool = False  # the rules service: its config (or the defaults) is used
    tariffs: list[Path] | None = None  # given with --tariffs; else the shipped ones
    allocation: bool = False  # the allocation will run: load the tariffs the registry names
    scheduled_billing: bool = False  # a monthly job will bill: example prices are refused
    mqtt: str | None = None
    mqtt_ca: str | None = None
    influx: str | None = None
    # Where the connection settings were given (flag, variable, --config line), to name it.
    origins: dict[str, Origin] = field(default_factory=dict)


@dataclass
class Checked:
    """What was loaded (None where it could not be) and every problem found."""

    registry: Registry | None = None
    agent: AgentConfig | None = None
    rules: RulesConfig | None = None
    tariffs: dict[str, Tariff] | None = None
    problems: list[Problem] = field(default_factory=list)
    registry_document: Document | None = None
    rules_document: Document | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    def collect(self, exc: ConfigError) -> None:
        """Keep a loader's problems and go on checking."""
        self.problems += exc.problems

    def at_registry(
        self, path: tuple[str | int, ...], what: Text, fix: Text | None = None, **kwargs: Any
    ) -> Problem:
        """A problem located in the registry (once it loaded)."""
        assert self.registry_document is not None  # noqa: S101 - only called once it loaded
        return self.registry_document.problem(path, what, fix, **kwargs)

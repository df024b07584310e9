"""One error for every configuration file: where, what was wrong, and how to fix it.

A `Problem` names the file, line and column, the key's path in words
(`station 'st-a', device 'a-d': interval`), what was wrong and how to fix it,
in Chinese and English: operators read Chinese first, and the English text
is what they paste into a search engine or a bug report. `ConfigError`
carries every problem found, so an operator fixes a file in one pass, not one
error per run. Warnings are problems too; only errors stop a service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = [
    "ConfigError",
    "Invalid",
    "Problem",
    "Severity",
    "Text",
    "render_problems",
    "rendered_blocks",
]


@dataclass(frozen=True, slots=True)
class Text:
    """A message in both languages."""

    en: str
    zh: str

    def __str__(self) -> str:
        return self.en if self.zh == self.en else f"{self.zh} | {self.en}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


_SEVERITY_WORDS = {Severity.ERROR: "错误 error", Severity.WARNING: "警告 warning"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or doubtful) in the configuration, located as precisely as known."""

    what: Text
    fix: Text | None = None
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    where: str = ""  # the key's path in words
    severity: Severity = Severity.ERROR
    code: str = "invalid"  # stable, for scripts and tests

    @property
    def location(self) -> str:
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def render(self) -> str:
        head = " ".join(p for p in (self.location, self.where) if p)
        lines = [f"{_SEVERITY_WORDS[self.severity]}: {head}" if head else
                 _SEVERITY_WORDS[self.severity]]  # fmt: skip
        lines.append(f"    {self.what.zh}")
        if self.what.en != self.what.zh:
            lines.append(f"    {self.what.en}")
        if self.fix is not None:
            lines.append(f"    修正: {self.fix.zh}")
            if self.fix.en != self.fix.zh:
                lines.append(f"    fix: {self.fix.en}")
        return "\n".join(lines)


# The same mistake repeated (a misspelt key under every device of 2,000 stations) is shown
# this many times, then counted in one line, so the first few are not lost off the screen.
SHOWN_ALIKE = 3


def rendered_blocks(problems: Iterable[Problem]) -> list[str]:
    """Each problem rendered; past `SHOWN_ALIKE` of one kind, a count of the rest instead."""
    blocks: list[str] = []
    alike: dict[tuple[str, str, str, str], list[Problem]] = {}
    for p in problems:
        same = alike.setdefault((p.severity, p.code, p.what.en, p.fix.en if p.fix else ""), [])
        same.append(p)
        if len(same) <= SHOWN_ALIKE:
            blocks.append(p.render())
    blocks += [_more_alike(same) for same in alike.values() if len(same) > SHOWN_ALIKE]
    return blocks


def _more_alike(same: list[Problem]) -> str:
    more = same[SHOWN_ALIKE:]
    n = f"{len(more):,}"
    where = ", ".join(p.location for p in more[:2] if p.location)
    if where and len(more) > 2:
        where += ", …"
    first = same[0]
    return "\n".join(
        [
            f"{_SEVERITY_WORDS[first.severity]}: 还有 {n} 处同样的问题 | and {n} more of the same"
            + (f" ({where})" if where else ""),
            f"    {first.what.zh}",
            *([f"    {first.what.en}"] if first.what.en != first.what.zh else []),
        ]
    )


def render_problems(problems: Iterable[Problem]) -> str:
    return "\n".join(rendered_blocks(problems))


class Invalid(ValueError):
    """Raised by validators: what is wrong (and how to fix it) in both languages.

    A validator may also raise one `Invalid` carrying several located problems
    (`problems`, each with a key path), so a check over the whole file reports
    everything it found rather than its first complaint.
    """

    def __init__(
        self,
        what: Text | None = None,
        fix: Text | None = None,
        *,
        code: str = "invalid",
        problems: Sequence[tuple[tuple[str | int, ...], Invalid]] = (),
    ) -> None:
        self.what = what or Text("invalid", "无效")
        self.fix = fix
        self.code = code
        self.problems = list(problems)
        super().__init__(str(self.what))


class ConfigError(ValueError):
    """Every problem that stops a file (or a set of files) from being used."""

    def __init__(self, problems: Problem | Text | str | Sequence[Problem]) -> None:
        if isinstance(problems, str):
            problems = [Problem(Text(problems, problems))]
        elif isinstance(problems, Text):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._message())

    @classmethod
    def at(cls, file: str | None, what: Text, fix: Text | None = None, *, code: str = "invalid"
           ) -> ConfigError:  # fmt: skip
        return cls(Problem(what, fix, file=file, code=code))

    def with_file(self, file: str) -> ConfigError:
        """The same problems, attributed to `file` where they name none."""
        return type(self)([p if p.file else replace(p, file=file) for p in self.problems])

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    def _message(self) -> str:
        errors = len(self.errors)
        files = sorted({p.file for p in self.problems if p.file})
        head = f"{', '.join(files)}: " if files else ""
        if errors == 1 and len(self.problems) == 1:
            return render_problems(self.problems)
        return f"{head}{errors} 处错误 error(s)\n" + render_problems(self.problems)

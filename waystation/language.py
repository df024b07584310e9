"""The language people read: `zh` (the default) or `en`, set once in the registry.

`language:` in `stations.yaml` (or the rules config's, which overrides it for
notices) chooses the words of every notice, finding, report summary and
export label; config errors stay bilingual.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["LANGUAGES", "UNIT_TEXT", "Language", "unit_text"]

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")

# Units as a reader of each language writes them; the stored unit is the English symbol.
UNIT_TEXT: dict[Language, dict[str, str]] = {
    "zh": {"kWh": "千瓦时", "m³": "立方米", "l": "升", "visits": "人次"},
    "en": {"kWh": "kWh", "m³": "m³", "l": "l", "visits": "visits"},
}


def unit_text(unit: str, language: Language) -> str:
    return UNIT_TEXT[language].get(unit, unit)

"""InfluxQL targets and annotations for grafana-foundation-sdk, which has no InfluxDB builder.

Both follow the SDK's builder protocol (`cog`): a builder whose `build()`
returns an object with `to_json()`. Every query is raw InfluxQL, so the same
dashboards run on InfluxDB 1.x, 2.x (through its DBRP mapping) and 3.x.
The data source is the dashboard's `datasource` variable.
"""

from __future__ import annotations

from typing import Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

__all__ = ["DATASOURCE", "AnnotationInfluxQL", "InfluxQL", "InfluxQLQuery"]

DATASOURCE = dashboard.DataSourceRef(type_val="influxdb", uid="${datasource}")


class InfluxQLQuery(cogvariants.Dataquery):
    def __init__(
        self,
        ref_id: str,
        query: str,
        result_format: Literal["time_series", "table"],
        alias: str | None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        return out


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """`InfluxQL("SELECT …").ref_id("B").table()`."""

    def __init__(self, query: str) -> None:
        self._query = query
        self._ref_id = "A"
        self._format: Literal["time_series", "table"] = "time_series"
        self._alias: str | None = None

    def ref_id(self, ref_id: str) -> InfluxQL:
        self._ref_id = ref_id
        return self

    def table(self) -> InfluxQL:
        self._format = "table"
        return self

    def alias(self, alias: str) -> InfluxQL:
        self._alias = alias
        return self

    def build(self) -> InfluxQLQuery:
        return InfluxQLQuery(self._ref_id, self._query, self._format, self._alias)


class _Annotation(dashboard.AnnotationQuery):
    def __init__(self, name: str, query: str, icon_color: str) -> None:
        super().__init__(name=name, datasource=DATASOURCE, enable=True, icon_color=icon_color)
        self.query = query

    def to_json(self) -> dict[str, object]:
        return super().to_json() | {
            "query": self.query,
            "textColumn": "message",
            "tagsColumn": "rule",
            "titleColumn": "state",
        }


class AnnotationInfluxQL(cogbuilder.Builder[dashboard.AnnotationQuery]):
    """An annotation from an InfluxQL query (text from `message`, tags from `rule`)."""

    def __init__(self, name: str, query: str, icon_color: str = "red") -> None:
        self._built = _Annotation(name, query, icon_color)

    def build(self) -> dashboard.AnnotationQuery:
        return self._built

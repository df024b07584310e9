"""Every word of the exports, in one language each: the workbook's, the statements', the PDF's.

A label is in the report's language only (`zh` or `en`): no 费用(元) cost_cny.
The CSV is for machines: its column names are stable keys, not labels.
"""

from __future__ import annotations

from rules.allocation.tariff import Period
from waystation.language import Language

__all__ = ["LABELS", "PARTY_TYPES", "PERIODS", "UTILITIES", "label"]

LABELS: dict[Language, dict[str, str]] = {
    "zh": {
        "sheet_summary": "汇总",
        "sheet_lines": "明细",
        "sheet_findings": "数据说明",
        "sheet_statement": "对账单",
        "party_id": "承担方编号",
        "party": "承担方",
        "party_type": "类型",
        "station_id": "站点编号",
        "station": "站点",
        "device": "设备",
        "utility": "能源",
        "period": "时段",
        "quantity": "用量",
        "unit": "单位",
        "price": "单价(元)",
        "amount": "金额(元)",
        "electricity_cost": "电费(元)",
        "water_cost": "水费(元)",
        "total_cost": "合计(元)",
        "share": "占比",
        "estimated": "估算比例",
        "notes": "说明",
        "code": "代码",
        "finding": "情况",
        "detail": "详情",
        "time": "时间",
        "total": "合计",
        "union_saving": "工会节省(元)",
        "example": "示例价格：不是正式账单",
        "title": "{year}年{month}月水电费分摊对账单",
        "summary_title": "{year}年{month}月水电费分摊汇总",
        "month": "账期",
        "month_span": "{start} 至 {end}（当地时间 {offset}）",
        "total_figures": "合计金额(小写)",
        "total_words": "合计金额(大写)",
        "findings_here": "与本单有关的数据说明",
        "no_findings": "本月数据完整，无需说明。",
        "rounding": "各行金额按最大余数法取整到分，合计等于各行之和。",
        "sign_party": "承担方(盖章)：",
        "sign_union": "工会(盖章)：",
        "sign_person": "经办人签字：",
        "sign_date": "日期：",
        "water_period": "用水",
        "page": "第 {page} 页",
        "report_line": "{stations} 个站点，合计 ¥{total}；工会节省 ¥{saving}",
        "findings_count": "数据说明 {count} 条",
        "more_findings": "……另有 {count} 条，见工作簿的“数据说明”表",
        "written": "已写出",
    },
    "en": {
        "sheet_summary": "Summary",
        "sheet_lines": "Lines",
        "sheet_findings": "Findings",
        "sheet_statement": "Statement",
        "party_id": "Party ID",
        "party": "Party",
        "party_type": "Type",
        "station_id": "Station ID",
        "station": "Station",
        "device": "Device",
        "utility": "Utility",
        "period": "Period",
        "quantity": "Quantity",
        "unit": "Unit",
        "price": "Price (CNY)",
        "amount": "Amount (CNY)",
        "electricity_cost": "Electricity (CNY)",
        "water_cost": "Water (CNY)",
        "total_cost": "Total (CNY)",
        "share": "Share",
        "estimated": "Estimated",
        "notes": "Notes",
        "code": "Code",
        "finding": "Finding",
        "detail": "Details",
        "time": "Time",
        "total": "Total",
        "union_saving": "Union saving (CNY)",
        "example": "EXAMPLE PRICES: not a bill",
        "title": "Utility cost statement, {month_name} {year}",
        "summary_title": "Utility cost allocation, {month_name} {year}",
        "month": "Period",
        "month_span": "{start} to {end} (local time {offset})",
        "total_figures": "Total",
        "total_words": "Total in words",
        "findings_here": "Findings that touched this statement",
        "no_findings": "The month's data was complete: nothing to note.",
        "rounding": "Amounts are rounded to the fen once, by largest remainder; "
        "the lines add up to the total.",
        "sign_party": "For the party (seal):",
        "sign_union": "For the union (seal):",
        "sign_person": "Signed by:",
        "sign_date": "Date:",
        "water_period": "water",
        "page": "page {page}",
        "report_line": "{stations} stations, total ¥{total}; union saving ¥{saving}",
        "findings_count": "{count} findings",
        "more_findings": "… {count} more in the workbook's Findings sheet",
        "written": "written",
    },
}
UTILITIES: dict[Language, dict[str, str]] = {
    "zh": {"electricity": "电", "water": "水"},
    "en": {"electricity": "electricity", "water": "water"},
}
PERIODS: dict[Language, dict[Period, str]] = {
    "zh": {Period.SHARP: "尖峰", Period.PEAK: "峰", Period.FLAT: "平", Period.VALLEY: "谷"},
    "en": {
        Period.SHARP: "critical peak",
        Period.PEAK: "peak",
        Period.FLAT: "flat",
        Period.VALLEY: "valley",
    },
}
PARTY_TYPES: dict[Language, dict[str, str]] = {
    "zh": {
        "union": "工会",
        "enterprise": "企业",
        "industry_union": "行业工会",
        "community": "社区",
        "department": "部门",
    },
    "en": {
        "union": "union",
        "enterprise": "enterprise",
        "industry_union": "industry union",
        "community": "community",
        "department": "department",
    },
}
MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def label(language: Language, key: str, **values: object) -> str:
    text = LABELS[language][key]
    if "month_name" in text and "month" in values:
        values["month_name"] = MONTH_NAMES[int(str(values["month"])) - 1]
    return text.format(**values) if values else text

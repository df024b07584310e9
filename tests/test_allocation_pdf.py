"""Each party's statement as a PDF, read back as text: the same lines, total and 大写 as the workbook.

Drawn with the CJK font `./dev` installs from Debian (fonts-wqy-microhei).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader

from rules.allocation.capitals import yuan_capitals, yuan_words
from rules.allocation.pdf import FontMissing, find_font, write_pdfs
from rules.allocation.statement import statements
from rules.allocation.tariff import Tariff, shipped_tariffs
from tests.allocation_helpers import own_tariffs
from tests.export_helpers import sample_report


@pytest.fixture(scope="module")
def tariff(tmp_path_factory: pytest.TempPathFactory) -> Tariff:
    [own] = own_tariffs(tmp_path_factory.mktemp("tariffs")).values()
    return own


def text_of(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_a_statement_per_party_with_its_lines_total_and_capitals(
    tariff: Tariff, tmp_path: Path
) -> None:
    report = sample_report(tariff, "zh")
    paths = write_pdfs(report, tmp_path, "allocation-2026-10", find_font(), mark=False)
    sts = statements(report)
    assert [p.name for p in paths] == [f"allocation-2026-10-statement-{s.party}.pdf" for s in sts]
    for st, path in zip(sts, paths, strict=True):
        text = text_of(path)
        assert "2026年10月水电费分摊对账单" in text
        assert st.party_name in text
        assert "2026-10-01 至 2026-10-31（当地时间 +08:00）" in text
        for line in st.lines:
            assert f"¥{line.amount:,.2f}" in text
        assert f"¥{st.total:,.2f}" in text
        assert yuan_capitals(st.total) in text
        assert "承担方(盖章)：" in text
        assert "经办人签字：" in text
        assert "示例价格" not in text  # the operator's own prices
        assert PdfReader(path).pages[0].mediabox.width == pytest.approx(595.28, abs=0.1)  # A4
    union = text_of(paths[[s.party for s in sts].index("dachuan-union")])
    assert "读数由 1598 降为 0.5：计数器清零，从零起算" in union  # a finding on its bill
    assert "总电表本月无读数" in union


def test_rerun_gives_the_same_bytes_and_example_prices_say_so(tmp_path: Path) -> None:
    report = sample_report(shipped_tariffs()["sichuan-general-commercial"], "zh")
    [first, *_] = write_pdfs(report, tmp_path / "a", "m", find_font(), mark=True)
    [again, *_] = write_pdfs(report, tmp_path / "b", "m", find_font(), mark=True)
    assert first.read_bytes() == again.read_bytes()
    assert "示例价格：不是正式账单" in text_of(first)


def test_english_statement(tariff: Tariff, tmp_path: Path) -> None:
    report = sample_report(tariff, "en")
    st = statements(report)[0]
    [path, *_] = write_pdfs(report, tmp_path, "m", find_font(), mark=False)
    text = text_of(path)
    assert "Utility cost statement, October 2026" in text
    assert yuan_words(st.total) in " ".join(text.split())
    assert "对账单" not in text


def test_a_missing_font_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FontMissing, match="no such file"):
        find_font(tmp_path / "nope.ttc")

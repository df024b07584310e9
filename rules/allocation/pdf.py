"""Each party's statement (对账单) as an A4 PDF, ready to send: `waystation report --pdf`.

The statement is the workbook's (rules.allocation.statement): the same lines,
amounts and total in figures and in words. Chinese needs a CJK font: one of
Debian's (`fonts-wqy-microhei`, `fonts-wqy-zenhei`, `fonts-noto-cjk`) is
found where Debian puts it, or given with `--pdf-font`. The files are the
same bytes when a month is re-run (dates are the month's, the file id is
derived from the content).
"""

from __future__ import annotations

import hashlib
import logging
import re
import string
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import Align
from fpdf.fonts import FontFace

from rules.allocation.capitals import yuan_capitals, yuan_words
from rules.allocation.labels import LABELS, PARTY_TYPES, PERIODS, UTILITIES, label
from rules.allocation.report import MonthReport
from rules.allocation.statement import Statement, statements
from rules.allocation.workbook import finding_line, month_span
from waystation.language import Language, unit_text

__all__ = ["CJK_FONTS", "FontMissing", "find_font", "statement_paths", "write_pdfs"]

# Where Debian's CJK font packages put a regular face (the first found is used).
CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei, 5 MB
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # fonts-noto-cjk
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
)
FONT = "cjk"
WIDTHS = (46, 14, 16, 24, 16, 22, 28)  # mm, of the table's seven columns; A4 is 210 wide
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FontMissing(FileNotFoundError):
    """No CJK font to draw the statements with; says which package to install."""


def find_font(given: Path | None = None) -> Path:
    if given is not None:
        if not given.is_file():
            raise FontMissing(f"--pdf-font {given}: no such file | --pdf-font {given}：文件不存在")
        return given
    for path in CJK_FONTS:
        if path.is_file():
            return path
    raise FontMissing(
        "no CJK font for the PDF statements: install one (apt-get install fonts-wqy-microhei) "
        "or give a .ttf/.ttc with --pdf-font | 没有可用于 PDF 对账单的中文字体：请安装"
        "（apt-get install fonts-wqy-microhei），或用 --pdf-font 指定字体文件"
    )


def statement_paths(out_dir: Path, stem: str, parties: Sequence[str]) -> list[Path]:
    """`allocation-2026-10-statement-xiaoge.pdf`: one file per party, named by its id."""
    return [out_dir / f"{stem}-statement-{_UNSAFE.sub('_', p)}.pdf" for p in parties]


class _Page(FPDF):
    def __init__(self, font: Path, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.add_font(FONT, fname=str(font))
        self.footer_text = footer_text
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(15, 15, 15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.cell(0, 6, self.footer_text.format(page=self.page_no()), align=Align.C)


def _money(value: object) -> str:
    return f"¥{value:,.2f}"


def _draw(pdf: _Page, report: MonthReport, st: Statement, mark: bool) -> None:
    lang: Language = report.language
    pdf.add_page()
    pdf.set_font(FONT, size=16)
    title = label(lang, "title", year=report.month.year, month=report.month.month)
    pdf.cell(0, 10, title, align=Align.C, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=10)
    for key, value in (("party", st.party_name),
                       ("party_type", PARTY_TYPES[lang].get(st.party_type, st.party_type)),
                       ("month", month_span(report.month, report.timezone, lang))):  # fmt: skip
        pdf.cell(30, 7, label(lang, key))
        pdf.cell(0, 7, value, new_x="LMARGIN", new_y="NEXT")
    if mark:
        pdf.set_text_color(192, 0, 0)
        pdf.cell(0, 7, label(lang, "example"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    pdf.set_font(FONT, size=9)
    headers = [label(lang, k) for k in ("station", "utility", "period", "quantity", "unit",
                                         "price", "amount")]  # fmt: skip
    align = ("LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT")
    heading = FontFace(emphasis="", fill_color=(221, 235, 247))  # one face: no bold to ask for
    with pdf.table(col_widths=WIDTHS, text_align=align, line_height=6,
                   headings_style=heading) as table:  # fmt: skip
        table.row(headers)
        for ln in st.lines:
            period = PERIODS[lang][ln.period] if ln.period else (
                label(lang, "water_period") if ln.utility == "water" else "")  # fmt: skip
            price = "" if ln.price is None else f"{ln.price:.4f}"
            table.row([ln.station_name, UTILITIES[lang][ln.utility], period, f"{ln.quantity:,.2f}",
                       unit_text(ln.unit, lang), price, _money(ln.amount)])  # fmt: skip
    pdf.ln(2)
    pdf.set_font(FONT, size=11)
    pdf.cell(40, 8, label(lang, "total_figures"))
    pdf.cell(0, 8, _money(st.total), align=Align.R, new_x="LMARGIN", new_y="NEXT")
    words = yuan_capitals(st.total) if lang == "zh" else yuan_words(st.total)
    pdf.cell(40, 8, label(lang, "total_words"))
    pdf.cell(0, 8, words, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT, size=9)
    pdf.cell(0, 6, label(lang, "findings_here"), new_x="LMARGIN", new_y="NEXT")
    names = {s.station: s.name for s in report.stations}
    for f in st.findings:
        text = finding_line(f, names.get(f.station, f.station), st.zone_of[f.station], lang)
        pdf.multi_cell(0, 5, f"· {text}", align=Align.L, new_x="LMARGIN", new_y="NEXT")
    if not st.findings:
        pdf.cell(0, 5, label(lang, "no_findings"), new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 5, label(lang, "rounding"), align=Align.L, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font(FONT, size=10)
    for who in ("sign_party", "sign_union"):  # each label, then a line to write on
        for text, blank in ((label(lang, who), 35), (label(lang, "sign_person"), 30),
                            (label(lang, "sign_date"), 0)):  # fmt: skip
            pdf.cell(pdf.get_string_width(text) + 2, 12, text)
            pdf.cell(blank, 12, "", border="B")
            pdf.cell(4 if blank else 0, 12, "")
        pdf.ln(16)


def _fixed(pdf: _Page, stamp: datetime, content: str) -> bytes:
    """The PDF's bytes, the same at every run: the month's date, an id from the content."""
    pdf.set_creation_date(stamp)
    pdf.set_producer("waystation")
    digest = hashlib.md5(content.encode(), usedforsecurity=False).hexdigest().upper()
    pdf.file_id = lambda: f"<{digest}><{digest}>"  # type: ignore[method-assign]
    return bytes(pdf.output())


def _characters(report: MonthReport, sts: Sequence[Statement]) -> str:
    """Every character a statement of this report can draw (for the font's subset)."""
    lang = report.language
    texts = [string.printable, "¥·：，（）、—→…", month_span(report.month, report.timezone, lang)]
    texts += LABELS[lang].values()
    texts += [*UTILITIES[lang].values(), *PERIODS[lang].values(), *PARTY_TYPES[lang].values()]
    texts += [unit_text(u, lang) for u in ("kWh", "m³")]
    names = {s.station: s.name for s in report.stations}
    texts += names.values()
    for st in sts:
        texts += [st.party_name, yuan_capitals(st.total), yuan_words(st.total)]
        texts += [finding_line(f, names.get(f.station, f.station), st.zone_of[f.station], lang)
                  for f in st.findings]  # fmt: skip
    return "".join(sorted(set("".join(texts))))


def _subset(font: Path, characters: str, into: Path) -> Path:
    """The font cut down to `characters`: read once (seconds for a CJK font), not per PDF."""
    # The first face of a collection (.ttc); its date kept, so re-runs write the same bytes.
    face = TTFont(font, fontNumber=0, lazy=True, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    cutter = subset.Subsetter(options)
    cutter.populate(text=characters)
    with _quiet_fonttools():
        cutter.subset(face)
    face.save(into)
    return into


def write_pdfs(
    report: MonthReport, out_dir: Path, stem: str, font: Path, *, mark: bool
) -> list[Path]:
    """One PDF per party's statement in `out_dir`; the paths written."""
    sts = statements(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = statement_paths(out_dir, stem, [st.party for st in sts])
    stamp = datetime(report.month.year, report.month.month, report.month.day, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="waystation-font-") as tmp:
        small = _subset(font, _characters(report, sts), Path(tmp) / "statement.ttf")
        for st, path in zip(sts, paths, strict=True):
            title = label(report.language, "title", year=report.month.year,
                          month=report.month.month)  # fmt: skip
            # Every page says whose statement it is: pages get separated.
            pdf = _Page(small, f"{st.party_name} · {title} · {label(report.language, 'page')}")
            pdf.set_title(f"{st.party_name} {report.month:%Y-%m}")
            pdf.set_lang("zh-CN" if report.language == "zh" else "en")
            _draw(pdf, report, st, mark)
            path.write_bytes(_fixed(pdf, stamp, f"{report.month}{st}{mark}"))
    return paths


@contextmanager
def _quiet_fonttools() -> Iterator[None]:
    """fontTools logs each table it cannot subset (and drops it): nothing for an operator."""
    logger = logging.getLogger("fontTools.subset")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)

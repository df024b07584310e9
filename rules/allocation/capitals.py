"""An amount in Chinese capital numerals (大写), as written on a bill: ¥1,005.20 → 壹仟零伍元贰角整.

The rules of the People's Bank's settlement measures as clerks apply them:
`拾` always carries its digit (壹拾, so nothing can be written in front);
one 零 stands for any run of zeros inside the figure; 整 follows an amount
that ends in 元 or 角, never one that ends in 分; less than a yuan is written
without 元 (伍分); zero is 零元整 and a negative amount is led by 负.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["yuan_capitals", "yuan_words"]

DIGITS = "零壹贰叁肆伍陆柒捌玖"
PLACES = ("", "拾", "佰", "仟")  # inside a group of four digits
GROUPS = ("", "万", "亿", "万亿")  # 10^0, 10^4, 10^8, 10^12


def _group(value: int) -> str:
    """0 < value < 10000, with 零 for inner zeros and none trailing (1005 → 壹仟零伍)."""
    out: list[str] = []
    zero = False
    for place in range(3, -1, -1):
        digit = value // 10**place % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[digit] + PLACES[place])
    return "".join(out)


def _integer(value: int) -> str:
    if value >= 10 ** (4 * len(GROUPS)):
        msg = f"{value} is beyond what the capitals here can write (万亿)"
        raise ValueError(msg)
    groups = [value // 10 ** (4 * i) % 10000 for i in range(len(GROUPS))]
    out: list[str] = []
    gap = False  # zeros since the last digit written: the next group is led by 零
    for i in range(len(GROUPS) - 1, -1, -1):
        group = groups[i]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out.append("零")
        out.append(_group(group) + GROUPS[i])
        gap = group % 10 == 0
    return "".join(out)


def yuan_capitals(amount: Decimal) -> str:
    """The amount (in fen: at most two decimals) in capitals; ValueError otherwise."""
    if amount != amount.quantize(Decimal("0.01")):
        msg = f"{amount} is not an amount in fen (two decimals at most)"
        raise ValueError(msg)
    sign = "负" if amount < 0 else ""
    fen_total = int(abs(amount) * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    if fen_total == 0:
        return "零元整"
    out = _integer(yuan) + "元" if yuan else ""
    if jiao:
        out += DIGITS[jiao] + "角"
    elif fen and yuan:
        out += "零"  # 壹拾万元零壹分
    if fen:
        out += DIGITS[fen] + "分"
    else:
        out += "整"
    return sign + out


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))


def _words(value: int) -> str:
    if value < 20:
        return _ONES[value]
    if value < 100:
        return _TENS[value // 10] + ("-" + _ONES[value % 10] if value % 10 else "")
    if value < 1000:
        rest = value % 100
        return f"{_ONES[value // 100]} hundred" + (f" and {_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if value >= scale:
            rest = value % scale
            head = f"{_words(value // scale)} {name}"
            if not rest:
                return head
            return head + (" and " if rest < 100 else " ") + _words(rest)
    raise AssertionError(value)  # pragma: no cover - the scales cover every int


def yuan_words(amount: Decimal) -> str:
    """The amount in English words for an English statement (`ten yuan five fen only`)."""
    if amount != amount.quantize(Decimal("0.01")):
        msg = f"{amount} is not an amount in fen (two decimals at most)"
        raise ValueError(msg)
    fen_total = int(abs(amount) * 100)
    yuan, fen = divmod(fen_total, 100)
    parts = [f"{_words(yuan)} yuan"] if yuan or not fen else []
    if fen:
        parts.append(f"{_words(fen)} fen")
    return ("minus " if amount < 0 else "") + " ".join(parts) + " only"

"""Hypothesis strategies for card numbers in every spelling of issue 14 (shared by the PAN property tests).

A card number is drawn with a Luhn check digit computed by python-stdnum (the oracle, not the code under test), of
13 to 19 digits, then written in one of the spellings that used to slip through: grouped by 4 with nothing, a space,
a dash, a dot, a slash, an underscore, a tab, a double space, `` - ``, a non-breaking, ideographic or zero-width
space, a soft hyphen, an en dash; every digit full-width; Arabic-Indic digits.  It is then placed in surrounding
text that does not glue it to an ASCII letter (a run touching a letter is part of an identifier, by the rule of
``engine/domain/pan.py``).
"""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st
from stdnum import luhn

SEPARATORS = ("", " ", "-", ".", "/", "_", "\t", "  ", " - ", " / ", "\u00a0", "\u3000", "\u200b", "\u00ad", "\u2013")
SCRIPTS = ("ascii", "fullwidth", "arabic-indic")
# Text around the number: never an ASCII letter right next to it.
PREFIXES = ("", "card ", "pan: ", "(", "#", "n°", "«", "Karte: ", "note=")
SUFFIXES = ("", " thanks", ")", ".", "!", " exp 12/29", "»", ";")


@st.composite
def pans(draw: st.DrawFn) -> str:
    """A Luhn-valid card number of 13–19 ASCII digits (the plain digits: what must never appear anywhere)."""
    length = draw(st.integers(min_value=13, max_value=19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    return body + luhn.calc_check_digit(body)


def spell(pan: str, separator: str, script: str) -> str:
    """``pan`` grouped by four with ``separator``, in ``script``'s digits."""
    if script == "fullwidth":
        pan = pan.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    elif script == "arabic-indic":
        pan = pan.translate({ord(d): 0x0660 + int(d) for d in "0123456789"})
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


@st.composite
def disguised(draw: st.DrawFn) -> tuple[str, str]:
    """``(plain digits, text holding them in some spelling)``."""
    pan = draw(pans())
    text = spell(pan, draw(st.sampled_from(SEPARATORS)), draw(st.sampled_from(SCRIPTS)))
    return pan, draw(st.sampled_from(PREFIXES)) + text + draw(st.sampled_from(SUFFIXES))


@st.composite
def header_safe(draw: st.DrawFn) -> tuple[str, str]:
    """A spelling that fits the header alphabet ``[A-Za-z0-9._:-]`` (so only the card-number scan can refuse it)."""
    pan = draw(pans())
    return pan, spell(pan, draw(st.sampled_from(("", "-", "."))), "ascii")


def digits_of(text: str) -> str:
    """Every decimal digit of ``text`` (any script, as ASCII) in order: a PAN spelled with separators or in
    full-width digits shows up here whole."""
    return "".join(str(unicodedata.decimal(ch)) for ch in unicodedata.normalize("NFKC", text) if ch.isdecimal())

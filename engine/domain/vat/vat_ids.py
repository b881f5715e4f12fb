"""VAT ids: compacted and checked with python-stdnum (format and check digits, no VIES call)."""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.eu import vat as stdnum_vat

from engine.domain.vat.countries import VAT_PREFIX_COUNTRY, normalize_country, vat_prefix
from engine.domain.vat.errors import VatIdCountryMismatch


@dataclass(frozen=True, slots=True)
class VatIdCheck:
    """A VAT id after :func:`check_vat_id`: ``number`` compacted with its country prefix, ``valid`` when it
    passes python-stdnum's format and check-digit test."""

    number: str
    valid: bool


def check_vat_id(vat_id: str, customer_country: str) -> VatIdCheck:
    """Compact a VAT id and test it with python-stdnum (format and check digits, no VIES call).

    An id without a country prefix takes the customer's (``EL`` for Greece).  Raises
    :class:`VatIdCountryMismatch` when the id's prefix names another country than ``customer_country`` (``EL``
    and ``GR`` both mean Greece; ``XI`` means the United Kingdom), and :class:`VatError` for a malformed country.
    """
    country = normalize_country(customer_country)
    try:
        number = stdnum_vat.compact(vat_id)
    except Exception:  # stdnum raises its own ValidationError subclasses on garbage
        number = "".join(ch for ch in str(vat_id).upper() if ch.isalnum())
    prefix = number[:2]
    if len(prefix) == 2 and prefix.isascii() and prefix.isalpha():
        prefix_country = VAT_PREFIX_COUNTRY.get(prefix, prefix)
        if prefix_country != country:
            raise VatIdCountryMismatch(prefix, country)
    else:
        number = vat_prefix(country) + number
    return VatIdCheck(number=number, valid=bool(number) and stdnum_vat.is_valid(number))

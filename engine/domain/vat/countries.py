"""EU member states and country codes as VAT reads them (Greece is ``GR`` as a country and ``EL`` as a VAT prefix)."""

from __future__ import annotations

from engine.domain.vat.errors import VatError

_EU = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
EU_MEMBER_STATES: frozenset[str] = frozenset(_EU.split())

# Country codes that mean another one: Greece's VAT prefix, and Northern Ireland's (a UK territory) for VAT ids.
_COUNTRY_ALIASES = {"EL": "GR"}
VAT_PREFIX_COUNTRY = {"EL": "GR", "XI": "GB"}
# The VAT prefix of a member state whose prefix is not its ISO code (``config/vat_rates.json`` says the same).
_COUNTRY_VAT_PREFIX = {"GR": "EL"}


def normalize_country(country: str) -> str:
    """An ISO 3166 alpha-2 code in upper case, with Greece's VAT prefix ``EL`` read as ``GR``.

    Raises :class:`VatError` for anything that is not two ASCII letters.
    """
    if not isinstance(country, str):
        raise VatError(f"country must be a string, got {type(country).__name__}")
    cc = country.strip().upper()
    if len(cc) != 2 or not cc.isascii() or not cc.isalpha():
        raise VatError(f"country must be an ISO 3166 alpha-2 code, got {country!r}")
    return _COUNTRY_ALIASES.get(cc, cc)


def is_eu(country: str) -> bool:
    """True when ``country`` (either case, ``EL`` accepted) is one of the 27 member states."""
    return normalize_country(country) in EU_MEMBER_STATES


def vat_prefix(country: str) -> str:
    """The VAT id prefix of a normalised country code: ``EL`` for ``GR``, the code itself otherwise."""
    return _COUNTRY_VAT_PREFIX.get(country, country)

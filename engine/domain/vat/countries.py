"""EU member states and country codes as VAT reads them (Greece is ``GR`` as a country and ``EL`` as a VAT prefix)."""

from __future__ import annotations

from engine.domain.vat.errors import VatError

_EU = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
EU_MEMBER_STATES: frozenset[str] = frozenset(_EU.split())

# ISO 3166-1 alpha-2: the 249 officially assigned codes (withdrawn ones like AN and CS, user-assigned ones like
# ZZ or XK, and reserved ones like UK are not countries a customer can live in).
_ISO_3166_1 = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ "
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO "
    "FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE "
    "JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO "
    "MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW "
    "PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM "
    "TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
)
ISO_3166_1_ALPHA_2: frozenset[str] = frozenset(_ISO_3166_1.split())

# Country codes that mean another one: Greece's VAT prefix, and Northern Ireland's (a UK territory) for VAT ids.
_COUNTRY_ALIASES = {"EL": "GR"}
VAT_PREFIX_COUNTRY = {"EL": "GR", "XI": "GB"}
# The VAT prefix of a member state whose prefix is not its ISO code (``config/vat_rates.json`` says the same).
_COUNTRY_VAT_PREFIX = {"GR": "EL"}


def normalize_country(country: str) -> str:
    """An ISO 3166 alpha-2 code in upper case, with Greece's VAT prefix ``EL`` read as ``GR``.

    Raises :class:`VatError` for anything that is not an officially assigned ISO 3166-1 alpha-2 code
    (:data:`ISO_3166_1_ALPHA_2`; ``ZZ``, ``UK`` and withdrawn codes are refused).
    """
    if not isinstance(country, str):
        raise VatError(f"country must be a string, got {type(country).__name__}")
    cc = country.strip().upper()
    if len(cc) != 2 or not cc.isascii() or not cc.isalpha():
        raise VatError(f"country must be an ISO 3166 alpha-2 code, got {country!r}")
    cc = _COUNTRY_ALIASES.get(cc, cc)
    if cc not in ISO_3166_1_ALPHA_2:
        raise VatError(f"country must be an assigned ISO 3166-1 alpha-2 code, got {country!r}")
    return cc


def is_eu(country: str) -> bool:
    """True when ``country`` (either case, ``EL`` accepted) is one of the 27 member states."""
    return normalize_country(country) in EU_MEMBER_STATES


def vat_prefix(country: str) -> str:
    """The VAT id prefix of a normalised country code: ``EL`` for ``GR``, the code itself otherwise."""
    return _COUNTRY_VAT_PREFIX.get(country, country)

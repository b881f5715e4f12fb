"""Money as integers of minor units, the currencies Stripe charges cards in, and half-up rounding.

As ``docs/api.md`` says: an amount is always an ``int`` count of the currency's minor unit as the Stripe API counts it
(cents for EUR, yen for JPY, fils/1000 for KWD); never a float.  Currency codes are ISO 4217, accepted in either
case and returned lower case like Stripe.

Sources (docs.stripe.com/currencies): the presentment currencies Stripe supports for card payments, the
zero-decimal list (BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF), the three-decimal list
(BHD JOD KWD OMR TND: "the last digit must be 0"), the special case ISK (zero-decimal, but the API keeps a
two-decimal representation whose last two digits must be 00), the "minimum and maximum charge amounts" table, and
the eight-digit maximum of the ``amount`` field.  The same data sits in the Stripe sandbox
(:mod:`sandbox.stripe_sim.currencies`); :mod:`tests.unit.domain.test_money` checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from engine.errors import InvalidInput

__all__ = [
    "MAXIMUM_AMOUNT",
    "SUPPORTED_CURRENCIES",
    "AmountNotChargeable",
    "Currency",
    "UnknownCurrency",
    "check_chargeable",
    "currency",
    "format_amount",
    "round_half_up",
    "round_half_up_to",
]

# Every currency Stripe lists as a presentment currency for card payments.
_SUPPORTED = """
    usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd cad cdf chf
    clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr ils
    inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk
    mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp
    sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw
"""
SUPPORTED_CURRENCIES: frozenset[str] = frozenset(_SUPPORTED.split())
ZERO_DECIMAL: frozenset[str] = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())  # noqa: SIM905
THREE_DECIMAL: frozenset[str] = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# ISK is zero-decimal, but Stripe keeps a two-decimal representation for backwards compatibility: 5 ISK is 500.
WHOLE_HUNDREDS: frozenset[str] = frozenset({"isk"})

# Stripe's minimum charge amounts, in minor units.  A currency not listed has no documented minimum of its own
# (Stripe's rule is "at least 0.50 USD after conversion", which depends on the day's rate); we only require > 0.
MINIMUM_CHARGE: dict[str, int] = {
    "usd": 50,
    "aed": 200,
    "aud": 50,
    "bgn": 100,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "czk": 1500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17500,
    "inr": 50,
    "jpy": 50,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "nzd": 50,
    "pln": 200,
    "ron": 200,
    "sek": 300,
    "sgd": 50,
    "thb": 1000,
}

# The amount field takes at most eight digits (99999999 = 999,999.99 USD).
MAXIMUM_AMOUNT = 99_999_999


class UnknownCurrency(InvalidInput):
    """A currency code that is not ISO 4217 or that Stripe cannot charge cards in."""

    def __init__(self, code: object) -> None:
        super().__init__(f"unsupported currency: {code!r} (not one Stripe charges cards in)")
        self.code = code


class AmountNotChargeable(InvalidInput):
    """An amount Stripe would refuse for the currency.  ``code`` is ``amount_too_small``, ``amount_too_large``
    or ``amount_invalid_precision``; the ingest answers 422 with it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Currency:
    """One currency as Stripe counts it.

    ``exponent`` is the number of decimals in the API's minor unit (0 for JPY, 2 for EUR and ISK, 3 for KWD);
    ``step`` is the granularity Stripe accepts for an amount (10 for three-decimal currencies, 100 for ISK, else 1);
    ``minimum_charge`` is Stripe's documented minimum in minor units, or None where it has none of its own.
    """

    code: str
    exponent: int
    step: int
    minimum_charge: int | None

    @property
    def three_decimal(self) -> bool:
        """True for BHD, JOD, KWD, OMR and TND, whose amounts must end in 0."""
        return self.exponent == 3

    @property
    def iso_exponent(self) -> int:
        """The currency's decimals in ISO 4217: ``exponent`` except for ISK (0, though the API counts hundredths)."""
        return self.exponent - 2 if self.code in WHOLE_HUNDREDS else self.exponent

    @property
    def iso_step(self) -> int:
        """The ISO 4217 minor unit in the API's minor units (100 for ISK, else 1): what a converted amount is
        rounded to."""
        return 10 ** (self.exponent - self.iso_exponent)

    @property
    def smallest_charge(self) -> int:
        """The smallest amount Stripe could charge: the documented minimum, else one step."""
        return self.minimum_charge if self.minimum_charge is not None else self.step

    @classmethod
    def of(cls, code: str | Currency) -> Currency:
        """Same as :func:`currency`."""
        return currency(code)


def _build(code: str) -> Currency:
    if code in ZERO_DECIMAL:
        exponent, step = 0, 1
    elif code in THREE_DECIMAL:
        exponent, step = 3, 10
    elif code in WHOLE_HUNDREDS:
        exponent, step = 2, 100
    else:
        exponent, step = 2, 1
    return Currency(code=code, exponent=exponent, step=step, minimum_charge=MINIMUM_CHARGE.get(code))


_CURRENCIES: dict[str, Currency] = {code: _build(code) for code in SUPPORTED_CURRENCIES}


def currency(code: str | Currency) -> Currency:
    """The :class:`Currency` for an ISO 4217 code in either case (``"EUR"``, ``"eur"``, ``" Eur "``).

    Raises :class:`UnknownCurrency` for anything that is not a currency Stripe charges cards in.
    """
    if isinstance(code, Currency):
        return code
    if not isinstance(code, str):
        raise UnknownCurrency(code)
    found = _CURRENCIES.get(code.strip().lower())
    if found is None:
        raise UnknownCurrency(code)
    return found


def check_chargeable(amount: int, code: str | Currency) -> None:
    """Check that Stripe could charge ``amount`` minor units of ``code`` (``docs/api.md``, "Routes").

    Raises :class:`UnknownCurrency` for an unsupported currency, :class:`TypeError` for a non-integer amount
    (``bool`` included), and :class:`AmountNotChargeable` below the currency's minimum (or below one step), above
    eight digits, or when a three-decimal amount does not end in 0 (an ISK amount in 00).
    """
    cur = currency(code)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int of minor units, got {type(amount).__name__}")
    minimum = cur.smallest_charge
    if amount < minimum:
        raise AmountNotChargeable(
            "amount_too_small", f"Amount must be at least {format_amount(minimum, cur)} (got {amount} minor units)."
        )
    if amount > MAXIMUM_AMOUNT:
        raise AmountNotChargeable(
            "amount_too_large", f"Amount must be no more than {format_amount(MAXIMUM_AMOUNT, cur)}."
        )
    if amount % cur.step:
        if cur.three_decimal:
            why = f"{cur.code.upper()} is a three-decimal currency: the amount must end in 0 (1230 for 1.230)."
        else:
            why = f"{cur.code.upper()} amounts must be a multiple of {cur.step} (5 {cur.code.upper()} is 500)."
        raise AmountNotChargeable("amount_invalid_precision", f"Invalid amount {amount}: {why}")


def format_amount(amount: int, code: str | Currency) -> str:
    """Human form of an amount: ``format_amount(1234, "eur") == "12.34 EUR"``, ``(500, "JPY") == "500 JPY"``,
    ``(1230, "kwd") == "1.230 KWD"``, ``(-5, "eur") == "-0.05 EUR"``.  Pure integer arithmetic.

    Raises :class:`UnknownCurrency` and :class:`TypeError` as :func:`check_chargeable` does.
    """
    cur = currency(code)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int of minor units, got {type(amount).__name__}")
    sign = "-" if amount < 0 else ""
    if cur.exponent == 0:
        return f"{sign}{abs(amount)} {cur.code.upper()}"
    units, minor = divmod(abs(amount), 10**cur.exponent)
    return f"{sign}{units}.{minor:0{cur.exponent}d} {cur.code.upper()}"


def round_half_up(value: int | Fraction | Decimal) -> int:
    """Round to the nearest integer, ties away from zero (2.5 → 3, -2.5 → -3), exactly.

    Accepts ``int``, :class:`~fractions.Fraction` and :class:`~decimal.Decimal` (never ``float``: its binary
    error would decide ties).  Raises :class:`TypeError` for anything else and :class:`ValueError` for a
    non-finite Decimal.
    """
    return round_half_up_to(value, 1)


def round_half_up_to(value: int | Fraction | Decimal, step: int) -> int:
    """Round to the nearest multiple of ``step`` (a positive int), ties away from zero.

    ``round_half_up_to(Fraction(125), 10) == 130``; used for three-decimal currencies, whose amounts end in 0.
    Raises like :func:`round_half_up`, and :class:`ValueError` for ``step < 1``.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"step must be a positive int, got {step!r}")
    if isinstance(value, bool):
        raise TypeError("a bool is not an amount")
    if isinstance(value, int):
        exact = Fraction(value)
    elif isinstance(value, Fraction):
        exact = value
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot round {value}")
        if step == 1:
            return int(value.to_integral_value(rounding=ROUND_HALF_UP))
        exact = Fraction(value)
    else:
        raise TypeError(f"round_half_up takes int, Fraction or Decimal, not {type(value).__name__}")
    scaled = abs(exact) / step
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    return (whole if exact >= 0 else -whole) * step

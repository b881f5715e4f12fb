"""Currency rules Stripe applies to amounts (https://docs.stripe.com/currencies).

Amounts are integers in the currency's smallest unit.  Zero-decimal currencies (JPY …) count whole units;
three-decimal currencies (KWD, BHD, JOD, OMR, TND) count thousandths but Stripe only accepts amounts whose last
digit is 0; ISK keeps a two-decimal representation whose last two digits must be 00.  Each currency in
:data:`MINIMUM_AMOUNTS` has the documented minimum charge amount; other currencies only need a positive amount here,
because Stripe's real rule (at least 0.50 USD in the settlement currency) depends on exchange rates.
"""

from __future__ import annotations

from sandbox.stripe_sim.errors import StripeError, invalid_request

# ISO codes Stripe can charge in (card payments), space-separated to keep the table compact.
_SUPPORTED_CODES = (
    "usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd "
    "cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd "
    "hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad "
    "mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln "
    "pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs "
    "uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw "
)
SUPPORTED: frozenset[str] = frozenset(_SUPPORTED_CODES.split())

_ZERO_DECIMAL_CODES = "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf"
ZERO_DECIMAL: frozenset[str] = frozenset(_ZERO_DECIMAL_CODES.split())
_THREE_DECIMAL_CODES = "bhd jod kwd omr tnd"
THREE_DECIMAL: frozenset[str] = frozenset(_THREE_DECIMAL_CODES.split())
# Zero-decimal in practice, but the API keeps a two-decimal representation: 5 ISK is amount=500.
WHOLE_HUNDREDS: frozenset[str] = frozenset({"isk"})

# Minimum charge amounts in minor units, from Stripe's "Minimum and maximum charge amounts" table.
MINIMUM_AMOUNTS: dict[str, int] = {
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

# Stripe accepts amounts up to eight digits (99,999,999 minor units) for card charges.
MAXIMUM_AMOUNT = 99_999_999


def exponent(currency: str) -> int:
    """Number of decimal places in the currency's minor unit (0, 2 or 3)."""
    cur = currency.lower()
    if cur in ZERO_DECIMAL:
        return 0
    if cur in THREE_DECIMAL:
        return 3
    return 2


def format_amount(amount: int, currency: str) -> str:
    """Human form of an amount, as Stripe writes it in error messages (``0.50 eur``)."""
    places = exponent(currency)
    if places == 0:
        return f"{amount} {currency.lower()}"
    return f"{amount / 10**places:.{places}f} {currency.lower()}"


def normalize_currency(value: object, param: str = "currency") -> str:
    """Return the lower-case ISO code.

    Raises StripeError (400 ``invalid_request_error``, param ``currency``) for a currency Stripe does not support.
    """
    if not isinstance(value, str) or value.lower() not in SUPPORTED:
        raise invalid_request(
            f"Invalid currency: {str(value).lower()}. Stripe currently supports these currencies: "
            + ", ".join(sorted(SUPPORTED)),
            param=param,
            code="parameter_invalid_string" if not isinstance(value, str) else "invalid_currency",
        )
    return value.lower()


def check_charge_amount(amount: int, currency: str, param: str = "amount") -> None:
    """Check that Stripe could charge ``amount`` in ``currency``.

    Raises StripeError (400 ``invalid_request_error`` with ``param`` = ``amount``): code ``amount_too_small``
    below the currency's minimum (or below 1), ``amount_too_large`` above eight digits, and
    ``parameter_invalid_integer`` when a three-decimal amount does not end in 0 (or an ISK amount in 00).
    """
    cur = currency.lower()
    minimum = MINIMUM_AMOUNTS.get(cur, 1)
    if amount < minimum:
        raise _amount_error(f"Amount must be at least {format_amount(minimum, cur)}", "amount_too_small", param)
    if amount > MAXIMUM_AMOUNT:
        raise _amount_error(
            f"Amount must be no more than {format_amount(MAXIMUM_AMOUNT, cur)}", "amount_too_large", param
        )
    check_amount_granularity(amount, cur, param)


def check_amount_granularity(amount: int, currency: str, param: str = "amount") -> None:
    """Refuse three-decimal amounts not ending in 0 and ISK amounts not ending in 00 (also for refunds).

    Raises StripeError (400, param ``param``).
    """
    cur = currency.lower()
    if cur in THREE_DECIMAL and amount % 10 != 0:
        raise _amount_error(
            f"Invalid amount: {amount}. {cur.upper()} is a three-decimal currency and Stripe only accepts amounts "
            "whose last digit is 0 (e.g. 1230 for 1.230).",
            "parameter_invalid_integer",
            param,
        )
    if cur in WHOLE_HUNDREDS and amount % 100 != 0:
        raise _amount_error(
            f"Invalid amount: {amount}. {cur.upper()} amounts must be a multiple of 100 (5 {cur.upper()} is 500).",
            "parameter_invalid_integer",
            param,
        )


def _amount_error(message: str, code: str, param: str) -> StripeError:
    return invalid_request(message, param=param, code=code)

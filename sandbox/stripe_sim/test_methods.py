"""Stripe's documented test payment methods and what each one does (https://docs.stripe.com/testing).

Each :class:`TestCard` is addressable by its PaymentMethod token (``pm_card_visa``), its legacy aliases
(``pm_card_visa_chargeDeclined``), its card token (``tok_visa``) and its test number.  :data:`DECLINES` maps a
decline code to the error Stripe answers with (``code``, ``message``, ``param``): ``expired_card``,
``incorrect_cvc``, ``processing_error`` and ``incorrect_number`` are their own error codes, every other decline is
``card_declined`` with the ``decline_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DECLINES", "TEST_CARDS", "TestCard", "decline_error_fields", "find_test_card"]

Behavior = Literal["succeed", "decline", "radar_block", "authenticate", "authenticate_on_setup"]


@dataclass(frozen=True)
class TestCard:
    """A documented test card.

    ``behavior``: ``succeed``; ``decline`` with ``decline_code``; ``radar_block`` (Radar blocks the charge,
    decline code ``fraudulent``); ``authenticate`` (3-D Secure required on every charge; if ``decline_code`` is
    set the charge is declined after a successful authentication); ``authenticate_on_setup`` (3-D Secure required
    on-session, off-session charges succeed once the card is attached to a customer).
    """

    __test__ = False  # not a pytest test class despite the name

    token: str
    number: str
    brand: str
    country: str = "US"
    funding: str = "credit"
    behavior: Behavior = "succeed"
    decline_code: str | None = None
    risk_level: str = "normal"
    aliases: tuple[str, ...] = ()

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def card_token(self) -> str:
        return "tok_" + self.token.removeprefix("pm_card_")


# decline_code -> (error code, message, param)
DECLINES: dict[str, tuple[str, str, str | None]] = {
    "generic_decline": ("card_declined", "Your card was declined.", None),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds.", None),
    "lost_card": ("card_declined", "Your card was declined.", None),
    "stolen_card": ("card_declined", "Your card was declined.", None),
    "fraudulent": ("card_declined", "Your card was declined.", None),
    "do_not_honor": ("card_declined", "Your card was declined.", None),
    "card_velocity_exceeded": (
        "card_declined",
        "Your card was declined for making repeated attempts too frequently or exceeding its amount limit.",
        None,
    ),
    "authentication_required": (
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
        None,
    ),
    "expired_card": ("expired_card", "Your card has expired.", "exp_month"),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect.", "cvc"),
    "processing_error": (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
        None,
    ),
    "incorrect_number": ("incorrect_number", "Your card number is incorrect.", "number"),
}


def decline_error_fields(decline_code: str) -> tuple[str, str, str | None]:
    """``(code, message, param)`` for a decline code; unknown codes decline as ``card_declined``."""
    return DECLINES.get(decline_code, ("card_declined", "Your card was declined.", None))


def _country(code: str, number: str, brand: str = "visa") -> TestCard:
    return TestCard(f"pm_card_{code}", number, brand, country=code.upper())


TEST_CARDS: tuple[TestCard, ...] = (
    # Successful payments by brand.
    TestCard("pm_card_visa", "4242424242424242", "visa"),
    TestCard("pm_card_visa_debit", "4000056655665556", "visa", funding="debit"),
    TestCard("pm_card_mastercard", "5555555555554444", "mastercard"),
    TestCard("pm_card_mastercard_debit", "5200828282828210", "mastercard", funding="debit"),
    TestCard("pm_card_mastercard_prepaid", "5105105105105100", "mastercard", funding="prepaid"),
    TestCard("pm_card_amex", "378282246310005", "amex"),
    TestCard("pm_card_discover", "6011111111111117", "discover"),
    TestCard("pm_card_diners", "3056930009020004", "diners"),
    TestCard("pm_card_jcb", "3566002020360505", "jcb", country="JP"),
    TestCard("pm_card_unionpay", "6200000000000005", "unionpay", country="CN"),
    TestCard("pm_card_bypassPending", "4000000000000077", "visa"),
    TestCard("pm_card_threeDSecureOptional", "4000000000003055", "visa"),
    TestCard("pm_card_riskLevelElevated", "4000000000009235", "visa", risk_level="elevated"),
    # Cards by country (all Visa unless noted).
    _country("us", "4242424242424242"),
    _country("ar", "4000000320000021"),
    _country("br", "4000000760000002"),
    _country("ca", "4000001240000000"),
    _country("mx", "4000004840008001"),
    _country("at", "4000000400000008"),
    _country("be", "4000000560000004"),
    _country("bg", "4000001000000000"),
    _country("hr", "4000001910000009"),
    _country("cy", "4000001960000008"),
    _country("cz", "4000002030000002"),
    _country("dk", "4000002080000001"),
    _country("ee", "4000002330000009"),
    _country("fi", "4000002460000001"),
    _country("fr", "4000002500000003"),
    _country("de", "4000002760000016"),
    _country("gi", "4000002920000005"),
    _country("gr", "4000003000000030"),
    _country("hu", "4000003480000005"),
    _country("ie", "4000003720000005"),
    _country("it", "4000003800000008"),
    _country("lv", "4000004280000005"),
    _country("li", "4000004380000004"),
    _country("lt", "4000004400000000"),
    _country("lu", "4000004420000006"),
    _country("mt", "4000004700000007"),
    _country("nl", "4000005280000002"),
    _country("no", "4000005780000007"),
    _country("pl", "4000006160000005"),
    _country("pt", "4000006200000007"),
    _country("ro", "4000006420000001"),
    _country("si", "4000007050000006"),
    _country("sk", "4000007030000001"),
    _country("es", "4000007240000007"),
    _country("se", "4000007520000008"),
    _country("ch", "4000007560000009"),
    _country("gb", "4000008260000000"),
    _country("au", "4000000360000006"),
    _country("cn", "4000001560000002"),
    _country("hk", "4000003440000004"),
    _country("in", "4000003560000008"),
    _country("jp", "4000003920000003"),
    _country("my", "4000004580000002"),
    _country("nz", "4000005540000008"),
    _country("sg", "4000007020000003"),
    _country("th", "4000007640000003"),
    _country("ae", "4000007840000001"),
    # Declines.
    TestCard(
        "pm_card_chargeDeclined",
        "4000000000000002",
        "visa",
        behavior="decline",
        decline_code="generic_decline",
        aliases=("pm_card_visa_chargeDeclined",),
    ),
    TestCard(
        "pm_card_chargeDeclinedInsufficientFunds",
        "4000000000009995",
        "visa",
        behavior="decline",
        decline_code="insufficient_funds",
        aliases=("pm_card_visa_chargeDeclinedInsufficientFunds",),
    ),
    TestCard(
        "pm_card_chargeDeclinedLostCard",
        "4000000000009987",
        "visa",
        behavior="decline",
        decline_code="lost_card",
        aliases=("pm_card_visa_chargeDeclinedLostCard",),
    ),
    TestCard(
        "pm_card_chargeDeclinedStolenCard",
        "4000000000009979",
        "visa",
        behavior="decline",
        decline_code="stolen_card",
        aliases=("pm_card_visa_chargeDeclinedStolenCard",),
    ),
    TestCard(
        "pm_card_chargeDeclinedExpiredCard",
        "4000000000000069",
        "visa",
        behavior="decline",
        decline_code="expired_card",
    ),
    TestCard(
        "pm_card_chargeDeclinedIncorrectCvc",
        "4000000000000127",
        "visa",
        behavior="decline",
        decline_code="incorrect_cvc",
    ),
    TestCard(
        "pm_card_chargeDeclinedProcessingError",
        "4000000000000119",
        "visa",
        behavior="decline",
        decline_code="processing_error",
    ),
    TestCard(
        "pm_card_visa_chargeDeclinedVelocityLimitExceeded",
        "4000000000006975",
        "visa",
        behavior="decline",
        decline_code="card_velocity_exceeded",
    ),
    TestCard(
        "pm_card_chargeDeclinedFraudulent",
        "4100000000000019",
        "visa",
        behavior="decline",
        decline_code="fraudulent",
        risk_level="highest",
    ),
    TestCard(
        "pm_card_chargeCustomerFail", "4000000000000341", "visa", behavior="decline", decline_code="generic_decline"
    ),
    # Radar.
    TestCard("pm_card_radarBlock", "4100000000000019", "visa", behavior="radar_block", risk_level="highest"),
    TestCard("pm_card_riskLevelHighest", "4000000000004954", "visa", behavior="radar_block", risk_level="highest"),
    # 3-D Secure.
    TestCard("pm_card_authenticationRequired", "4000002760003184", "visa", country="DE", behavior="authenticate"),
    TestCard("pm_card_threeDSecure2Required", "4000000000003220", "visa", behavior="authenticate"),
    TestCard("pm_card_threeDSecureRequired", "4000000000003063", "visa", behavior="authenticate"),
    TestCard(
        "pm_card_authenticationRequiredOnSetup",
        "4000002500003155",
        "visa",
        country="FR",
        behavior="authenticate_on_setup",
        aliases=("pm_card_authenticationRequiredSetupForOffSession",),
    ),
    TestCard(
        "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds",
        "4000008260003178",
        "visa",
        country="GB",
        behavior="authenticate",
        decline_code="insufficient_funds",
    ),
)

_BY_NAME: dict[str, TestCard] = {}
for _card in TEST_CARDS:
    for _name in (_card.token, *_card.aliases, _card.card_token):
        _BY_NAME.setdefault(_name, _card)
    # The first card listed for a number wins (pm_card_visa for 4242…, not pm_card_us).
    _BY_NAME.setdefault(_card.number, _card)


def find_test_card(name: str) -> TestCard | None:
    """The test card for a token (``pm_card_…``/``tok_…``) or a test card number, or None."""
    return _BY_NAME.get(name.replace(" ", ""))

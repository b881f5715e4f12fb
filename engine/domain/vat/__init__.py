"""EU VAT: the rate table, VAT ids, and the assessment of one payment.  ``docs/vat.md`` describes the rules.

* :mod:`~engine.domain.vat.rates`: ``config/vat_rates.json`` parsed into :class:`VatRates` (once per process,
  then passed in; nothing is read at import) and the rate in force on a date;
* :mod:`~engine.domain.vat.assessment`: :func:`assess_vat` (place of supply, rate, net/VAT/total) and
  :func:`proportional_vat` (the VAT share of a refund);
* :mod:`~engine.domain.vat.vat_ids`: :func:`check_vat_id`;
* :mod:`~engine.domain.vat.countries` and :mod:`~engine.domain.vat.errors`.
"""

from engine.domain.vat.assessment import (
    OSS_THRESHOLD_EUR_CENTS,
    CustomerType,
    Scheme,
    TaxBehavior,
    VatResult,
    assess_vat,
    compute_amounts,
    proportional_vat,
)
from engine.domain.vat.countries import EU_MEMBER_STATES, is_eu, normalize_country
from engine.domain.vat.errors import VatDataError, VatError, VatIdCountryMismatch, VatRateUnavailable
from engine.domain.vat.rates import (
    VAT_RATES_PATH,
    Category,
    MemberState,
    RatePeriod,
    VatRates,
    format_rate,
    load_vat_rates,
    rate_for,
    shipped_vat_rates,
)
from engine.domain.vat.vat_ids import VatIdCheck, check_vat_id

__all__ = [
    "EU_MEMBER_STATES",
    "OSS_THRESHOLD_EUR_CENTS",
    "VAT_RATES_PATH",
    "Category",
    "CustomerType",
    "MemberState",
    "RatePeriod",
    "Scheme",
    "TaxBehavior",
    "VatDataError",
    "VatError",
    "VatIdCheck",
    "VatIdCountryMismatch",
    "VatRateUnavailable",
    "VatRates",
    "VatResult",
    "assess_vat",
    "check_vat_id",
    "compute_amounts",
    "format_rate",
    "is_eu",
    "load_vat_rates",
    "normalize_country",
    "proportional_vat",
    "rate_for",
    "shipped_vat_rates",
]

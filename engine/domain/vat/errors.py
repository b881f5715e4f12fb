"""Errors of the VAT package: all :class:`VatError`, an :class:`~engine.errors.InvalidInput`."""

from __future__ import annotations

from engine.errors import InvalidInput


class VatError(InvalidInput):
    """Base class of the VAT package's errors."""


class VatDataError(VatError):
    """A VAT rates file is missing or malformed; the message names the file and the offending entry."""


class VatRateUnavailable(VatError):
    """No rate for the country on that date: not an EU member state, or a date before the data's coverage."""


class VatIdCountryMismatch(VatError):
    """The VAT id's country prefix is not the customer's country.  The ingest answers 422 with ``code`` and
    ``param``; the message never repeats the id."""

    code = "vat_id_country_mismatch"
    param = "customer.vat_id"

    def __init__(self, prefix: str, country: str) -> None:
        super().__init__(f"the VAT id is from {prefix} but the customer's country is {country}")
        self.prefix = prefix
        self.country = country

"""The engine's settings, read from ``PAYMENTS_*`` environment variables and an optional ``.env`` file.

Settings are grouped (``settings.sqs.endpoint_url`` is ``PAYMENTS_SQS_ENDPOINT_URL``): the first word after the
prefix names the group, the rest the field.  A handful of settings whose names read as one phrase
(``PAYMENTS_DATA_DIR``, ``PAYMENTS_QUEUE_PREFIX``, ``PAYMENTS_RATE_LIMIT_PER_MINUTE``) stay at the top level.
Secrets are :class:`pydantic.SecretStr` and print masked.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PAYMENTS_"


class DatabaseSettings(BaseModel):
    url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql+psycopg://…); unset: the embedded PostgreSQL under the data dir.",
    )
    pool_size: int = Field(default=10, ge=1, description="Connections kept per process (as many again on demand).")
    replica_url: SecretStr | None = Field(
        default=None,
        description="A read replica's PostgreSQL URL; reports read only there.  Unset: reports read the primary.",
    )


class AwsSettings(BaseModel):
    region: str = Field(default="eu-west-1", description="AWS region for SQS and S3.")


class SqsSettings(BaseModel):
    endpoint_url: str | None = Field(
        default=None, description="SQS endpoint; unset: real AWS, or the embedded local endpoint under `run`."
    )
    wait_time_seconds: int = Field(default=20, ge=0, le=20, description="Long-polling wait per ReceiveMessage.")
    visibility_timeout_seconds: int = Field(default=300, ge=1, description="Work queue VisibilityTimeout.")
    heartbeat_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a message still being worked on has its visibility extended.",
    )
    delete_flush_seconds: float = Field(
        default=0.05, ge=0, description="Longest an ack waits to be batched into a DeleteMessageBatch."
    )
    receive_pause_seconds: float = Field(
        default=0.2,
        ge=0,
        le=5,
        description="Longest pause after a receive SQS could not fill (fuller batches, fewer calls; adds latency).",
    )
    standard_batch_seconds: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Standard queues (notifications): pause after an unfilled receive and longest wait of a delete.",
    )
    prefetch_margin: int = Field(
        default=10,
        ge=0,
        le=100,
        description="Messages a worker process may hold beyond its threads (received, waiting for a thread).",
    )
    max_receive_count: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Receives before SQS redrives to the DLQ: a safety net above the engine's attempts.",
    )


class S3Settings(BaseModel):
    endpoint_url: str | None = Field(default=None, description="S3 endpoint; unset: as for SQS.")
    bucket_invoices: str = Field(default="payments-invoices", description="Bucket for invoice PDFs.")
    bucket_settlements: str = Field(default="payments-settlements", description="Bucket for POS batches.")
    bucket_audit: str = Field(default="payments-audit", description="Bucket for audit archives.")
    bucket_reports: str = Field(default="payments-reports", description="Bucket for generated reports.")


class RedisSettings(BaseModel):
    url: SecretStr | None = Field(
        default=None,
        description="Redis URL (may hold a password: redis://:pw@host); unset: 127.0.0.1:6379 if reachable, else an "
        "embedded server.",
    )
    prefix: str | None = Field(default=None, description="Key namespace; unset: derived from the data dir.")


class StripeSettings(BaseModel):
    api_key: SecretStr | None = Field(default=None, description="Stripe secret key; unset: the bundled sandbox.")
    api_base: str | None = Field(default=None, description="Any Stripe-compatible server (default api.stripe.com).")
    sim_port: int = Field(default=12111, description="Port of the Stripe sandbox (`payments sim stripe`).")
    webhook_secrets: SecretStr | None = Field(
        default=None, description="Comma-separated webhook signing secrets; all are accepted."
    )
    max_network_retries: int = Field(default=2, ge=0, description="Network retries inside the Stripe SDK.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Stripe request timeout.")
    rate_limit_per_account: float = Field(
        default=100.0,
        ge=0,
        description="Stripe calls/s per account across all workers (Redis token bucket; live-mode default; 0: off). "
        "Applies with a configured api_key, not to the bundled sandbox.",
    )
    rate_limit_per_endpoint: float = Field(
        default=25.0,
        ge=0,
        description="Stripe calls/s per account and endpoint across all workers (live-mode default; 0: off).",
    )


class HttpSettings(BaseModel):
    host: str = Field(default="127.0.0.1", description="Ingest bind address.")
    port: int = Field(default=8000, description="Ingest HTTP port.")
    internal_host: str = Field(
        default="127.0.0.1", description="Bind address of the ingest's internal port (metrics, detailed health)."
    )
    internal_port: int = Field(default=8001, description="The ingest's internal port: /metrics and detailed /health.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses/CIDRs of proxies whose X-Forwarded-For names the client (JSON list); none: the peer.",
    )
    max_json_bytes: int = Field(default=1024 * 1024, ge=1, description="Largest JSON request body (413 above).")
    max_webhook_bytes: int = Field(
        default=64 * 1024, ge=1, description="Largest Stripe webhook body (413 above; Stripe's events are far smaller)."
    )
    max_settlement_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Largest settlement CSV upload (413 above)."
    )


class MetricsSettings(BaseModel):
    port: int = Field(default=9191, description="Worker metrics port.")


class LocalSettings(BaseModel):
    aws_port: int = Field(default=4566, description="Port of the embedded local AWS (SQS/S3) endpoint.")


class RetrySettings(BaseModel):
    backoff_base_seconds: float = Field(default=5.0, ge=0, description="First retry backoff (full jitter).")
    backoff_max_seconds: float = Field(default=300.0, ge=0, description="Longest retry backoff.")
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Failed attempts of a job's own (not receives) before it is dead-lettered.",
    )


class JwtSettings(BaseModel):
    issuer: str | None = Field(
        default=None,
        description="The identity provider's `iss`; set: only its RS256/ES256 tokens are accepted (production).",
    )
    jwks_url: str | None = Field(default=None, description="The issuer's JWKS URL (keys chosen by the token's `kid`).")
    public_keys: dict[str, str] = Field(
        default_factory=dict, description='The issuer\'s PEM public keys by `kid`, as JSON: {"kid": "-----BEGIN…"}.'
    )
    audience: str = Field(default="payments-engine", description="The `aud` every token must carry.")
    max_lifetime_seconds: int = Field(
        default=900, ge=1, description="Longest token lifetime accepted (`exp` − `iat`): 15 minutes unless set."
    )
    secret: SecretStr | None = Field(
        default=None,
        description="HS256 secrets, comma-separated (the first signs, all verify); ignored when an issuer is set.",
    )


class SellerSettings(BaseModel):
    country: str = Field(default="IE", description="Seller's country (ISO 3166 alpha-2).")
    vat_id: str | None = Field(default=None, description="Seller's VAT id.")


class VatSettings(BaseModel):
    oss: bool = Field(default=True, description="Tax EU B2C sales at the customer's rate (One-Stop Shop).")


class RatesSettings(BaseModel):
    url: str | None = Field(
        default=None,
        description="Where the scheduler fetches the ECB's daily reference rates (https:// or file://), hourly; "
        "unset: off.  The ECB's: https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of one fetch of the rates file.")


class IdempotencySettings(BaseModel):
    ttl_seconds: int = Field(default=86400, ge=1, description="How long Idempotency-Key answers are kept.")


class OutboxSettings(BaseModel):
    retention_days: int = Field(
        default=7, ge=1, description="Days a relayed outbox row (event or job dispatch) is kept before it is purged."
    )


class ReconcileSettings(BaseModel):
    after_seconds: int = Field(default=900, ge=1, description="Re-enqueue jobs with no progress for this long.")


class DunningSettings(BaseModel):
    schedule_days: str = Field(default="1,3,5", description="Days after a failed renewal to retry it.")


class SettlementSettings(BaseModel):
    fee_bps: int = Field(default=0, ge=0, description="Settlement fee in basis points of gross.")


class MerchantSettings(BaseModel):
    webhook_url: SecretStr | None = Field(
        default=None, description="Where job events are POSTed, signed (may hold credentials: https://user:pw@…)."
    )
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC key for Payments-Signature.")


class WorkerSettings(BaseModel):
    processes: int = Field(
        default=1, ge=1, description="Worker processes of `payments worker` (and `payments run`) without `-p`."
    )
    threads: int = Field(
        default=8,
        ge=1,
        description="Worker threads per process (more hide Stripe's latency; more are caught by a crash).",
    )


class LogSettings(BaseModel):
    level: str = Field(default="INFO", description="Log level.")
    format: str = Field(
        default="auto", description="`json` (one object a line), `text`, or `auto`: text on a terminal, else JSON."
    )


class Settings(BaseSettings):
    """Every setting of the engine.  Build it with :func:`get_settings` (cached) or ``Settings()`` (fresh)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Where embedded services keep their data; unset: var/ of the checkout, else the XDG state dir.",
    )
    queue_prefix: str = Field(default="", description="Prefix put verbatim before every queue and bucket name.")
    rate_limit_per_minute: int = Field(
        default=1000,
        ge=0,
        description="POSTs a minute per token subject within its merchant (per client address without one); 0 = off.",
    )
    rate_limit_webhook_per_minute: int = Field(
        default=6000, ge=0, description="POSTs a minute to /webhooks/stripe, a bucket of its own; 0 = off."
    )
    rate_limit_fail_open: bool = Field(
        default=True, description="Redis unreachable: let requests through (true) or answer 503 (false)."
    )

    database: DatabaseSettings = DatabaseSettings()
    aws: AwsSettings = AwsSettings()
    sqs: SqsSettings = SqsSettings()
    s3: S3Settings = S3Settings()
    redis: RedisSettings = RedisSettings()
    stripe: StripeSettings = StripeSettings()
    http: HttpSettings = HttpSettings()
    metrics: MetricsSettings = MetricsSettings()
    local: LocalSettings = LocalSettings()
    retry: RetrySettings = RetrySettings()
    jwt: JwtSettings = JwtSettings()
    seller: SellerSettings = SellerSettings()
    vat: VatSettings = VatSettings()
    rates: RatesSettings = RatesSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    outbox: OutboxSettings = OutboxSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    dunning: DunningSettings = DunningSettings()
    settlement: SettlementSettings = SettlementSettings()
    merchant: MerchantSettings = MerchantSettings()
    worker: WorkerSettings = WorkerSettings()
    log: LogSettings = LogSettings()

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def masked(self) -> dict[str, Any]:
        """The settings as plain JSON-able data with every secret masked: SecretStr as ``**********``, except the
        URLs kept as SecretStr (:data:`SECRET_URLS`), shown with their userinfo masked; and the userinfo of any
        other URL among the values masked too (:func:`mask_urls`)."""
        data = self.model_dump(mode="json")
        for group, name in SECRET_URLS:
            secret = getattr(getattr(self, group), name)
            data[group][name] = mask_url_password(secret.get_secret_value()) if secret else None
        return mask_urls(data)


def default_data_dir() -> Path:
    """The data directory when ``PAYMENTS_DATA_DIR`` is unset: the same from whichever directory a command runs.

    Run from a checkout (this package sits next to the project's ``pyproject.toml``): ``<checkout>/var``.
    Installed: ``$XDG_STATE_HOME/payments-engine`` (``~/.local/state/payments-engine``).
    """
    root = Path(__file__).resolve().parent.parent
    try:
        is_checkout = 'name = "payments-engine"' in (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        is_checkout = False
    if is_checkout:
        return root / "var"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "payments-engine"


#: The URL settings that are SecretStr because they may carry credentials in their userinfo (group, field).
SECRET_URLS = (("database", "url"), ("database", "replica_url"), ("redis", "url"), ("merchant", "webhook_url"))
# scheme://userinfo@ — userinfo up to the first "/", "?" or "#" of the authority.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*)@")


def mask_url_password(url: str) -> str:
    """Return ``url`` with its userinfo masked: ``user:password@`` → ``user:***@`` (the user name helps an operator
    and is kept), a lone ``token@`` (a credential by itself, as in many webhook URLs) → ``***@``.  A URL without
    userinfo comes back unchanged."""
    return _URL_USERINFO.sub(_mask_userinfo, url, count=1)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, has_password, _ = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user + ':***' if has_password else '***'}@"


def mask_urls(value: Any) -> Any:
    """``value`` (JSON-like) with the userinfo of every URL in every string masked (:func:`mask_url_password`)."""
    if isinstance(value, str):
        return _URL_USERINFO.sub(_mask_userinfo, value) if "@" in value else value
    if isinstance(value, dict):
        return {k: mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_urls(v) for v in value]
    return value


def env_name(path: str) -> str:
    """The environment variable for a dotted settings path: ``sqs.endpoint_url`` → ``PAYMENTS_SQS_ENDPOINT_URL``."""
    return ENV_PREFIX + path.replace(".", "_").upper()


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()

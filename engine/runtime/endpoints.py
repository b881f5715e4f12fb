"""Where the parts of the stack live: external settings first, else the runtime file `payments run` wrote.

`payments run` starts embedded services and records their endpoints in ``{data_dir}/runtime.json``.  Every
other command reads the same settings and that file and attaches to the running stack; it never starts a second
embedded service.  :func:`resolve_endpoints` is the one place that decides.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from config.settings import Settings, get_settings, mask_urls
from engine.errors import PaymentsError
from engine.runtime.private_files import ensure_private_dir, write_private

RUNTIME_FILE_NAME = "runtime.json"
SANDBOX_API_KEY = "sk_test_payments_sandbox"


class NothingRunningError(PaymentsError):
    """No embedded stack is running and the settings name no external service for a part that is needed."""


@dataclass(frozen=True)
class Endpoints:
    """Resolved addresses of every part; ``None`` where a part is neither configured nor running."""

    database_url: str | None
    sqs_endpoint_url: str | None
    s3_endpoint_url: str | None
    redis_url: str | None
    stripe_api_base: str | None
    stripe_api_key: str | None
    aws_region: str
    embedded_aws: bool
    ingest_url: str | None = None
    #: The runtime file consulted for parts the settings do not name (said when nothing is found).
    runtime_file: str | None = None

    def require(self, *parts: str) -> Endpoints:
        """Return self, or raise :class:`NothingRunningError` naming the first missing ``part``."""
        for part in parts:
            if part == "sqs" and not (self.sqs_endpoint_url or not self.embedded_aws):
                raise NothingRunningError(self._nothing("the SQS endpoint", "PAYMENTS_SQS_ENDPOINT_URL"))
            if part == "s3" and not (self.s3_endpoint_url or not self.embedded_aws):
                raise NothingRunningError(self._nothing("the S3 endpoint", "PAYMENTS_S3_ENDPOINT_URL"))
            if part == "database" and not self.database_url:
                raise NothingRunningError(self._nothing("the database", "PAYMENTS_DATABASE_URL"))
            if part == "redis" and not self.redis_url:
                raise NothingRunningError(self._nothing("Redis", "PAYMENTS_REDIS_URL"))
            if part == "stripe" and not self.stripe_api_base and not self.stripe_api_key:
                raise NothingRunningError(self._nothing("Stripe", "PAYMENTS_STRIPE_API_KEY"))
        return self

    def _nothing(self, what: str, env: str) -> str:
        return _nothing_running(what, env, self.runtime_file)


def _nothing_running(what: str, env: str, looked_at: str | None = None) -> str:
    where = f" (no live `payments run` wrote {looked_at}; set PAYMENTS_DATA_DIR to its data dir)" if looked_at else ""
    return f"{what} is not reachable: nothing is running{where} — start it with `payments run` — and {env} is not set."


def runtime_file(settings: Settings | None = None) -> Path:
    """The path of the runtime file under the data directory."""
    return (settings or get_settings()).data_dir / RUNTIME_FILE_NAME


def write_runtime(data: dict[str, Any], settings: Settings | None = None) -> Path:
    """Atomically write the runtime file (owner-readable only: it may hold a database URI)."""
    path = runtime_file(settings)
    ensure_private_dir(path.parent)
    return write_private(path, json.dumps({**data, "pid": os.getpid()}, indent=2))


def read_runtime(settings: Settings | None = None) -> dict[str, Any] | None:
    """The runtime file's content if a live `payments run` wrote it, else ``None``."""
    path = runtime_file(settings)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return data


def remove_runtime(settings: Settings | None = None) -> None:
    """Delete the runtime file if this process wrote it."""
    path = runtime_file(settings)
    data = None
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    if data.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_endpoints(settings: Settings | None = None) -> Endpoints:
    """Decide where each part lives: an explicit setting wins, else the running embedded stack, else None.

    Never starts anything.  Callers that need a part call :meth:`Endpoints.require`.
    """
    s = settings or get_settings()
    rt = read_runtime(s) or {}
    db_url = s.database.url.get_secret_value() if s.database.url else rt.get("database_url")
    # AWS: an explicit endpoint wins; real AWS is "configured" when the user set a region or credentials
    # explicitly; otherwise the embedded endpoint from the runtime file.
    local_aws = rt.get("local_aws_url")
    real_aws = _real_aws_configured(s)
    embedded_aws = not (s.sqs.endpoint_url or real_aws)
    sqs_url = s.sqs.endpoint_url or (local_aws if embedded_aws else None)
    s3_url = s.s3.endpoint_url or (local_aws if not (s.s3.endpoint_url or real_aws) else None)
    if s.stripe.api_key:
        stripe_key: str | None = s.stripe.api_key.get_secret_value()
        stripe_base = s.stripe.api_base
    else:
        stripe_key = SANDBOX_API_KEY if (s.stripe.api_base or rt.get("stripe_api_base")) else None
        stripe_base = s.stripe.api_base or rt.get("stripe_api_base")
    return Endpoints(
        database_url=db_url,
        sqs_endpoint_url=sqs_url,
        s3_endpoint_url=s3_url,
        redis_url=(s.redis.url.get_secret_value() if s.redis.url else None) or rt.get("redis_url"),
        stripe_api_base=stripe_base,
        stripe_api_key=stripe_key,
        aws_region=s.aws.region,
        embedded_aws=embedded_aws,
        ingest_url=rt.get("ingest_url"),
        runtime_file=str(runtime_file(s)),
    )


def _real_aws_configured(settings: Settings) -> bool:
    """Real AWS is chosen by setting ``PAYMENTS_AWS_REGION`` explicitly (environment or ``.env``)."""
    return "region" in settings.aws.model_fields_set


def effective_settings_view(settings: Settings | None = None) -> dict[str, Any]:
    """Settings with secrets masked plus the endpoint URLs actually in use (for `payments config`)."""
    s = settings or get_settings()
    view = s.masked()
    endpoints = asdict(resolve_endpoints(s))
    if endpoints.get("stripe_api_key"):
        endpoints["stripe_api_key"] = "**********"
    # Every URL in use (the database's, Redis's, …): userinfo masked.
    view["endpoints"] = mask_urls(endpoints)
    return view

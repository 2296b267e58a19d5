"""Settings: one frozen object built from flags and the environment, passed down explicitly.

Environment names are ``FRIENDSCRAPE_<FIELD>``; a few also accept the names the original
deployment used (``USERS_LIMIT``, ``MAX_THREADS``, ``BATCH_SIZE``, ``MAX_FRIENDS``).
Flags given on the command line win over the environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from friendscrape import checks, defaults, urlauth
from friendscrape.credentials import Credentials, parse_tokens
from friendscrape.errors import UsageError
from friendscrape.platforms import SOURCE_NAMES

LogFormat = Literal["json", "console", "auto"]

_HEARTBEATS_PER_TTL = 3  # an unset lease_heartbeat: a lease outlives two missed renewals

_STORE_CREDENTIALS = (
    "use sqlite:///PATH or bigquery://PROJECT/DATASET (BigQuery's credentials come from "
    "Google's application default credentials, never from the URL)"
)


def _env(name: str, *legacy: str) -> AliasChoices:
    """Read a field from ``FRIENDSCRAPE_<NAME>`` and any legacy names (keywords use the
    field name: ``populate_by_name``); a bare ``NAME`` such as ``STORE`` is not read."""
    return AliasChoices(f"FRIENDSCRAPE_{name.upper()}", *legacy)


class Settings(BaseSettings):
    """Everything a command can be told; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        allow_inf_nan=False,  # nan and inf are never a sane count, rate or duration
    )

    store: str = Field(
        "sqlite:///friendscrape.db",
        validation_alias=_env("store"),
        description="Where users and results live: sqlite:///PATH or bigquery://PROJECT/DATASET.",
    )
    source: str | None = Field(
        None,
        validation_alias=_env("source"),
        description=(
            "Which upstream to collect from: twitter-mobile, x-api, bluesky or mastodon. "
            "Recorded as the job's platform by users import; run uses the job's when not "
            "given, and refuses one that differs."
        ),
    )
    base_url: str | None = Field(
        None,
        validation_alias=_env("base_url"),
        description="Base URL of the upstream; defaults to the source's own.",
    )
    concurrency: int = Field(
        defaults.CONCURRENCY,
        ge=1,
        le=20000,
        validation_alias=_env("concurrency", "MAX_THREADS"),
        description="Users collected at once (in flight). Legacy name MAX_THREADS.",
    )
    rate_limit: float | None = Field(
        None,
        ge=0.01,  # slower would leave a run waiting minutes per request: a hang
        validation_alias=_env("rate_limit"),
        description="Requests per second to one host at most (unset: only the upstream's "
        "own limits, read from its headers, pace the run).",
    )
    host_concurrency: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("host_concurrency"),
        description="Requests in flight to one host at most (unset: --concurrency).",
    )
    adaptive: bool = Field(
        default=True,
        validation_alias=_env("adaptive"),
        description="Find each host's pace: grow concurrency while responses are healthy, "
        "cut it on 429s, 5xx, timeouts and climbing latency (never above the caps).",
    )
    learn_rate: bool = Field(
        default=True,
        validation_alias=_env("learn_rate"),
        description="Learn a request rate per host (and per token) from 429s that carry "
        "no quota headers, and pace to it (with adaptive on); given up by itself for a "
        "host whose 429s come at random, which can cost such a host some 5-15% of its "
        "pace on a short run while its 429s are told apart. false: pauses and adaptive "
        "concurrency alone.",
    )
    max_friends: int = Field(
        2000,
        ge=1,
        validation_alias=_env("max_friends", "MAX_FRIENDS"),
        description="Stop a user's list at this many names and mark it truncated. "
        "`partitions plan --balance pages` and `run --partition next` weigh a user's pages "
        "up to it: a count above it weighs max_friends / page size + 1.",
    )
    users_limit: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("users_limit", "USERS_LIMIT"),
        description="Collect at most this many users in this run (all when unset).",
    )
    retry_failed: bool = Field(
        default=False,
        validation_alias=_env("retry_failed"),
        description="Also collect users whose last result is failed.",
    )
    batch_size: int = Field(
        100,
        ge=1,
        le=10000,
        validation_alias=_env("batch_size", "BATCH_SIZE"),
        description="Rows saved per write (one transaction). Legacy name BATCH_SIZE.",
    )
    flush_interval: float = Field(
        2.0,
        ge=0.01,
        validation_alias=_env("flush_interval"),
        description="Seconds after which a partial chunk is saved anyway.",
    )
    queue_size: int = Field(
        500,
        ge=1,
        validation_alias=_env("queue_size"),
        description="Finished friend lists waiting for the writer; a full queue pauses fetchers.",
    )
    request_timeout: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("request_timeout"),
        description="Seconds allowed for one HTTP request, body included.",
    )
    connect_timeout: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("connect_timeout"),
        description="Seconds allowed to open a connection.",
    )
    fetch_attempts: int = Field(
        6,
        ge=1,
        validation_alias=_env("fetch_attempts"),
        description="Attempts per page on transient errors (connection, timeout, 5xx, 429).",
    )
    fetch_retry_deadline: float = Field(
        300.0,
        gt=0,
        validation_alias=_env("fetch_retry_deadline"),
        description="Seconds one page may spend retrying before its user is marked failed.",
    )
    retry_max_wait: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("retry_max_wait"),
        description="Longest single backoff wait between attempts, in seconds.",
    )
    retry_base_wait: float = Field(
        0.5,
        gt=0,
        validation_alias=_env("retry_base_wait"),
        description="First backoff wait in seconds; doubles each attempt, with jitter.",
    )
    max_page_bytes: int = Field(
        2_000_000,
        ge=1024,
        validation_alias=_env("max_page_bytes"),
        description="Largest response body accepted; bigger pages fail the user.",
    )
    max_pages: int = Field(
        1000,
        ge=1,
        validation_alias=_env("max_pages"),
        description="Most pages walked for one user, a guard against endless pagination.",
    )
    breaker_users: int = Field(
        20,
        ge=0,
        validation_alias=_env("breaker_users"),
        description="Circuit breaker: this many users in a row failing the same upstream-wide "
        "way (cannot connect, DNS, TLS, a generic 4xx, a login wall) end the run with exit 5, "
        "those users left pending; 0 turns it off.",
    )
    store_attempts: int = Field(
        5,
        ge=1,
        validation_alias=_env("store_attempts"),
        description="Attempts per chunk write on transient store errors.",
    )
    store_retry_deadline: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("store_retry_deadline"),
        description="Seconds one chunk may spend retrying before the run exits non-zero.",
    )
    write_timeout: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("write_timeout"),
        description="Seconds one chunk write may take before it counts as failed.",
    )
    stall_timeout: float = Field(
        180.0,
        gt=0,
        validation_alias=_env("stall_timeout"),
        description="Exit non-zero when results wait this long with no successful write.",
    )
    grace_period: float = Field(
        15.0,
        ge=0,
        validation_alias=_env("grace_period"),
        description="On SIGTERM/SIGINT, seconds in-flight users get to finish before the flush.",
    )
    stop_timeout: float = Field(
        25.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias=_env("stop_timeout"),
        description="On SIGTERM/SIGINT, seconds the whole stop may take (grace period and "
        "final flush): past it the process exits 3, unsaved users left pending.",
    )
    max_pause: float = Field(
        900.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias=_env("max_pause"),
        description="Longest pause an upstream may ask for (Retry-After, a rate-limit reset), "
        "in seconds; a longer one ends the run with exit code 4, its unfinished users left "
        "pending for a later run.",
    )
    lease_ttl: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias=_env("lease_ttl"),
        description="Seconds a run's hold on its partition lasts without a heartbeat; a "
        "second run of a held partition exits with code 6, and takes the partition over once "
        "the holder's lease has lapsed this long (at once when the holder was a process of "
        "the same host that no longer exists).",
    )
    lease_heartbeat: float = Field(
        20.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias=_env("lease_heartbeat"),
        description="Seconds between a run's renewals of its partition lease (and its run "
        "samples); must be shorter than lease_ttl. Unset: a third of lease_ttl (20 at its "
        "default), so a lease outlives two missed renewals.",
    )
    progress_interval: float = Field(
        30.0,
        ge=0.01,
        validation_alias=_env("progress_interval"),
        description="Seconds between progress events.",
    )
    log_format: LogFormat = Field(
        "auto",
        validation_alias=_env("log_format"),
        description="json (one event per line), console (for people), or auto (console on a TTY).",
    )
    log_level: str = Field(
        "info",
        validation_alias=_env("log_level"),
        description="Lowest level logged: debug, info, warning, error.",
    )
    user_agent: str = Field(
        "friendscrape/0.1 (+research; follow-graph collection)",
        validation_alias=_env("user_agent"),
        description="User-Agent header sent upstream.",
    )
    bigquery_endpoint: str | None = Field(
        None,
        validation_alias=_env("bigquery_endpoint"),
        description="Send BigQuery calls to this endpoint instead of Google's (an emulator).",
    )
    bigquery_write_api: Literal["storage", "insert_all"] = Field(
        "storage",
        validation_alias=_env("bigquery_write_api"),
        description="How BigQuery results are written: storage (the Storage Write API's "
        "default stream; half the price of streaming inserts) or insert_all (streaming "
        "inserts, also the fallback when the Storage Write API is refused).",
    )
    bigquery_grpc_endpoint: str | None = Field(
        None,
        validation_alias=_env("bigquery_grpc_endpoint"),
        description="HOST:PORT of an emulator's gRPC server for the Storage Write API "
        "(plain text, no credentials); unset: Google's.",
    )
    _base_url_credentials: tuple[str, urlauth.UrlCredentials] | None = PrivateAttr(None)
    """The base URL as kept and the credentials taken out of it (see base_url_credentials)."""

    x_bearer_tokens: SecretStr | None = Field(
        None,
        validation_alias=_env("x_bearer_tokens"),
        description="Comma-separated X API bearer tokens; several form a pool. Never logged.",
    )

    @model_validator(mode="after")
    def _heartbeat_inside_ttl(self) -> Settings:
        if "lease_heartbeat" not in self.model_fields_set:
            # Follows the ttl: a longer lease is renewed (and sampled) less often.
            object.__setattr__(self, "lease_heartbeat", self.lease_ttl / _HEARTBEATS_PER_TTL)
        if self.lease_heartbeat >= self.lease_ttl:
            msg = (
                f"lease_heartbeat ({self.lease_heartbeat:g}s) must be shorter than lease_ttl "
                f"({self.lease_ttl:g}s), or a live run would lose its partition"
            )
            raise ValueError(msg)
        return self

    @field_validator("*")
    @classmethod
    def _safe_everywhere(cls, value: object) -> object:
        # Every setting, including ones added later: finite bounded numbers, and no control
        # characters in text (it ends up in headers, URLs and log lines).
        checks.bounded_number(value)
        if isinstance(value, SecretStr):
            checks.no_control(value.get_secret_value())
        elif isinstance(value, str):
            checks.no_control(value)
        return value

    @field_validator("base_url", "bigquery_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else checks.http_url(value)

    @field_validator("bigquery_endpoint")
    @classmethod
    def _endpoint_without_credentials(cls, value: str | None) -> str | None:
        if value is not None:
            checks.no_credentials(value, "a BigQuery emulator takes none")
        return value

    @field_validator("store")
    @classmethod
    def _store_without_credentials(cls, value: str) -> str:
        checks.no_credentials(value, _STORE_CREDENTIALS)
        return value

    @model_validator(mode="after")
    def _credentials_out_of_base_url(self) -> Settings:
        # Taken out at the edge: the URL every later reader sees (sources, logs, samples,
        # error cells) carries no password; the HTTP client sends them as Basic auth.
        if self.base_url is not None:
            clean, credentials = urlauth.split_credentials(self.base_url)
            if credentials is not None:
                object.__setattr__(self, "base_url", clean)  # frozen: only here, once
                self._base_url_credentials = (clean, credentials)
        return self

    @property
    def base_url_credentials(self) -> urlauth.UrlCredentials | None:
        """The user name and password written into the base URL, or None (also when a
        copy of these settings names another base URL)."""
        taken = self._base_url_credentials
        return taken[1] if taken is not None and taken[0] == self.base_url else None

    def credentials(self) -> Credentials:
        """The secrets these settings hold, parsed here and nowhere else: the bearer
        tokens, every other secret setting, and the base URL's user name and password."""
        named = tuple(
            (name, value.get_secret_value())
            for name in type(self).model_fields
            if name != "x_bearer_tokens"
            and isinstance(value := getattr(self, name), SecretStr)
            and value.get_secret_value()
        )
        in_url = self.base_url_credentials
        return Credentials(
            tokens=tuple(parse_tokens(self.x_bearer_tokens)),
            named=named,
            base_url=in_url.secrets() if in_url is not None else (),
        )

    @field_validator("bigquery_grpc_endpoint")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        checks.no_credentials(value, "an emulator's gRPC server takes none")
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            msg = f"expected HOST:PORT, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("x_bearer_tokens")
    @classmethod
    def _header_safe_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            checks.bearer_tokens(value.get_secret_value())
        return value

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        if value is not None and value not in SOURCE_NAMES:
            msg = f"unknown source {value!r}; choose one of {', '.join(SOURCE_NAMES)}"
            raise ValueError(msg)
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error"}:
            msg = f"unknown log level {value!r}"
            raise ValueError(msg)
        return level


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment and the given overrides (None means unset)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        rule = number_rule(_field_named(str(first["loc"][0]))) if first["loc"] else None
        # One rule, said one way, whichever check refused the number (the field's own
        # bound or the bounds every number shares): the message argtypes.setting gives.
        why = rule.refusal(str(first["input"])) if rule is not None else None
        # pydantic prefixes a validator's own words with "Value error, ": they are ours.
        said = str(first["msg"]).removeprefix("Value error, ")
        msg = f"invalid setting {where}: {why or said}"
        raise UsageError(msg) from None


@dataclass(frozen=True, slots=True)
class NumberRule:
    """What a number setting accepts: its field's bounds within the shared ones (checks)."""

    low: float
    high: float
    whole: bool
    zero: bool
    """0 is accepted too, below ``low`` (a float setting of ``ge=0``: off or a duration)."""

    def accepts(self, value: float) -> bool:
        """Whether ``value`` is within the rule."""
        return (self.zero and value == 0) or self.low <= value <= self.high

    def refusal(self, text: str) -> str | None:
        """Why ``text`` is refused, with the rule (``'0' is out of range (...)``); None
        when the rule accepts it."""
        try:
            number = int(text) if self.whole else float(text)
        except ValueError:
            return f"{text[:40]!r} is not {'a whole number' if self.whole else 'a number'} ({self})"
        if math.isfinite(number) and self.accepts(number):
            return None
        return f"{text[:40]!r} is out of range ({self})"

    def __str__(self) -> str:
        if self.whole:
            return f"a whole number from {self.low:.0f} to {self.high:.0f}"
        return f"{'0 or ' if self.zero else ''}a number from {self.low:g} to {self.high:g}"


def _field_named(key: str) -> str:
    """The field a validation error's location names (a field name or an env name)."""
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = alias.choices if isinstance(alias, AliasChoices) else []
        if key.lower() in {name, *(str(n).lower() for n in names)}:
            return name
    return key


def number_rule(name: str) -> NumberRule | None:
    """The rule of the number setting ``name`` (None for other settings)."""
    field = Settings.model_fields.get(name)
    if field is None:
        return None
    kinds = set(get_args(field.annotation) or (field.annotation,)) - {type(None)}
    if kinds not in ({int}, {float}):
        return None
    whole = kinds == {int}
    bounds: dict[str, float] = {}
    for item in field.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(item, key, None) is not None:
                bounds[key] = float(getattr(item, key))
    if whole:
        low = bounds.get("ge", bounds.get("gt", -checks.MAX_INT - 1) + 1)
        high = min(bounds.get("le", bounds.get("lt", checks.MAX_INT + 1) - 1), checks.MAX_INT)
        return NumberRule(low=int(low), high=int(high), whole=True, zero=False)
    floor = bounds.get("ge", bounds.get("gt", 0.0))
    zero = bounds.get("ge") == 0.0
    low = max(floor, checks.MIN_POSITIVE_FLOAT)
    high = min(bounds.get("le", checks.MAX_FLOAT), checks.MAX_FLOAT)
    return NumberRule(low=low, high=high, whole=False, zero=zero)

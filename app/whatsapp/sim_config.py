"""Configuration of the Cloud API simulator, changeable at run time through POST /_sim/config.

Configs are frozen: an update builds a new object and swaps it in, so a request always sees one consistent config.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

REVIEW_OUTCOMES = ("APPROVED", "REJECTED")
OUTCOME_MODES = ("sync", "async")
SECRETS = ("access_token", "app_secret")
DEFAULT_THROUGHPUT = 80.0  # messages per second per business phone number: Meta's default for Cloud API numbers
EVERYONE = "*"


class ConfigError(ValueError):
    """A config update names an unknown setting or gives a value of the wrong kind."""


@dataclass(frozen=True)
class WebhookBehaviour:
    enabled: bool = True
    sent_delay_ms: float = 20.0
    delivered_delay_ms: float = 60.0
    read_delay_ms: float = 150.0
    failed_delay_ms: float = 20.0
    delivered_probability: float = 0.95
    read_probability: float = 0.6
    batch_size: int = 1  # statuses per POST
    batch_window_ms: float = 20.0  # with batches, how long a due status waits for others to share its POST
    duplicate_probability: float = 0.0  # chance that a status is delivered a second time
    shuffle: bool = False  # draw each status's delay at random, so e.g. "read" may arrive before "delivered"
    max_attempts: int = 3
    retry_delay_ms: float = 200.0
    timeout_s: float = 5.0


@dataclass(frozen=True)
class RecipientOutcome:
    code: int | None = None  # error code to answer with; None accepts the message
    mode: str | None = None  # "sync" (HTTP error) or "async" (accepted, then a failed status); None: the code's usual
    latency_ms: float | None = None


@dataclass(frozen=True)
class SimulatorConfig:
    access_token: str = "sim-access-token"
    app_secret: str = "sim-app-secret"
    phone_number_id: str = "106540352242922"
    waba_id: str = "102290129340398"
    display_phone_number: str = "15550783881"  # digits, as webhook metadata carries it
    verified_name: str = "Broadcaster Demo"  # the business name Meta approved for the number
    webhook_url: str | None = None
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rates: Mapping[int, float] = field(default_factory=dict)  # code -> probability per send
    fixed_outcomes: Mapping[str, RecipientOutcome] = field(default_factory=dict)  # recipient digits -> outcome
    max_messages_per_second: float = DEFAULT_THROUGHPUT  # 0: unlimited; above it sends get 130429 with HTTP 429
    retry_after_header: bool = True  # send Retry-After with 429s (Meta does not document one)
    # Customers treated as having written within the last 24 hours, besides those who wrote through /_sim/inbound;
    # "*" opens the customer service window for everyone.
    wrote_recently: tuple[str, ...] = ()
    template_approval_delay_ms: float = 1000.0
    template_review_outcome: str = "APPROVED"
    webhooks: WebhookBehaviour = field(default_factory=WebhookBehaviour)


def digits(phone: str) -> str:
    """The wa_id form of a phone number: digits only."""
    return re.sub(r"\D", "", phone)


def update_config(config: SimulatorConfig, changes: Mapping[str, Any]) -> SimulatorConfig:
    """A copy of `config` with `changes` (JSON from /_sim/config) applied; raises ConfigError naming the field."""
    if not isinstance(changes, Mapping):
        raise ConfigError("The config update must be a JSON object.")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        values[name] = _config_value(config, name, value)
    return dataclasses.replace(config, **values)


def phone_number_node(config: SimulatorConfig, fields: str | None) -> dict[str, Any]:
    """GET /{phone-number-id} as Graph answers it: the asked-for fields (a default set without `fields`), the
    number written "+1 555-078-3881" as Meta shows it there (webhook metadata has the bare digits)."""
    try:
        number = phonenumbers.parse("+" + digits(config.display_phone_number))
        shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        shown = config.display_phone_number
    node = {"verified_name": config.verified_name, "code_verification_status": "VERIFIED",
            "display_phone_number": shown, "quality_rating": "GREEN", "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"}, "id": config.phone_number_id}
    wanted = [name.strip() for name in (fields or "").split(",") if name.strip()]
    if not wanted:
        return node
    return {name: node[name] for name in wanted if name in node} | {"id": config.phone_number_id}


def config_to_json(config: SimulatorConfig) -> dict[str, Any]:
    """The config as the control API shows it: the access token and app secret masked, never echoed."""
    data = dataclasses.asdict(config)
    for name in SECRETS:
        data[name] = _masked(data[name])
    data["error_rates"] = {str(code): rate for code, rate in config.error_rates.items()}
    data["fixed_outcomes"] = {number: dataclasses.asdict(outcome) for number, outcome in config.fixed_outcomes.items()}
    return data


def _masked(secret: str) -> str:
    """Enough to tell which secret is set (its last 4 characters, when it is long enough to spare them)."""
    return "…" + secret[-4:] if len(secret) >= 12 else "…"


def _config_value(config: SimulatorConfig, name: str, value: Any) -> Any:
    if name == "webhooks":
        return _updated_dataclass(config.webhooks, value, "webhooks")
    if name == "error_rates":
        return _error_rates(value)
    if name == "fixed_outcomes":
        return _fixed_outcomes(value)
    if name == "wrote_recently":
        return numbers_or_everyone(value)
    if name == "template_review_outcome" and value not in REVIEW_OUTCOMES:
        raise ConfigError(f"template_review_outcome must be one of {REVIEW_OUTCOMES}.")
    return _coerce(config, name, value, "")


def _updated_dataclass(current: Any, changes: Any, prefix: str) -> Any:
    if not isinstance(changes, Mapping):
        raise ConfigError(f"{prefix} must be a JSON object.")
    values = {name: _coerce(current, name, value, f"{prefix}.") for name, value in changes.items()}
    return dataclasses.replace(current, **values)


def _coerce(owner: Any, name: str, value: Any, prefix: str) -> Any:
    kinds = {f.name: f.type for f in dataclasses.fields(owner)}
    if name not in kinds:
        raise ConfigError(f"Unknown setting {prefix}{name}.")
    kind = str(kinds[name])
    if value is None and "None" in kind:
        return None
    try:
        coerced = _COERCERS[kind.replace(" | None", "")](value)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix}{name} has an invalid value {value!r}.") from exc
    _check_range(f"{prefix}{name}", coerced)
    return coerced


def _check_range(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if value < 0:
        raise ConfigError(f"{name} must not be negative.")
    if name.endswith("probability") and value > 1:
        raise ConfigError(f"{name} must be between 0 and 1.")
    if name in ("webhooks.batch_size", "webhooks.max_attempts") and value < 1:
        raise ConfigError(f"{name} must be at least 1.")


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected a whole number")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


_COERCERS = {"bool": _boolean, "float": _number, "int": _integer, "str": _text}


def _error_rates(value: Any) -> dict[int, float]:
    if not isinstance(value, Mapping):
        raise ConfigError("error_rates must map error codes to probabilities.")
    rates: dict[int, float] = {}
    for code, rate in value.items():
        try:
            rates[int(code)] = _number(rate)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"error_rates[{code!r}] must be a probability for a numeric code.") from exc
        if not 0 <= rates[int(code)] <= 1:
            raise ConfigError(f"error_rates[{code!r}] must be between 0 and 1.")
    return rates


def numbers_or_everyone(value: Any) -> tuple[str, ...]:
    """Phone numbers as wa_ids, or ("*",) for everyone; raises ConfigError otherwise."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(number, str) for number in value):
        raise ConfigError('wrote_recently must be a list of phone numbers, or ["*"] for everyone.')
    if EVERYONE in (number.strip() for number in value):
        return (EVERYONE,)
    numbers = tuple(dict.fromkeys(digits(number) for number in value))
    if not all(numbers):
        raise ConfigError("wrote_recently must hold phone numbers.")
    return numbers


def _fixed_outcomes(value: Any) -> dict[str, RecipientOutcome]:
    if not isinstance(value, Mapping):
        raise ConfigError("fixed_outcomes must map recipient numbers to an error code or an outcome object.")
    return {digits(str(number)): _outcome(str(number), spec) for number, spec in value.items()}


def _outcome(number: str, spec: Any) -> RecipientOutcome:
    if isinstance(spec, int) and not isinstance(spec, bool):
        return RecipientOutcome(code=spec)
    outcome = _updated_dataclass(RecipientOutcome(), spec, f"fixed_outcomes[{number}]")
    if outcome.mode is not None and outcome.mode not in OUTCOME_MODES:
        raise ConfigError(f"fixed_outcomes[{number}].mode must be one of {OUTCOME_MODES}.")
    return outcome

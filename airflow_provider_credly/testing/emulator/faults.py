"""Deterministic fault injection: rate limiting, 5xx, dropped connections, malformed bodies, latency, and
odd-but-valid badge values."""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from email.utils import formatdate
from typing import Any

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ERROR_STATUSES = (500, 502, 503)
AFTER_MODES = ("alternate", "error", "drop")
MALFORMED_KINDS = ("truncated", "empty_object", "html")
MALFORMED_MODES = ("rotate", *MALFORMED_KINDS)
#: the value shapes of an ``odd_values_rate`` record (see ``render.odd_badge``): its timestamps without an
#: offset, with a space for the ``T``, with 6 fractional digits, with ``+00:00``, or as the same instant at
#: ``+02:00`` / ``-09:30``; its ``issuer_earner_id`` as a JSON number; its names with characters that stress
#: ``COPY`` (backslash, tab, CR/LF, ``\N``, ``\.``, non-BMP letters), sent as UTF-8 or ``\u`` escapes
ODD_VALUE_KINDS = (
    "naive",
    "space",
    "micros",
    "utc_offset",
    "plus_two",
    "minus_nine_thirty",
    "number",
    "stress",
    "escaped",
)
_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Maintenance</title></head>"
    "<body><h1>We'll be right back</h1><p>The service is under maintenance.</p></body></html>"
)


@dataclass
class FaultConfig:
    """Fault knobs. Rates are fractions in ``[0, 1]``; ``fail_paths`` is a regex on the request path."""

    rate_limit: float | None = None
    """Requests per second allowed across all clients (token bucket); excess gets 429."""
    rate_limit_burst: float | None = None
    """Bucket capacity (default: ``max(1, rate_limit)``)."""
    retry_after_http_date: bool = False
    """Send ``Retry-After`` as an HTTP-date instead of integer seconds."""
    error_rate: float = 0.0
    """Fraction answered 500/502/503 (rotating) before doing any work."""
    error_after_rate: float = 0.0
    """Fraction of successful mutating requests whose effect is applied but whose response is lost."""
    error_after_mode: str = "alternate"
    """How the response is lost: ``error`` (500), ``drop`` (connection closed) or ``alternate``."""
    error_after_refusals: bool = False
    """``error_after_rate`` also loses 4xx answers of mutating requests (the server decided, e.g. refused a
    duplicate, then the answer was lost)."""
    drop_rate: float = 0.0
    """Fraction of requests whose connection is closed without a response, before doing any work."""
    malformed_rate: float = 0.0
    """Fraction of successful responses (any method: a write's effect is applied) answered 2xx with an
    unusable body instead."""
    malformed_mode: str = "rotate"
    """The unusable body: ``truncated`` (the JSON cut in half, with the Content-Length of the cut body),
    ``empty_object`` (``{}``), ``html`` (an HTML page, ``text/html``) or ``rotate`` (each in turn)."""
    odd_values_rate: float = 0.0
    """Fraction of badge records (every render: ``minimal`` and ``default`` cursor pages, full badges, events,
    employee data) whose values take shapes a real server may send and a client must store without loss:
    timestamps without an offset, with a space separator, 6 fractional digits or another offset (the same
    instant), ``issuer_earner_id`` as a JSON number, names with backslashes, tabs, newlines and non-BMP
    characters (``ODD_VALUE_KINDS``). Chosen by a hash of ``(seed, record)``, not by the request RNG: a
    record renders the same on every request and page. The Canvas emulator ignores it."""
    latency_ms: float = 0.0
    """Added latency per request."""
    fail_paths: str | None = None
    """Only requests whose path matches this regex (``re.search``) get faults."""
    error_methods: str | None = None
    """Comma-separated methods (``GET,PUT``) that ``error_rate`` and ``drop_rate`` apply to (default all)."""
    max_faults: int | None = None
    """At most this many faults (5xx, drops, lost or malformed answers; not 429s) from the last
    ``configure``, then none."""
    seed: int = 0
    """Seed of the fault RNG (same seed + same request sequence = same faults)."""


FAULT_NAMES = frozenset(f.name for f in fields(FaultConfig))


@dataclass(frozen=True)
class OddValues:
    """Which badge records ``odd_values_rate`` renders with odd values, and how (one of
    ``ODD_VALUE_KINDS``): a hash of ``(seed, record index)``, the same on every request."""

    rate: float
    seed: int

    def kind(self, r: int) -> str | None:
        """The odd shape of record ``r``, or ``None`` (rendered as usual)."""
        digest = hashlib.blake2b(f"{self.seed}:{r}".encode(), digest_size=16, person=b"odd-values").digest()
        if int.from_bytes(digest[:8]) / 2.0**64 >= self.rate:
            return None
        return ODD_VALUE_KINDS[int.from_bytes(digest[8:]) % len(ODD_VALUE_KINDS)]


@dataclass
class Decision:
    """What to do with one request."""

    latency_s: float = 0.0
    action: str | None = None
    """``rate_limited``, ``error`` or ``drop`` (before any work), else ``None``."""
    status: int = 0
    retry_after: str | None = None
    after: str | None = None
    """For mutating requests: ``error`` or ``drop`` after the effect is applied."""
    after_refusals: bool = False
    """``after`` also applies to a 4xx answer (see :meth:`loses`)."""
    malformed: str | None = None
    """One of ``MALFORMED_KINDS``: a 2xx answer's body is replaced (see :func:`malformed_body`)."""

    def loses(self, status: int) -> bool:
        """Whether the answer with ``status`` is lost after the effect (``after``: 2xx, and 4xx refusals
        with ``after_refusals``)."""
        return self.after is not None and (
            200 <= status < 300 or (self.after_refusals and 400 <= status < 500 and status != 429)
        )


class FaultInjector:
    """Thread-safe holder of a ``FaultConfig`` that decides the fate of each request."""

    def __init__(self, **config: Any) -> None:
        self._lock = threading.Lock()
        self.config = FaultConfig()
        #: the ``odd_values_rate`` choice of records (``None``: no odd values), handed to the watchers
        self.odd_values: OddValues | None = None
        self._odd_watchers: list[Callable[[OddValues | None], None]] = []
        self.configure(**config)

    def watch_odd_values(self, callback: Callable[[OddValues | None], None]) -> None:
        """Call ``callback(odd_values)`` now and whenever ``configure`` changes them (the server hands them to
        its state, which the badge renders read)."""
        with self._lock:
            self._odd_watchers.append(callback)
            callback(self.odd_values)

    def configure(self, **changes: Any) -> None:
        """Update some knobs (unknown names raise ``TypeError``, bad values ``ValueError``)."""
        unknown = set(changes) - FAULT_NAMES
        if unknown:
            raise TypeError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
        with self._lock:
            merged = FaultConfig(**{**asdict(self.config), **changes})
            _validate(merged)
            reseed = "seed" in changes or not hasattr(self, "_rng")
            self.config = merged
            self._pattern = re.compile(merged.fail_paths) if merged.fail_paths else None
            if reseed:
                self._rng = random.Random(merged.seed)
                self._rotation = 0
                self._after_rotation = 0
                self._malformed_rotation = 0
            self._tokens = self._capacity()
            self._last = time.monotonic()
            self._injected = 0
            methods = merged.error_methods
            self._error_methods = {m.strip().upper() for m in methods.split(",")} if methods else None
            rate = float(merged.odd_values_rate)
            odd = OddValues(rate, int(merged.seed)) if rate else None
            if odd != self.odd_values:
                self.odd_values = odd
                for callback in self._odd_watchers:
                    callback(odd)

    def clear(self) -> None:
        """Back to no faults (keeps the seed)."""
        self.configure(**{**asdict(FaultConfig()), "seed": self.config.seed})

    def as_dict(self) -> dict[str, Any]:
        """Current knobs."""
        with self._lock:
            return asdict(self.config)

    def _capacity(self) -> float:
        cfg = self.config
        if not cfg.rate_limit:
            return 0.0
        return float(cfg.rate_limit_burst or max(1.0, cfg.rate_limit))

    def decide(self, method: str, path: str) -> Decision:
        """Roll the dice for one request."""
        with self._lock:
            cfg = self.config
            if self._pattern is not None and not self._pattern.search(path):
                return Decision()
            decision = Decision(latency_s=cfg.latency_ms / 1000.0)
            if cfg.max_faults is not None and self._injected >= cfg.max_faults:
                return decision
            before_work = self._error_methods is None or method.upper() in self._error_methods
            if cfg.rate_limit:
                wait = self._take_token(cfg.rate_limit)
                if wait is not None:
                    decision.action, decision.status = "rate_limited", 429
                    decision.retry_after = _retry_after(wait, cfg.retry_after_http_date)
                    return decision
            if before_work and cfg.error_rate and self._rng.random() < cfg.error_rate:
                decision.action, decision.status = "error", ERROR_STATUSES[self._rotation % 3]
                self._rotation += 1
                self._injected += 1
                return decision
            if before_work and cfg.drop_rate and self._rng.random() < cfg.drop_rate:
                decision.action = "drop"
                self._injected += 1
                return decision
            if (
                method in MUTATING_METHODS
                and cfg.error_after_rate
                and self._rng.random() < cfg.error_after_rate
            ):
                if cfg.error_after_mode == "alternate":
                    decision.after = ("error", "drop")[self._after_rotation % 2]
                    self._after_rotation += 1
                else:
                    decision.after = cfg.error_after_mode
                decision.after_refusals = cfg.error_after_refusals
            if not decision.after and cfg.malformed_rate and self._rng.random() < cfg.malformed_rate:
                if cfg.malformed_mode == "rotate":
                    decision.malformed = MALFORMED_KINDS[self._malformed_rotation % len(MALFORMED_KINDS)]
                    self._malformed_rotation += 1
                else:
                    decision.malformed = cfg.malformed_mode
            if decision.after or decision.malformed:
                self._injected += 1
            return decision

    def _take_token(self, rate: float) -> float | None:
        now = time.monotonic()
        self._tokens = min(self._capacity(), self._tokens + (now - self._last) * rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / rate


def _retry_after(wait_s: float, http_date: bool) -> str:
    seconds = max(1, math.ceil(wait_s))
    if http_date:
        return formatdate(time.time() + seconds, usegmt=True)
    return str(seconds)


def malformed_body(kind: str, body: bytes) -> tuple[bytes, str]:
    """The body and Content-Type sent instead of ``body`` for a ``malformed`` decision.

    ``truncated`` keeps the first half of the JSON text: the Content-Length then matches what is sent, so
    the client reads a complete HTTP message whose JSON ends mid-document.
    """
    if kind == "truncated":
        return body[: max(1, len(body) // 2)], "application/json; charset=utf-8"
    if kind == "empty_object":
        return b"{}", "application/json; charset=utf-8"
    if kind == "html":
        return _HTML_PAGE.encode(), "text/html; charset=utf-8"
    raise ValueError(f"unknown malformed body kind {kind!r}")


def _validate(cfg: FaultConfig) -> None:
    for name in ("error_rate", "error_after_rate", "drop_rate", "malformed_rate", "odd_values_rate"):
        value = getattr(cfg, name)
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {value!r}")
    if cfg.rate_limit is not None and cfg.rate_limit < 0:
        raise ValueError("rate_limit must be positive")
    if cfg.latency_ms < 0:
        raise ValueError("latency_ms must be >= 0")
    if cfg.max_faults is not None and cfg.max_faults < 0:
        raise ValueError("max_faults must be >= 0")
    if cfg.error_after_mode not in AFTER_MODES:
        raise ValueError(f"error_after_mode must be one of {AFTER_MODES}")
    if cfg.malformed_mode not in MALFORMED_MODES:
        raise ValueError(f"malformed_mode must be one of {MALFORMED_MODES}")
    if cfg.fail_paths:
        re.compile(cfg.fail_paths)

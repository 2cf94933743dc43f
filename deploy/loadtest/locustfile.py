r"""Locust load that replays a trace's daily shape, compressed, against an OpenAI-compatible server.

The trace is a `timestamp,value` CSV (unix seconds or ISO 8601; default: the bundled NYC-taxi excerpt).
`--days` trace days, starting at `--first-day`, are replayed in `--day-minutes` wall-clock minutes each;
the number of users follows the trace, `--peak-users` at the largest value of the replayed days (at
least `--min-users`).
Each user POSTs `/v1/completions` once every `--pace` seconds, or again at once when an answer took
longer: with a pace at most the server's service time every user is always in flight, so requests in
flight (vLLM's running + waiting) follow the users; with a longer pace they follow users x time in
service / pace, and grow as the server queues. Each request asks `--model` for `--max-tokens` tokens.

    locust -f deploy/loadtest/locustfile.py --headless --host http://127.0.0.1:8000 \
        --day-minutes 10 --days 2 --peak-users 40

Every option also reads an environment variable (`--day-minutes` from LOCUST_DAY_MINUTES, ...). The test
stops by itself after the replayed days. Self-contained (Locust and the standard library), so it runs in
Locust's own image (deploy/loadtest/kubernetes/locust-job.yaml).
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_right
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, constant_pacing, events, task

DAY_S = 86400.0
_HERE = Path(__file__).resolve()
BUNDLED_TRACE = (
    _HERE.parents[2] / "scaler" / "traces" / "nyc_taxi_10d.csv"
    if len(_HERE.parents) > 2
    else _HERE.with_name("nyc_taxi_10d.csv")  # copied to the top of a file system: /locustfile.py
)
"""The default `--trace`: the bundled one when this file is in a checkout (deploy/loadtest/)."""
TICK_S = 1.0
"""How often Locust asks the shape for a user count (its own shape loop sleeps one second)."""


class TraceError(ValueError):
    """The trace file cannot be replayed; the message says where and why."""


class Trace:
    """A trace's points, sorted by time, with linear interpolation between them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.at_s: list[float] = []
        self.values: list[float] = []
        try:
            with path.open(newline="") as handle:
                rows = list(csv.reader(handle))
        except OSError as exc:
            raise TraceError(f"cannot read it: {exc.strerror or exc}") from None
        for number, row in enumerate(rows, start=1):
            if not row or (number == 1 and not _is_number(row[-1])):
                continue  # blank line or a header
            if len(row) < 2:
                raise TraceError(f"line {number}: expected `timestamp,value`, got {','.join(row)!r}")
            self.at_s.append(_timestamp_s(row[0], number))
            self.values.append(_value(row[1], number))
        if len(self.at_s) < 2:
            raise TraceError("expected at least two `timestamp,value` rows")
        order = sorted(range(len(self.at_s)), key=self.at_s.__getitem__)
        self.at_s = [self.at_s[i] for i in order]
        self.values = [self.values[i] for i in order]

    @property
    def days(self) -> float:
        return (self.at_s[-1] - self.at_s[0]) / DAY_S

    def peak(self, start_s: float, end_s: float) -> float:
        """The largest value in [start_s, end_s], interpolated at both ends."""
        inside = [v for t, v in zip(self.at_s, self.values, strict=True) if start_s <= t <= end_s]
        return max([self.level(start_s), self.level(end_s), *inside])

    def level(self, at_s: float) -> float:
        """The value at `at_s` (trace time), interpolated; the last value after the end."""
        i = bisect_right(self.at_s, at_s)
        if i == 0:
            return self.values[0]
        if i == len(self.at_s):
            return self.values[-1]
        t0, t1 = self.at_s[i - 1], self.at_s[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (at_s - t0) / (t1 - t0)


class Plan:
    """The compressed replay: users at each second of the test."""

    def __init__(self, options: Any) -> None:
        try:
            self.trace = Trace(Path(options.trace))
        except TraceError as exc:
            raise ValueError(f"--trace {options.trace}: {exc}") from None
        checks = [
            ("--day-minutes", options.day_minutes, options.day_minutes > 0, "a number of minutes > 0"),
            ("--days", options.days, options.days > 0, "a number of days > 0"),
            ("--first-day", options.first_day, options.first_day >= 0, "a whole number >= 0"),
            ("--peak-users", options.peak_users, options.peak_users >= 1, "a whole number >= 1"),
            (
                "--min-users",
                options.min_users,
                0 <= options.min_users <= options.peak_users,
                "0 to --peak-users",
            ),
            ("--pace", options.pace, options.pace >= 0, "seconds >= 0"),
            ("--max-tokens", options.max_tokens, options.max_tokens >= 1, "a whole number >= 1"),
        ]
        for flag, value, ok, expected in checks:
            if not ok:
                raise ValueError(f"{flag} {value:g}: expected {expected}")
        if options.first_day + options.days > self.trace.days + 1e-9:
            raise ValueError(
                f"--first-day {options.first_day} --days {options.days:g}: the trace {self.trace.path} "
                f"spans {self.trace.days:.2f} days"
            )
        self.start_s = self.trace.at_s[0] + options.first_day * DAY_S
        self.speed = DAY_S / (options.day_minutes * 60.0)
        """Trace seconds per wall-clock second."""
        self.duration_s = options.days * options.day_minutes * 60.0
        self.peak = self.trace.peak(self.start_s, self.start_s + options.days * DAY_S)
        if self.peak <= 0:
            raise ValueError(
                f"--trace {options.trace}: every value of the replayed days is <= 0; there is no shape"
            )
        self.peak_users = options.peak_users
        self.min_users = options.min_users

    def users(self, elapsed_s: float) -> int | None:
        """Users `elapsed_s` into the test; None once the replayed days are over."""
        if elapsed_s >= self.duration_s:
            return None
        level = self.trace.level(self.start_s + elapsed_s * self.speed)
        return max(self.min_users, round(self.peak_users * max(level, 0.0) / self.peak))


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    def option(name: str, kind: type, default: object, text: str) -> None:
        env = "LOCUST_" + name.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(name, type=kind, default=default, env_var=env, help=text)

    option("--trace", str, str(BUNDLED_TRACE), "timestamp,value CSV whose shape is replayed")
    option("--day-minutes", float, 60.0, "wall-clock minutes one trace day is compressed into")
    option("--days", float, 1.0, "trace days to replay; the test stops after them")
    option("--first-day", int, 0, "trace day (from its first timestamp) the replay starts at")
    option("--peak-users", int, 20, "users at the largest value of the replayed days")
    option("--min-users", int, 1, "fewest users, however low the trace goes")
    option("--pace", float, 1.0, "seconds between the starts of one user's requests")
    option("--max-tokens", int, 16, "max_tokens of each completion request")
    option("--model", str, "mock-llm", "model of each completion request")


@events.init.add_listener
def _plan(environment: Any, **_: Any) -> None:
    """Read and check the trace and options once, before any user starts; one line on bad input."""
    options = environment.parsed_options
    if options is None:
        return
    try:
        environment.replay_plan = Plan(options)
    except ValueError as exc:
        raise SystemExit(f"locustfile: {exc}") from None


class CompletionUser(FastHttpUser):
    """Sends completion requests at a constant pace, checking each answer's shape."""

    def wait_time(self) -> float:
        pace = self.environment.parsed_options.pace
        return float(constant_pacing(pace)(self)) if pace > 0 else 0.0

    @task
    def complete(self) -> None:
        options = self.environment.parsed_options
        body = {"model": options.model, "prompt": "Say something. " * 8, "max_tokens": options.max_tokens}
        with self.client.post("/v1/completions", json=body, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            choices = (response.json() or {}).get("choices")
            if not isinstance(choices, list) or not choices:
                response.failure("the answer has no `choices`")


class TraceShape(LoadTestShape):
    """Users over time from the compressed trace (see Plan); stops the test after the replayed days."""

    def tick(self) -> tuple[int, float] | None:
        plan: Plan = self.runner.environment.replay_plan
        users = plan.users(self.get_run_time())
        if users is None:
            return None
        # Reach each tick's count within the tick, however steep the compressed trace is.
        return users, float(max(1, plan.peak_users) / TICK_S)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _timestamp_s(text: str, line: int) -> float:
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise TraceError(f"line {line}: timestamp {raw!r} is neither unix seconds nor ISO 8601") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _value(text: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"line {line}: value {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise TraceError(f"line {line}: value {text.strip()!r} is not finite")
    return value

"""The autoscaling benchmark's section of benchmarks/README.md: the settings, the table, the acceptance
verdict per diurnal trace, where predictive does not win and why, and the figures. Rendered from the
runs' JSON, so `--render` can rewrite the section without simulating.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks._autoscaling_setup import (
    BEGIN,
    BURST_AFTER_MIN,
    BURST_OVER_MIN,
    BURST_RISE,
    CLUSTER,
    END,
    HISTORY_DAYS,
    PEAK_REPLICAS,
    PLOTS,
    PLOTTED_STARTUP_S,
    README,
    SECTION,
    SETTINGS,
    STEP_S,
    TRACES,
)


def ratio(numerator: float, denominator: float) -> str:
    if denominator > 0:
        return f"{numerator / denominator:.1f}x"
    return "inf" if numerator > 0 else "- (both 0)"


def reading(runs: list[dict[str, Any]], checks: list[dict[str, Any]]) -> str:
    """The prose under the table; its numbers are read from the runs and checks it describes."""

    def row(name: str, startup_s: float, variant: str = "") -> tuple[float, int, float]:
        """(predictive GPU-h / oracle, its SLO minutes, reactive's at its GPU-hours) of one row."""
        for run in runs if not variant else checks:
            trace = run["trace"]
            if (trace["name"], trace["startup_s"], run.get("variant", "")) == (name, startup_s, variant):
                p = run["policies"]
                cost = p["predictive"]["gpu_hours"] / p["oracle"]["gpu_hours"]
                minutes = p["predictive"]["slo_violation_minutes"]
                return cost, minutes, run["reactive_at_equal_gpu_hours"]["slo_violation_minutes"]
        return math.nan, 0, math.nan

    diurnal = [r for r in runs if r["trace"]["kind"] == "diurnal" and r["trace"]["startup_s"] <= 180]
    costs = [r["policies"]["predictive"]["gpu_hours"] / r["policies"]["oracle"]["gpu_hours"] for r in diurnal]
    nasa, nasa_long, blind_long = (
        row("nasa_http", 180.0),
        row("nasa_http", 600.0),
        row("nasa_http", 600.0, "blind"),
    )
    blind = [row(name, 180.0, "blind")[0] for name in ("nyc_taxi", "nasa_http", "servegen_llm")]
    elb, tweets = row("elb_requests", 60.0), row("twitter_goog", 60.0)
    return (
        f"Reading: on the diurnal traces at 60 and 180 s start-up, predictive's bound covers the daily "
        f"ramps and most of the noise around them at {min(costs, default=math.nan):.2f}-"
        f"{max(costs, default=math.nan):.2f}x the oracle's GPU-hours, and reactive at the same GPU-hours "
        f"breaks the SLO more often (NASA at 180 s, the closest: {nasa[2]:.0f} minutes at reactive's "
        f"cheapest setting, which still costs more, against {nasa[1]}; "
        "the checks above repeat it with other seeds). Knowing the replicas (`replicasQuery`) is what "
        "brings NASA within 1.25x: with `threshold` at a replica's full capacity, a value within the "
        "HPA's 10 % tolerance is raised past it only when another replica is needed, where the blind "
        "setting (`threshold` 0.9 x capacity) pays ~11 % more replicas all the time: blind, at 180 s, "
        f"nyc_taxi, nasa_http and servegen_llm cost {blind[0]:.2f}x, {blind[1]:.2f}x and {blind[2]:.2f}x the "
        "oracle (checks). What SLO minutes predictive has follow bursts, demand up by half within minutes: "
        "no forecast of the daily shape sees them, and the level's trend catches one only as it begins. "
        "NASA's forecast errors at night are about as large in requests/s as at the peak, so its "
        "calibrated margin is a large share of the small night load, while the oracle, knowing each "
        "burst, pays nothing for uncertainty. The longer the start-up, the further ahead the bound must "
        "reach: at 600 s a burst shorter than the start-up is over before any replica asked for it is "
        "ready, and reactive does as well or better on NASA and ServeGen. There the blind setting's "
        "standing 11 % worked as a burst buffer: without it more bursts outrun the bound, and the "
        "in-flight overshoot after each costs GPU-hours too (nasa_http at 600 s: "
        f"{nasa_long[0]:.2f}x and {nasa_long[1]} SLO minutes, against {blind_long[0]:.2f}x and "
        f"{blind_long[1]} blind). The spiky traces and NASA at one-minute resolution (where the spikes are "
        "the load) are not checked blind here; their rows are far from the oracle either way. For such "
        "traffic a buffer is better bought openly, with a higher `quantile`, or kept with "
        "`--no-replicas-query` / no `replicasQuery`. Predictive stays ahead on the spiky traces at 60 s "
        f"(ELB {ratio(elb[2], elb[1])}, tweets {ratio(tweets[2], tweets[1])}) and behind from 180 s on the "
        "tweets, whose viral spikes are larger than any margin calibrated on ordinary days. holt_winters "
        "runs blind to the replicas, as the predictive-HPA projects it stands for do."
    )


KINDS = {
    "diurnal": "a daily cycle; the acceptance applies at 180 s start-up",
    "spiky": "event-driven spikes no seasonal model foresees",
    "noisy": "a small service's minute-to-minute bursts, rescaled up (NASA at 1 min)",
}


def markdown(all_runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The section: settings, the table, the acceptance verdict, its checks, the plots and how to
    reproduce."""
    runs = [run for run in all_runs if not run.get("variant")]
    checks = [run for run in all_runs if run.get("variant")]
    days = meta["days"]
    generated = "date" + (" (`--quick`)" if meta["quick"] else "")
    lines = [
        SECTION,
        "",
        "`benchmarks/autoscaling.py` replays the shared traces through the closed-loop KEDA/HPA simulator "
        "(`scaler.sim`, issue #4) under prescaler's predictive policy (its real trigger parser, forecaster, "
        "lead-time bound and decision rule), reactive KEDA, a Holt-Winters predictor and the clairvoyant "
        "oracle. Each row is one trace and one pod start-up delay. Reactive is judged at predictive's cost: "
        "its target is swept and the sweep's frontier is read at predictive's GPU-hours. Figures and flags: "
        "docs/simulator.md.",
        "",
        "### Reproduce",
        "",
        "1. `make install`",
        "2. the shared traces in `../shared/data` (see /work/shared/DATA.md), or pass `--data PATH`",
        "3. `PYTHONPATH=. .venv/bin/python -m benchmarks.autoscaling` (about 20 minutes on 2 cores; `--quick`: "
        "2 traces, 180 s, 1 day, under a minute). It rewrites this section (between its marker comments), "
        "`benchmarks/autoscaling_results.json` and the figures under `benchmarks/plots/`.",
        "",
        "### Results",
        "",
        f"- {generated}: {meta['date']}; commit {meta['commit']}; {meta['cpus']} CPUs, Python {meta['python']}, "
        f"{meta['jobs']} worker processes, {meta['seconds'] / 60:.1f} min in all.",
        f"- Windows: {days:g} simulated days after {HISTORY_DAYS:g} days of history (the forecasting "
        f"policies' past), rescaled so that the window's peak needs {PEAK_REPLICAS:g} replicas.",
        f"- Service: {CLUSTER.concurrency} slots per replica, {CLUSTER.service_time_s:g} s per request, SLO p99 "
        f"<= {CLUSTER.slo_s:g} s; demand at {STEP_S:g} s steps (coarser traces interpolated between their "
        "points), Poisson arrivals, 5 s ticks, KEDA and HPA defaults.",
        f"- predictive (prescaler, `mode: predictive` with `rateQuery` and `replicasQuery`): `threshold` "
        f"{CLUSTER.concurrency} (a replica's concurrency; a value the HPA's 10 % tolerance would "
        "ignore, though it needs another replica, is raised just past it), "
        f"`quantile` {SETTINGS.quantile:g}, `leadTime` = start-up + 30 s, `refitInterval` 1h, `history` "
        f"{HISTORY_DAYS:g}d, `serviceTime` 1s: the same for every trace.",
        f"- reactive: KEDA's Prometheus scaler on in-flight requests, target {CLUSTER.concurrency}; swept from "
        "0.35x to 1.3x that (16 targets). `sweep end`: predictive's GPU-hours are outside the range of "
        "reactive's frontier, whose nearest end is shown (reactive's cheapest point when predictive is "
        "cheaper still; its point with the fewest SLO minutes when predictive is dearer).",
        "- holt_winters: additive Holt-Winters at hourly steps, its point forecast provisioned (the "
        "predictive-HPA baseline); oracle: knows the future, the cost floor.",
        "- Cost: fitting dominates (a refit takes ~0.5 s, 24 per simulated day and forecasting run); a "
        "policy's simulation takes ~0.1 s per simulated day.",
        "",
        "| trace | kind | start-up | predictive GPU-h / oracle | predictive SLO min | reactive SLO min "
        "at predictive's GPU-h | reactive / predictive | holt_winters GPU-h / oracle, SLO min | "
        f"reactive (target {CLUSTER.concurrency}) GPU-h / oracle, SLO min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for run in runs:
        trace, policies = run["trace"], run["policies"]
        oracle_h = policies["oracle"]["gpu_hours"]
        pred, hw, react = policies["predictive"], policies["holt_winters"], policies["reactive"]
        at_equal = run["reactive_at_equal_gpu_hours"]
        flag = "" if at_equal["inside_sweep"] else " (sweep end)"
        lines.append(
            f"| {trace['name']} | {trace['kind']} | {trace['startup_s']:g} s | "
            f"{pred['gpu_hours'] / oracle_h:.2f} | {pred['slo_violation_minutes']} | "
            f"{at_equal['slo_violation_minutes']:.1f}{flag} | "
            f"{ratio(at_equal['slo_violation_minutes'], pred['slo_violation_minutes'])} | "
            f"{hw['gpu_hours'] / oracle_h:.2f}, {hw['slo_violation_minutes']} | "
            f"{react['gpu_hours'] / oracle_h:.2f}, {react['slo_violation_minutes']} |"
        )
        if trace["kind"] == "diurnal" and trace["startup_s"] == PLOTTED_STARTUP_S:
            verdicts.append(verdict(trace["name"], pred, at_equal, oracle_h))
    lines += ["", "Traces: " + "; ".join(f"{s.name}: {s.note}" for s in TRACES) + ".", ""]
    lines += ["Kinds: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ".", ""]
    lines += [
        "Acceptance (diurnal traces, 180 s start-up): reactive at predictive's GPU-hours has >= 5x "
        "predictive's SLO minutes, and predictive's GPU-hours are within 1.25x of the oracle's.",
        "",
        *verdicts,
    ]
    losses = [run for run in runs if not wins(run)]
    if losses:
        lines += [
            "",
            f"Where predictive does not win (reactive at its GPU-hours has < 5x its SLO minutes, or it costs "
            f"> 1.25x the oracle), and why: the share of its SLO minutes that come within {BURST_AFTER_MIN} "
            f"minutes of a burst (demand up {BURST_RISE:.0%} within {BURST_OVER_MIN} minutes), against the "
            "share of all minutes that do.",
            "",
        ]
        for run in losses:
            b, trace = run["bursts"], run["trace"]
            where = f"- {trace['name']}, {trace['startup_s']:g} s: "
            if not b["slo_minutes"]:
                cost = run["policies"]["predictive"]["gpu_hours"] / run["policies"]["oracle"]["gpu_hours"]
                lines.append(
                    where + f"no SLO minute for predictive (at {cost:.2f}x the oracle's GPU-hours), and "
                    "none for reactive at that cost either: a draw, not a win."
                )
                continue
            share = b["after_burst"] / b["slo_minutes"]
            lines.append(
                where + f"{b['after_burst']} of {b['slo_minutes']} SLO minutes ({share:.0%}) follow a burst; "
                f"{b['minutes_after_burst_share']:.0%} of all minutes do."
            )
    if checks:
        lines += [
            "",
            "Checks of the acceptance rows: the same windows with two more Poisson seeds, and `blind`: "
            "predictive without `replicasQuery` (`threshold` 0.9 x concurrency, values never raised past "
            "the HPA's tolerance), at 180 and 600 s.",
            "",
            "| trace | start-up | variant | predictive GPU-h / oracle | predictive SLO min | reactive SLO "
            "min at predictive's GPU-h | reactive / predictive | acceptance |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for run in checks:
            trace, p = run["trace"], run["policies"]
            at_equal = run["reactive_at_equal_gpu_hours"]
            flag = "" if at_equal["inside_sweep"] else " (sweep end)"
            holds = trace["startup_s"] == PLOTTED_STARTUP_S and (
                wins(run)
                or (at_equal["slo_violation_minutes"] == 0 == p["predictive"]["slo_violation_minutes"])
            )
            lines.append(
                f"| {trace['name']} | {trace['startup_s']:g} s | {run['variant']} | "
                f"{p['predictive']['gpu_hours'] / p['oracle']['gpu_hours']:.2f} | "
                f"{p['predictive']['slo_violation_minutes']} | {at_equal['slo_violation_minutes']:.1f}{flag} | "
                f"{ratio(at_equal['slo_violation_minutes'], p['predictive']['slo_violation_minutes'])} | "
                f"{('holds' if holds else 'fails') if trace['startup_s'] == PLOTTED_STARTUP_S else '-'} |"
            )
    lines += ["", reading(runs, checks)]
    plots = sorted(PLOTS.glob("autoscaling_*.png"))
    if plots:
        lines += ["", f"Figures ({PLOTTED_STARTUP_S:g} s start-up):", ""]
        lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
    lines.append("")
    return "\n".join(lines)


def wins(run: dict[str, Any]) -> bool:
    """Predictive wins a row: reactive at its GPU-hours has >= 5x its SLO minutes (and some), and it
    costs at most 1.25x the oracle."""
    policies, at_equal = run["policies"], run["reactive_at_equal_gpu_hours"]
    minutes = float(policies["predictive"]["slo_violation_minutes"])
    reactive_minutes = float(at_equal["slo_violation_minutes"])
    cheap = bool(policies["predictive"]["gpu_hours"] <= 1.25 * policies["oracle"]["gpu_hours"])
    return cheap and reactive_minutes > 0 and reactive_minutes >= 5 * minutes


def verdict(name: str, pred: dict[str, Any], at_equal: dict[str, Any], oracle_h: float) -> str:
    minutes, reactive_minutes = pred["slo_violation_minutes"], at_equal["slo_violation_minutes"]
    slo_ok = reactive_minutes >= 5 * minutes
    cost = pred["gpu_hours"] / oracle_h
    trivially = ""
    if minutes == 0:
        trivially = " (trivially: neither has any)" if reactive_minutes == 0 else " (predictive has none)"
    return (
        f"- {name}: SLO {'holds' if slo_ok else 'FAILS'}{trivially}: reactive {reactive_minutes:.1f} vs "
        f"predictive {minutes} minutes ({ratio(reactive_minutes, minutes)}); cost "
        f"{'holds' if cost <= 1.25 else 'FAILS'}: {cost:.2f}x the oracle."
    )


def write_section(text: str, readme: Path = README) -> None:
    """Replace this benchmark's section of `readme` (between the markers), or append it."""
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = readme.read_text() if readme.exists() else "# Benchmarks\n"
    if BEGIN in old and END in old:
        head, _, rest = old.partition(BEGIN)
        _, _, tail = rest.partition(END)
        new = head + block + tail.lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    readme.write_text(new)

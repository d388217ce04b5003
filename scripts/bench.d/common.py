"""Helpers shared by the benchmark's drivers: the counting proxy's window, statistics."""

import json
import statistics
import urllib.request


def take(proxy_url):
    """The requests the counting proxy saw since the last take, by operation; resets them."""
    with urllib.request.urlopen(proxy_url + "/__bench/take", timeout=30) as r:
        return json.loads(r.read().decode())


def summary(values):
    """Median and spread (min, p10, p90, max) of a list of numbers."""
    v = sorted(values)
    if not v:
        return None

    def pct(q):
        return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]

    return {"median": statistics.median(v), "min": v[0], "p10": pct(0.1), "p90": pct(0.9),
            "max": v[-1], "n": len(v)}


def counts_summary(runs):
    """The calls of every run of one event: the first run's counts, and whether they varied."""
    first = runs[0] if runs else {}
    varied = any(r != first for r in runs)
    return {"calls": first, "varied": varied,
            "totals": sorted({sum(r.values()) for r in runs})}

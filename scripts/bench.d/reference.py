#!/usr/bin/env python3
"""The original's side of scripts/bench: its own harness, counted at the HTTP layer.

Imports the original's harness (REFERENCE_DIR/bench/launch_lifecycle.py, which imports the
library from REFERENCE_DIR/autoscaling-lifecycle-py) and runs its scenarios unchanged, with
its moto traffic going through our counting proxy: the only change is around its
`measure()`, which now reads the proxy's counts before and after each event, outside the
timed part. Also its cold start, its peak RSS of one launch process and its pure state
machine, by its own functions. Nothing of the original is copied into the project.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import counts_summary, summary, take  # noqa: E402

LABELS = {"launch": "launch", "launch_ssm: launch": "ssm_launch",
          "launch_ssm: ssm Success": "ssm_status", "terminate": "terminate",
          "scheduled": "scheduled"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-dir", required=True)
    ap.add_argument("--proxy-url", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cold-runs", type=int, default=10)
    ap.add_argument("--sm-iterations", type=int, default=10000)
    ap.add_argument("--scenarios", default="launch,launch_ssm,terminate,scheduled")
    ap.add_argument("--skip-process", action="store_true")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    if not args.proxy_url.startswith("http://127.0.0.1:"):
        raise SystemExit("loopback only: %s" % args.proxy_url)
    os.environ["SEED_SRC"] = os.path.join(args.reference_dir, "autoscaling-lifecycle-py")
    sys.path.insert(0, os.path.join(args.reference_dir, "bench"))
    import launch_lifecycle as L  # noqa: E402

    original_measure = L.measure

    def measure(rt, label, envelope, model_cls):
        take(args.proxy_url)
        r = original_measure(rt, label, envelope, model_cls)
        r.http = take(args.proxy_url)
        return r

    L.measure = measure  # the scenarios look it up in the module at each call

    moto = L.MotoServer(args.proxy_url)  # uses the running server, through the proxy
    env = L.Env(moto)
    rt = L.Runtime(moto.url)
    report = {"reference_group": L.GROUP}
    results = {}
    for name in [n for n in args.scenarios.split(",") if n]:
        for i in range(args.warmup + args.runs):
            steps = L.SCENARIOS[name](rt, env)
            if i < args.warmup:
                continue
            for s in steps:
                slot = results.setdefault(LABELS.get(s.label, s.label),
                                          {"wall_ms": [], "cpu_ms": [], "calls": [],
                                           "failed": [], "botocore": []})
                slot["wall_ms"].append(s.seconds * 1e3)
                slot["cpu_ms"].append(s.cpu * 1e3)
                slot["calls"].append(s.http["calls"])
                slot["failed"].append(s.http["failed"])
                slot.setdefault("moto_ms", []).append(sum(s.http["upstream_ms"].values()))
                slot["botocore"].append({k: v for k, v in s.calls.items()})
        L.log("  reference %-10s %d runs done" % (name, args.runs))
    report["events"] = {
        label: {"wall_ms": summary(slot["wall_ms"]), "cpu_ms": summary(slot["cpu_ms"]),
                "failed": counts_summary(slot["failed"])["calls"],
                "botocore_calls": counts_summary(slot["botocore"])["calls"],
                "moto_ms": summary(slot.get("moto_ms", [])),
                **counts_summary(slot["calls"])}
        for label, slot in results.items()}

    if not args.skip_process:
        L.log("reference: peak RSS of one launch process")
        rss = L.measure_rss(env)
        report["rss_kib"] = rss["launch_process_kb"]
        report["rss_method"] = rss["method"]
        L.log("reference: cold start")
        cold = L.measure_cold_start(args.cold_runs)
        report["cold_start"] = cold
        L.log("reference: pure state machine (%d chains)" % args.sm_iterations)
        p = L.run_child(["--child", "state-machine", str(args.sm_iterations)])
        report["state_machine"] = json.loads(p.stdout.strip().splitlines()[-1])
    moto.close()
    with open(args.json, "w") as fh:
        json.dump(report, fh, indent=2)
    L.log("reference: wrote %s" % args.json)


if __name__ == "__main__":
    main()

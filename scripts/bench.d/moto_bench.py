#!/usr/bin/env python3
"""The benchmark's one moto server, for both implementations.

Usage: python moto_bench.py --port PORT [--reference-ext PATH --reference-group NAME]

Without --reference-ext it is exactly ``scripts/moto_server.py`` (moto with our AWS-shaped
extensions), which is what our side needs: CompleteLifecycleAction against actions made
active by RegisterTestLifecycleAction, RecordLifecycleActionHeartbeat, atomic DynamoDB
conditional writes, SSM's stricter SendCommand.

With --reference-ext (the original's ``bench/moto_ext.py``) the same server also serves the
original's harness. The two extensions model two Auto Scaling operations differently: the
original's keeps a log of scaling activities (launch *and* terminate, ``MidLifecycleAction``
until the hook is completed) and completes an action by instance id without any action
being registered; ours registers actions explicitly and reports launches as done. The
original's library needs its model (it reads the terminate activity, and polls the launch
activity until it is ``Successful``); ours waits for the launch activity to reach 100 %
after completing the hook, which the original's model reports only for actions *it*
completed. So DescribeScalingActivities and CompleteLifecycleAction of the original's
group (``--reference-group``, the name its harness creates) are answered by the original's
extension, and those of every other group by ours. Everything else (DynamoDB, SNS, SSM,
EC2, the rest of Auto Scaling) is one and the same server for both.
"""

import argparse
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # scripts/, for moto_server

import moto_server as ours  # noqa: E402


def load_reference(path):
    spec = importlib.util.spec_from_file_location("reference_moto_ext", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install()  # patches moto's own AutoScalingResponse (and SSM, and the backend)


def route_by_group(reference_group):
    base = ours.AutoScalingResponse  # moto's class, now carrying the original's versions
    for name in ("describe_scaling_activities", "complete_lifecycle_action"):
        theirs = getattr(base, name)
        mine = getattr(ours.AutoScaling, name)

        def routed(self, theirs=theirs, mine=mine):
            if self._get_param("AutoScalingGroupName") == reference_group:
                return theirs(self)
            return mine(self)

        routed.__name__ = name
        setattr(ours.AutoScaling, name, routed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reference-ext")
    parser.add_argument("--reference-group", default="bench-swarm-worker")
    args = parser.parse_args()
    if args.reference_ext:
        load_reference(args.reference_ext)
        route_by_group(args.reference_group)
    sys.argv = [sys.argv[0], "--port", str(args.port)]
    ours.main()


if __name__ == "__main__":
    main()

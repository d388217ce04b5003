#!/usr/bin/env python3
"""Our side of scripts/bench: the `lifecycle` CLI and the Lambda `bootstrap`, against moto.

Each scenario run starts from a reset moto and a fresh world (table, SNS topic, a group of
one instance with its two hooks, the node item, the active lifecycle action), set up
straight against moto (not counted); then the event goes through the counting proxy:

- CLI: `lifecycle handle --config ... --table ... --event FILE` in a process of its own;
  wall time from spawn to exit, CPU (user + system) and peak RSS of that process (wait4).
- Lambda: one `bootstrap` per configuration, served by a local Runtime API and kept warm
  over all runs; per event the time from handing the payload out (`/invocation/next`) to
  its `/response`, and the CPU its threads used meanwhile (/proc/PID/task/*/schedstat).
  Init duration: spawn to its first `/invocation/next`, over --cold-runs fresh processes.

Writes everything as JSON (--json). Loopback only; fake credentials.
"""

import argparse
import glob
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import counts_summary, summary, take  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "bench-lifecycle-state"
GROUP = "bench-workers"
TOPIC = "bench-lifecycle-reports"
SECRET = "SWMTKN-1-bench0secret0never0logged"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
CONFIG = os.path.join(HERE, "lifecycle.yaml")
CONFIG_SSM = os.path.join(HERE, "lifecycle-ssm.yaml")
FAKE = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ------------------------------------------------------------------------------------------
# the world, straight against moto
# ------------------------------------------------------------------------------------------
class World:
    def __init__(self, moto_url, cli):
        self.moto_url = moto_url
        self.cli = cli
        kw = dict(endpoint_url=moto_url, region_name=REGION, aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        self.ddb = boto3.client("dynamodb", **kw)
        self.asg = boto3.client("autoscaling", **kw)
        self.sns = boto3.client("sns", **kw)
        self.ssm = boto3.client("ssm", **kw)

    def reset(self):
        req = urllib.request.Request(self.moto_url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()

    def setup(self, status):
        """A fresh world with one instance whose node is in `status`; its instance id."""
        self.reset()
        env = dict(os.environ, AWS_ENDPOINT_URL=self.moto_url, **FAKE)
        subprocess.run([self.cli, "init", "--table", TABLE], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sns.create_topic(Name=TOPIC)
        self.asg.create_launch_configuration(LaunchConfigurationName=GROUP + "-lc",
                                             ImageId="ami-12c6146b", InstanceType="t3.micro")
        self.asg.create_auto_scaling_group(AutoScalingGroupName=GROUP,
                                           LaunchConfigurationName=GROUP + "-lc", MinSize=0,
                                           MaxSize=2, DesiredCapacity=1,
                                           AvailabilityZones=[REGION + "a"])
        for suffix, transition in (("on-launch", LAUNCHING), ("on-terminate", TERMINATING)):
            self.asg.put_lifecycle_hook(LifecycleHookName="%s-%s" % (GROUP, suffix),
                                        AutoScalingGroupName=GROUP,
                                        LifecycleTransition=transition, HeartbeatTimeout=900)
        group = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
        instance = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
        self.ddb.put_item(TableName=TABLE, Item={
            "Ident": {"S": instance}, "ItemStatus": {"S": status}, "ItemType": {"S": "worker"},
            "InstanceIp": {"S": "10.0.0.7"}, "EC2InstanceId": {"S": instance},
            "WorkerToken": {"S": SECRET}})
        return instance

    def register(self, instance, launching):
        """Makes the instance's lifecycle action active (test-only operation); its token."""
        token = str(uuid.uuid4())
        form = urllib.parse.urlencode({
            "Action": "RegisterTestLifecycleAction", "Version": "2011-01-01",
            "AutoScalingGroupName": GROUP,
            "LifecycleHookName": GROUP + ("-on-launch" if launching else "-on-terminate"),
            "InstanceId": instance, "LifecycleActionToken": token,
            "LifecycleTransition": LAUNCHING if launching else TERMINATING}).encode()
        req = urllib.request.Request(self.moto_url + "/", data=form, method="POST", headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/%s/autoscaling/"
                             "aws4_request, SignedHeaders=host, Signature=0" % REGION,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
        return token

    def status(self, instance):
        item = self.ddb.get_item(TableName=TABLE, Key={"Ident": {"S": instance}},
                                 ConsistentRead=True).get("Item")
        if item is None or "ItemStatus" not in item:
            return None  # absent, or the tombstone remove_from_db leaves (docs/AWS.md)
        return item["ItemStatus"]["S"]

    def commands(self, instance):
        return [c["CommandId"] for c in self.ssm.list_commands(InstanceId=instance)["Commands"]]

    def command_records(self):
        return self.ddb.scan(TableName=TABLE, FilterExpression="ItemType = :t",
                             ExpressionAttributeValues={":t": {"S": "command"}})["Items"]


def sns(message):
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:%s:%s:bench-events:%s" % (REGION, ACCOUNT, uuid.uuid4()),
        "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()),
                "TopicArn": "arn:aws:sns:%s:%s:bench-events" % (REGION, ACCOUNT),
                "Message": json.dumps(message), "Timestamp": now()}}]}


def lifecycle_event(instance, launching, token):
    kind = "launch" if launching else "terminate"
    return sns({
        "version": "0", "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance-%s Lifecycle Action" % kind,
        "source": "aws.autoscaling", "account": ACCOUNT, "time": now(), "region": REGION,
        "resources": ["arn:aws:autoscaling:%s:%s:autoScalingGroup:1:autoScalingGroupName/%s"
                      % (REGION, ACCOUNT, GROUP)],
        "detail": {"LifecycleActionToken": token, "AutoScalingGroupName": GROUP,
                   "LifecycleHookName": "%s-on-%s" % (GROUP, kind), "EC2InstanceId": instance,
                   "LifecycleTransition": LAUNCHING if launching else TERMINATING}})


def status_event(instance, command):
    return sns({
        "version": "0", "id": str(uuid.uuid4()),
        "detail-type": "EC2 Command Status-change Notification", "source": "aws.ssm",
        "account": ACCOUNT, "time": now(), "region": REGION,
        "resources": ["arn:aws:ec2:%s:%s:instance/%s" % (REGION, ACCOUNT, instance)],
        "detail": {"command-id": command, "document-name": "AWS-RunShellScript",
                   "parameters": json.dumps({"commands": ["# sent by autoscaling-lifecycle"]}),
                   "status": "Success"}})


def scheduled_event(rule="backup"):
    return sns({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": ACCOUNT, "time": now(), "region": REGION,
        "resources": ["arn:aws:events:%s:%s:rule/%s" % (REGION, ACCOUNT, rule)], "detail": {}})


# ------------------------------------------------------------------------------------------
# the CLI: one process per event
# ------------------------------------------------------------------------------------------
class Cli:
    name = "cli"

    def __init__(self, binary, proxy_url, workdir):
        self.binary = binary
        self.proxy_url = proxy_url
        self.workdir = workdir
        # The environment a Lambda function gets, more or less: nothing of this shell's.
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_ENDPOINT_URL": proxy_url,
                    **FAKE}

    def handle(self, config, event):
        path = os.path.join(self.workdir, "event.json")
        with open(path, "w") as fh:
            json.dump(event, fh)
        out_path = os.path.join(self.workdir, "out.json")
        take(self.proxy_url)
        with open(out_path, "w") as out, open(os.path.join(self.workdir, "err.txt"), "w") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen([self.binary, "handle", "--config", config, "--table", TABLE,
                                     "--event", path, "--format", "json"],
                                    env=self.env, stdout=out, stderr=err)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        http = take(self.proxy_url)
        with open(out_path) as fh:
            text = fh.read()
        if proc.returncode != 0:
            with open(os.path.join(self.workdir, "err.txt")) as fh:
                raise RuntimeError("lifecycle handle exited %d: %s %s" % (proc.returncode, text,
                                                                         fh.read()[-2000:]))
        # ru_maxrss is not used: after a fork from this (large) Python process, Linux counts
        # the pages the child had before its exec too; peak_rss_kib measures it apart.
        return {"wall_ms": wall * 1e3, "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1e3,
                "calls": http["calls"], "failed": http["failed"], "report": text,
                "sequence": http.get("sequence"), "moto_ms": sum(http["upstream_ms"].values())}

    def peak_rss_kib(self, world):
        """Peak RSS of one `lifecycle handle` of a launch, by GNU time (whose own small
        image is what its child inherits before the exec), or None without it."""
        gnu_time = "/usr/bin/time"
        if not os.path.exists(gnu_time):
            return None
        instance = world.setup("finished_cloud_init")
        token = world.register(instance, True)
        path = os.path.join(self.workdir, "event.json")
        with open(path, "w") as fh:
            json.dump(lifecycle_event(instance, True, token), fh)
        rss_path = os.path.join(self.workdir, "rss.txt")
        subprocess.run([gnu_time, "-f", "%M", "-o", rss_path, self.binary, "handle", "--config",
                        CONFIG, "--table", TABLE, "--event", path], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        expect(world.status(instance) == "ready", "CLI RSS run: the launch did not finish")
        with open(rss_path) as fh:
            return int(fh.read().split()[-1])


# ------------------------------------------------------------------------------------------
# the Lambda: a local Runtime API serving the real bootstrap
# ------------------------------------------------------------------------------------------
class RuntimeApi:
    """Enough of the Lambda Runtime API: next, response, error, init/error."""

    def __init__(self):
        self.queue = queue.Queue()
        self.lock = threading.Condition()
        self.handed = {}
        self.answers = {}
        self.first_next = None
        self.init_error = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without it, an answer's head and body (two writes) meet Nagle's algorithm here
            # and the function's delayed ACK: a 40 ms stall per invocation that is the
            # harness's, not the function's (the real Runtime API sets TCP_NODELAY).
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def reply(self, code, body, headers=()):
                data = body.encode()
                head = ["HTTP/1.1 %d %s" % (code, "OK" if code == 200 else "Accepted"),
                        "Content-Type: application/json", "Content-Length: %d" % len(data)]
                head += ["%s: %s" % kv for kv in headers]
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)  # one write
                self.wfile.flush()

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self.reply(404, "{}")
                with api.lock:
                    if api.first_next is None:
                        api.first_next = time.perf_counter()
                        api.lock.notify_all()
                rid, payload, deadline_ms = api.queue.get()
                if rid is None:
                    return  # shutting down
                body = json.dumps(payload)
                with api.lock:
                    api.handed[rid] = time.perf_counter()
                self.reply(200, body, [
                    ("Lambda-Runtime-Aws-Request-Id", rid),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                    ("Lambda-Runtime-Invoked-Function-Arn",
                     "arn:aws:lambda:%s:%s:function:lifecycle" % (REGION, ACCOUNT)),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")])

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                t = time.perf_counter()
                prefix = "/2018-06-01/runtime/invocation/"
                with api.lock:
                    if self.path == "/2018-06-01/runtime/init/error":
                        api.init_error = body.decode("utf-8", "replace")
                    elif self.path.startswith(prefix):
                        rid, _, kind = self.path[len(prefix):].rpartition("/")
                        api.answers[rid] = (t, kind, body.decode("utf-8", "replace"))
                    api.lock.notify_all()
                self.reply(202, '{"status":"OK"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_ready(self, proc, timeout=60):
        deadline = time.time() + timeout
        with self.lock:
            while self.first_next is None:
                if self.init_error is not None:
                    raise RuntimeError("bootstrap init failed: %s" % self.init_error)
                if proc.poll() is not None:
                    raise RuntimeError("bootstrap exited during init (%s)" % proc.returncode)
                if time.time() > deadline:
                    raise RuntimeError("bootstrap did not ask for an invocation")
                self.lock.wait(0.05)
        return self.first_next

    def invoke(self, rid, payload, timeout=120):
        deadline_ms = int((time.time() + 900) * 1000)
        self.queue.put((rid, payload, deadline_ms))
        end = time.time() + timeout
        with self.lock:
            while rid not in self.answers:
                if time.time() > end:
                    raise RuntimeError("no answer to %s" % rid)
                self.lock.wait(0.5)
            t_done, kind, body = self.answers.pop(rid)
            t_handed = self.handed.pop(rid)
        return t_done - t_handed, kind, body

    def close(self):
        self.queue.put((None, None, None))
        self.server.shutdown()


def cpu_ns(pid):
    """CPU time of every thread of `pid` so far (ns, from schedstat)."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(path) as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Lambda:
    """One warm `bootstrap` for one configuration."""

    name = "lambda"

    def __init__(self, binary, proxy_url, config, workdir):
        self.proxy_url = proxy_url
        self.api = RuntimeApi()
        self.env = lambda_env(self.api.port, proxy_url, config)
        self.out = open(os.path.join(workdir, "bootstrap-%s.log" % os.path.basename(config)), "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([binary], env=self.env, stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.init_ms = (self.api.wait_ready(self.proc) - t0) * 1e3
        self.n = 0

    def handle(self, config, event):
        self.n += 1
        take(self.proxy_url)
        c0 = cpu_ns(self.proc.pid)
        latency, kind, body = self.api.invoke("req-%d" % self.n, event)
        c1 = cpu_ns(self.proc.pid)
        http = take(self.proxy_url)
        if kind != "response":
            raise RuntimeError("the invocation failed: %s" % body)
        return {"wall_ms": latency * 1e3, "cpu_ms": (c1 - c0) / 1e6, "calls": http["calls"],
                "failed": http["failed"], "report": body, "sequence": http.get("sequence"),
                "moto_ms": sum(http["upstream_ms"].values())}

    def peak_rss_kib(self):
        return vm_hwm_kib(self.proc.pid)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.api.close()
        self.out.close()


def lambda_env(port, proxy_url, config):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % port,
           "AWS_LAMBDA_FUNCTION_NAME": "lifecycle", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "LIFECYCLE_TABLE": TABLE,
           "LIFECYCLE_CONFIG": config, "AWS_ENDPOINT_URL": proxy_url}
    env.update(FAKE)
    return env


def cold_starts(binary, proxy_url, runs):
    """Init duration of `runs` fresh bootstraps: spawn to the first /invocation/next."""
    out = []
    rss = []
    for _ in range(runs):
        api = RuntimeApi()
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], env=lambda_env(api.port, proxy_url, CONFIG),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        try:
            out.append((api.wait_ready(proc) - t0) * 1e3)
            rss.append(vm_hwm_kib(proc.pid))
        finally:
            proc.terminate()
            proc.wait()
            api.close()
    return out, rss


# ------------------------------------------------------------------------------------------
# scenarios: each returns [(event label, measurement)], checked
# ------------------------------------------------------------------------------------------
def expect(cond, what):
    if not cond:
        raise RuntimeError(what)


def scenario_launch(world, side):
    instance = world.setup("finished_cloud_init")
    token = world.register(instance, True)
    m = side.handle(CONFIG, lifecycle_event(instance, True, token))
    expect(world.status(instance) == "ready", "launch: node is %r, not ready (%s)"
           % (world.status(instance), m["report"][:2000]))
    return [("launch", m)]


def scenario_launch_ssm(world, side):
    instance = world.setup("finished_cloud_init")
    token = world.register(instance, True)
    m1 = side.handle(CONFIG_SSM, lifecycle_event(instance, True, token))
    expect(world.status(instance) == "join_cluster", "launch_ssm: node is %r (%s)"
           % (world.status(instance), m1["report"][:2000]))
    commands = world.commands(instance)
    expect(len(commands) == 1, "launch_ssm: %d commands sent" % len(commands))
    m2 = side.handle(CONFIG_SSM, status_event(instance, commands[0]))
    expect(world.status(instance) == "ready", "launch_ssm: node is %r after the status (%s)"
           % (world.status(instance), m2["report"][:2000]))
    return [("ssm_launch", m1), ("ssm_status", m2)]


def scenario_terminate(world, side):
    instance = world.setup("ready")
    token = world.register(instance, False)
    m = side.handle(CONFIG, lifecycle_event(instance, False, token))
    expect(world.status(instance) is None, "terminate: node still there (%r; %s)"
           % (world.status(instance), m["report"][:2000]))
    return [("terminate", m)]


def scenario_scheduled(world, side):
    instance = world.setup("ready")
    m = side.handle(CONFIG, scheduled_event())
    expect(len(world.commands(instance)) == 1 and len(world.command_records()) == 1,
           "scheduled: expected one backup command (%s)" % m["report"][:2000])
    return [("scheduled", m)]


SCENARIOS = {"launch": scenario_launch, "launch_ssm": scenario_launch_ssm,
             "terminate": scenario_terminate, "scheduled": scenario_scheduled}


def run_side(world, side_for, names, runs, warmup):
    results = {}
    for name in names:
        for i in range(warmup + runs):
            for label, m in SCENARIOS[name](world, side_for(name)):
                if i < warmup:
                    continue
                slot = results.setdefault(label, {"wall_ms": [], "cpu_ms": [], "calls": [],
                                                  "failed": []})
                slot["wall_ms"].append(m["wall_ms"])
                slot["cpu_ms"].append(m["cpu_ms"])
                slot["calls"].append(m["calls"])
                slot["failed"].append(m["failed"])
                slot.setdefault("moto_ms", []).append(m["moto_ms"])
                slot.setdefault("sequence", m.get("sequence"))
        log("  %-10s %d runs done" % (name, runs))
    out = {}
    for label, slot in results.items():
        out[label] = {"wall_ms": summary(slot["wall_ms"]), "cpu_ms": summary(slot["cpu_ms"]),
                      "failed": counts_summary(slot["failed"])["calls"],
                      "moto_ms": summary(slot.get("moto_ms", [])),
                      "sequence": slot.get("sequence"), **counts_summary(slot["calls"])}
    return out


def proxy_cost(moto_url, proxy_url, n=200):
    """Median time of a plain DynamoDB GetItem (a fresh connection each), straight and
    through the proxy: what the proxy adds to every call."""
    body = json.dumps({"TableName": TABLE, "Key": {"Ident": {"S": "nope"}}}).encode()
    headers = {"X-Amz-Target": "DynamoDB_20120810.GetItem",
               "Content-Type": "application/x-amz-json-1.0",
               "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/%s/dynamodb/"
                                "aws4_request, SignedHeaders=host, Signature=0" % REGION}
    times = {"direct": [], "proxy": []}
    for _ in range(n):  # interleaved, so that both see the same load
        for label, url in (("direct", moto_url), ("proxy", proxy_url)):
            req = urllib.request.Request(url + "/", data=body, headers=headers, method="POST")
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
            times[label].append((time.perf_counter() - t0) * 1e3)
    take(proxy_url)
    return {label: summary(t)["median"] for label, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moto-url", required=True)
    ap.add_argument("--proxy-url", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cold-runs", type=int, default=20)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    for url in (args.moto_url, args.proxy_url):
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit("loopback only: %s" % url)
    names = [n for n in args.scenarios.split(",") if n]
    report = {}
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as work:
        world = World(args.moto_url, args.cli)
        world.setup("ready")
        report["proxy_cost_ms"] = proxy_cost(args.moto_url, args.proxy_url)

        log("ours: Lambda bootstrap, warm, %d runs per scenario" % args.runs)
        containers = {}

        def container(name):
            config = CONFIG_SSM if name == "launch_ssm" else CONFIG
            if config not in containers:
                containers[config] = Lambda(args.bootstrap, args.proxy_url, config, work)
            return containers[config]

        try:
            report["lambda"] = run_side(world, container, names, args.runs, args.warmup)
            report["lambda_peak_rss_kib"] = max(c.peak_rss_kib() for c in containers.values())
            report["lambda_first_init_ms"] = [c.init_ms for c in containers.values()]
            report["lambda_events_per_container"] = {os.path.basename(k): c.n
                                                     for k, c in containers.items()}
        finally:
            for c in containers.values():
                c.close()

        log("ours: CLI, one process per event, %d runs per scenario" % args.runs)
        cli = Cli(args.cli, args.proxy_url, work)
        report["cli"] = run_side(world, lambda name: cli, names, args.runs, args.warmup)
        report["cli_launch_peak_rss_kib"] = cli.peak_rss_kib(world)

        log("ours: bootstrap cold starts, %d fresh processes" % args.cold_runs)
        inits, rss = cold_starts(args.bootstrap, args.proxy_url, args.cold_runs)
        report["lambda_init_ms"] = summary(inits)
        report["lambda_init_rss_kib"] = max(rss) if rss else None
    with open(args.json, "w") as fh:
        json.dump(report, fh, indent=2)
    log("ours: wrote %s" % args.json)


if __name__ == "__main__":
    main()

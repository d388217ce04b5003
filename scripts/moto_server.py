#!/usr/bin/env python3
"""moto's server, with AWS-shaped versions of the operations moto 5.2.5 lacks.

Usage: .venv/bin/python scripts/moto_server.py --port PORT   (PORT 0 picks a free one)

Serves every moto service on 127.0.0.1:PORT, prints ``ready <port>`` on stdout once it
accepts connections, and exits as soon as its standard input reaches end-of-file, so a
test process that dies never leaves it behind. State is reset with ``POST /moto-api/reset``.

Extensions (each reproduces the AWS behaviour named in its docstring):

- autoscaling: CompleteLifecycleAction, RecordLifecycleActionHeartbeat,
  DescribeScalingActivities (one "Launching" activity per instance of a group), and two
  test-only actions: RegisterTestLifecycleAction (makes a lifecycle action active, as
  AWS does when an instance enters Pending:Wait / Terminating:Wait) and
  DescribeTestLifecycleActions (JSON: active actions, completions, heartbeats).
- ssm: DescribeInstanceInformation (running EC2 instances of moto's EC2 backend),
  SendCommand rejecting instances that are unknown, not running or whose agent is not
  online (InvalidInstanceId) and sending only to the instances named (moto sends to every
  instance when Targets is absent), ListCommandInvocations, and the test-only target
  AmazonSSM.SetTestAgentStatus.
- dynamodb: conditional writes are atomic, as on AWS (moto checks and writes without a
  lock, so two racing conditional writes can both succeed).
- route53: ChangeResourceRecordSets validates the whole batch as AWS does
  (InvalidChangeBatch for a DELETE of a missing or different record, or a CREATE of an
  existing one) and applies it atomically.

Test-only names contain "Test" and exist in no AWS API.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import logging
import os
import sys
import threading
import uuid
from typing import Any

from moto.autoscaling import urls as autoscaling_urls
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.route53 import urls as route53_urls
from moto.route53.exceptions import Route53ClientError
from moto.route53.responses import Route53
from moto.ssm import urls as ssm_urls
from moto.ssm import models as ssm_models
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.responses import SimpleSystemManagerResponse

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
AGENT_VERSION = "3.3.1142.0"
PING_STATUSES = ("Online", "ConnectionLost", "Inactive")


def _state(backend: Any, name: str, factory: Any) -> Any:
    """Extension state kept on a moto backend, so ``/moto-api/reset`` clears it too."""
    key = f"_ext_{name}"
    if key not in backend.__dict__:
        backend.__dict__[key] = factory()
    return backend.__dict__[key]


def _json_response(status: int, document: Any) -> tuple[int, dict[str, Any], str]:
    return status, {"status": status, "Content-Type": "application/json"}, json.dumps(document)


def _null_constraint(member: str) -> ValidationError:
    """AWS's message for a missing required query parameter."""
    return ValidationError(
        f"1 validation error detected: Value null at '{member}' failed to satisfy "
        "constraint: Member must not be null"
    )


def _page(items: list[Any], token: str | None, size: int, bad_token: Any) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the opaque token of the next page, if any."""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError:
            raise bad_token from None
        if start < 0 or start > len(items):
            raise bad_token
    end = start + size
    next_token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], next_token


# --------------------------------------------------------------------------------------
# Auto Scaling (query protocol, XML responses)
# --------------------------------------------------------------------------------------

TEST_AUTOSCALING_ACTIONS = ("RegisterTestLifecycleAction", "DescribeTestLifecycleActions")


class InvalidNextToken(AutoscalingClientError):
    code = "InvalidNextToken"
    message = "The token is invalid."


class LifecycleActions:
    """Lifecycle actions of one account and region: active ones, completions, heartbeats."""

    def __init__(self) -> None:
        self.active: list[dict[str, str]] = []
        self.completions: list[dict[str, str]] = []
        self.heartbeats: list[dict[str, str]] = []


class AutoScaling(AutoScalingResponse):
    """moto's Auto Scaling responses plus the lifecycle-action operations."""

    def parse_parameters(self, request: Any) -> None:
        # The test-only actions are not in botocore's model: take their parameters as sent.
        if self._get_action() in TEST_AUTOSCALING_ACTIONS:
            self.params = {key: values[0] for key, values in self.querystring.items()}
            return
        super().parse_parameters(request)

    def _actions(self) -> LifecycleActions:
        return _state(self.autoscaling_backend, "lifecycle_actions", LifecycleActions)

    def _required(self, name: str) -> str:
        value = self._get_param(name)
        if value is None or value == "":
            raise _null_constraint(name[0].lower() + name[1:])
        return value

    def _group_and_hook(self) -> tuple[str, str, Any]:
        """The named group and hook, validated as AWS does; the hook may be None."""
        group = self._required("AutoScalingGroupName")
        hook_name = self._required("LifecycleHookName")
        if group not in self.autoscaling_backend.autoscaling_groups:
            raise ValidationError(
                f"AutoScalingGroup name not found - AutoScalingGroup '{group}' not found"
            )
        hook = self.autoscaling_backend.lifecycle_hooks.get(f"{group}_{hook_name}")
        return group, hook_name, hook

    def _active_action(self) -> dict[str, str]:
        """The active lifecycle action named by the request, or AWS's ValidationError.

        AWS finds the action by LifecycleActionToken when one is given, else by InstanceId,
        and reports ``No active Lifecycle Action found with token <t>`` /
        ``... with instance ID <id>`` when the group, hook or action does not match one
        that is waiting (never started, already completed, or its hook deleted).
        """
        group, hook_name, hook = self._group_and_hook()
        token = self._get_param("LifecycleActionToken")
        instance = self._get_param("InstanceId")
        if token and len(token) != 36:
            bound = "greater than or equal to" if len(token) < 36 else "less than or equal to"
            raise ValidationError(
                f"1 validation error detected: Value '{token}' at 'lifecycleActionToken' "
                f"failed to satisfy constraint: Member must have length {bound} 36"
            )
        if instance and len(instance) > 19:
            raise ValidationError(
                f"1 validation error detected: Value '{instance}' at 'instanceId' failed to "
                "satisfy constraint: Member must have length less than or equal to 19"
            )
        if not token and not instance:
            raise ValidationError("Either a LifecycleActionToken or an InstanceId must be provided.")
        for action in self._actions().active:
            if (
                hook is not None
                and action["group"] == group
                and action["hook"] == hook_name
                and (action["token"] == token if token else action["instance"] == instance)
            ):
                return action
        if token:
            raise ValidationError(f"No active Lifecycle Action found with token {token}")
        raise ValidationError(f"No active Lifecycle Action found with instance ID {instance}")

    def complete_lifecycle_action(self) -> ActionResult:
        """CompleteLifecycleAction: ends an active lifecycle action with CONTINUE or ABANDON.

        AWS API Reference, Auto Scaling, CompleteLifecycleAction: parameters
        AutoScalingGroupName, LifecycleHookName, LifecycleActionResult (CONTINUE | ABANDON),
        and LifecycleActionToken or InstanceId; empty CompleteLifecycleActionResult. Once
        completed the action is no longer active, so a second completion fails with
        ValidationError ``No active Lifecycle Action found ...``.
        """
        result = self._required("LifecycleActionResult")
        if result not in ("CONTINUE", "ABANDON"):
            raise ValidationError(
                f"Invalid LifecycleActionResult '{result}': specify either CONTINUE or ABANDON"
            )
        action = self._active_action()
        actions = self._actions()
        actions.active.remove(action)
        actions.completions.append({**action, "result": result})
        # The instance leaves the wait state (simplified: a completed launch is in service,
        # a completed termination is terminating).
        done = "InService" if action["transition"] == LAUNCHING else "Terminating:Proceed"
        self._set_lifecycle_state(action["group"], action["instance"], done)
        return EmptyResult()

    def record_lifecycle_action_heartbeat(self) -> ActionResult:
        """RecordLifecycleActionHeartbeat: extends an active lifecycle action's timeout.

        AWS API Reference, Auto Scaling, RecordLifecycleActionHeartbeat: parameters
        AutoScalingGroupName, LifecycleHookName, LifecycleActionToken or InstanceId; empty
        result; the same ValidationError as CompleteLifecycleAction when no action is active.
        The heartbeat is recorded for DescribeTestLifecycleActions.
        """
        action = self._active_action()
        self._actions().heartbeats.append(dict(action))
        return EmptyResult()

    def register_test_lifecycle_action(self) -> tuple[int, dict[str, Any], str]:
        """Test-only: make a lifecycle action active, as AWS does when it puts an instance in
        Pending:Wait or Terminating:Wait (moto never does). Parameters AutoScalingGroupName,
        LifecycleHookName (both must exist), InstanceId, LifecycleActionToken (a UUID;
        generated when absent) and LifecycleTransition (default: the hook's). Answers JSON.
        """
        group, hook_name, hook = self._group_and_hook()
        if hook is None:
            raise ValidationError(f"No Lifecycle Hook found with name '{hook_name}' for group '{group}'")
        instance = self._required("InstanceId")
        token = self._get_param("LifecycleActionToken") or str(uuid.uuid4())
        if len(token) != 36:
            raise ValidationError(f"LifecycleActionToken must be 36 characters (a UUID), got '{token}'")
        transition = self._get_param("LifecycleTransition") or hook.lifecycle_transition or LAUNCHING
        if transition not in (LAUNCHING, TERMINATING):
            raise ValidationError(f"LifecycleTransition must be {LAUNCHING} or {TERMINATING}")
        actions = self._actions()
        for action in actions.active:
            if action["token"] == token or (
                action["group"] == group and action["hook"] == hook_name and action["instance"] == instance
            ):
                raise ValidationError(f"An active lifecycle action already exists: {json.dumps(action)}")
        action = {
            "group": group,
            "hook": hook_name,
            "instance": instance,
            "token": token,
            "transition": transition,
        }
        actions.active.append(action)
        # AWS puts the instance in the hook's wait state, which DescribeAutoScalingInstances
        # reports (AWS User Guide, Auto Scaling, "Amazon EC2 Auto Scaling instance
        # lifecycle"; warm pools: "Warmed:Pending:Wait"). Destination=WarmPool (test-only)
        # makes it a launch into the warm pool.
        warm = self._get_param("Destination") == "WarmPool"
        wait = "Pending:Wait" if transition == LAUNCHING else "Terminating:Wait"
        self._set_lifecycle_state(group, instance, ("Warmed:" + wait) if warm else wait)
        return _json_response(200, action)

    def _set_lifecycle_state(self, group: str, instance: str, state: str) -> None:
        for instance_state in self.autoscaling_backend.autoscaling_groups[group].instance_states:
            if instance_state.instance.id == instance:
                instance_state.lifecycle_state = state

    def describe_test_lifecycle_actions(self) -> tuple[int, dict[str, Any], str]:
        """Test-only: ``{"active": [...], "completions": [...], "heartbeats": [...]}``, each
        entry with group, hook, instance, token, transition (completions add result)."""
        actions = self._actions()
        return _json_response(
            200,
            {
                "active": actions.active,
                "completions": actions.completions,
                "heartbeats": actions.heartbeats,
            },
        )

    def describe_scaling_activities(self) -> ActionResult:
        """DescribeScalingActivities: one successful launch activity per instance of a group.

        AWS API Reference, Auto Scaling, DescribeScalingActivities: Activities (ActivityId,
        AutoScalingGroupName, Description ``Launching a new EC2 instance: <id>``, Cause,
        StartTime, EndTime, StatusCode, Progress), newest first, MaxRecords (1-100, default
        100) and NextToken; an unknown group yields an empty list. moto records none.
        """
        wanted_group = self._get_param("AutoScalingGroupName")
        wanted_ids = set(self._get_param("ActivityIds", []) or [])
        max_records = self._get_int_param("MaxRecords") or 100
        if not 1 <= max_records <= 100:
            raise ValidationError(
                f"1 validation error detected: Value '{max_records}' at 'maxRecords' failed to "
                "satisfy constraint: Member must have value between 1 and 100"
            )
        activities = []
        for group in self.autoscaling_backend.autoscaling_groups.values():
            if wanted_group and group.name != wanted_group:
                continue
            for state in group.instance_states:
                started = getattr(state.instance, "launch_time", None) or utcnow()
                activity_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"launch/{group.name}/{state.instance_id}"))
                if wanted_ids and activity_id not in wanted_ids:
                    continue
                activities.append(
                    {
                        "ActivityId": activity_id,
                        "AutoScalingGroupName": group.name,
                        "Description": f"Launching a new EC2 instance: {state.instance_id}",
                        "Cause": (
                            f"At {started.strftime('%Y-%m-%dT%H:%M:%SZ')} an instance was started in "
                            "response to a difference between desired and actual capacity, "
                            "increasing the capacity."
                        ),
                        "StartTime": started,
                        "EndTime": started,
                        "StatusCode": "Successful",
                        "Progress": 100,
                        "Details": "{}",
                    }
                )
        activities.sort(key=lambda a: a["StartTime"], reverse=True)
        page, next_token = _page(
            activities,
            self._get_param("NextToken"),
            max_records,
            InvalidNextToken(),
        )
        return ActionResult({"Activities": page, "NextToken": next_token})


# --------------------------------------------------------------------------------------
# Systems Manager (JSON 1.1 protocol, X-Amz-Target: AmazonSSM.<Operation>)
# --------------------------------------------------------------------------------------


def _ssm_error(code: str, message: str) -> SSMException:
    return SSMException(code, message)


_moto_targets = ssm_models.Command._get_instance_ids_from_targets


def _instance_ids_from_targets(command: Any) -> list[str]:
    """SendCommand's Targets as AWS resolves them: none when absent (moto 5.2.5 sends to
    every instance of the region), ``InstanceIds`` by id, other keys (``tag:...``) as EC2
    filters."""
    ids = [v for t in command.targets if t.get("Key") == "InstanceIds" for v in t.get("Values", [])]
    others = [t for t in command.targets if t.get("Key") != "InstanceIds"]
    if others:
        original = command.targets
        command.targets = others
        try:
            ids += _moto_targets(command)
        finally:
            command.targets = original
    return ids


class SystemsManager(SimpleSystemManagerResponse):
    """moto's SSM responses plus DescribeInstanceInformation and a stricter SendCommand."""

    def _ec2(self) -> Any:
        return ec2_backends[self.current_account][self.region]

    def _agent_status(self) -> dict[str, str]:
        return _state(self.ssm_backend, "agent_status", dict)

    def _managed_instances(self) -> list[Any]:
        """Running EC2 instances: the nodes SSM reports (AWS omits stopped and terminated)."""
        return [i for i in self._ec2().all_instances() if i.state == "running"]

    def _unusable(self, instance_ids: list[str]) -> list[str]:
        running = {i.id for i in self._managed_instances()}
        status = self._agent_status()
        return [
            i for i in instance_ids if i not in running or status.get(i, "Online") != "Online"
        ]

    def describe_instance_information(self) -> ActionResult:
        """DescribeInstanceInformation: SSM's view of the running EC2 instances.

        AWS API Reference, Systems Manager, DescribeInstanceInformation: Filters
        ([{"Key": ..., "Values": [...]}], keys InstanceIds, PingStatus, PlatformTypes,
        ResourceType, AgentVersion) or the legacy InstanceInformationFilterList
        ([{"key": ..., "valueSet": [...]}]) - not both; MaxResults 5-50 (default 10);
        NextToken. Answers InstanceInformationList entries with InstanceId, PingStatus
        (Online unless changed by SetTestAgentStatus), LastPingDateTime, AgentVersion,
        IsLatestVersion, PlatformType Linux, PlatformName, PlatformVersion, ResourceType
        EC2Instance, IPAddress, ComputerName.
        """
        filters = self._get_param("Filters")
        legacy = self._get_param("InstanceInformationFilterList")
        if filters and legacy:
            raise ValidationException(
                "Filters and InstanceInformationFilterList cannot be specified together."
            )
        conditions: list[tuple[str, list[str]]] = []
        for f in filters or []:
            conditions.append((f.get("Key", ""), f.get("Values", [])))
        for f in legacy or []:
            conditions.append((f.get("key", ""), f.get("valueSet", [])))
        max_results = self._get_int_param("MaxResults", 10)
        if not 5 <= max_results <= 50:
            bound = "greater than or equal to 5" if max_results < 5 else "less than or equal to 50"
            raise ValidationException(
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                f"satisfy constraint: Member must have value {bound}"
            )
        status = self._agent_status()
        now = utcnow()
        nodes = []
        for instance in self._managed_instances():
            node = {
                "InstanceId": instance.id,
                "PingStatus": status.get(instance.id, "Online"),
                "LastPingDateTime": now,
                "AgentVersion": AGENT_VERSION,
                "IsLatestVersion": True,
                "PlatformType": "Linux",
                "PlatformName": "Amazon Linux",
                "PlatformVersion": "2023",
                "ResourceType": "EC2Instance",
                "IPAddress": instance.private_ip,
                "ComputerName": f"ip-{str(instance.private_ip).replace('.', '-')}.ec2.internal",
            }
            if all(self._matches(node, key, values) for key, values in conditions):
                nodes.append(node)
        page, next_token = _page(
            nodes,
            self._get_param("NextToken"),
            max_results,
            _ssm_error("InvalidNextToken", "The specified token isn't valid."),
        )
        return ActionResult({"InstanceInformationList": page, "NextToken": next_token})

    @staticmethod
    def _matches(node: dict[str, Any], key: str, values: list[str]) -> bool:
        fields = {
            "InstanceIds": "InstanceId",
            "PingStatus": "PingStatus",
            "PlatformTypes": "PlatformType",
            "ResourceType": "ResourceType",
            "AgentVersion": "AgentVersion",
        }
        if key not in fields:
            raise _ssm_error("InvalidFilterKey", f"The specified key {key} isn't valid.")
        if not values:
            raise _ssm_error(
                "InvalidInstanceInformationFilterValue",
                f"The filter values for {key} must not be empty.",
            )
        return node[fields[key]] in values

    def send_command(self) -> ActionResult:
        """SendCommand, rejecting instances SSM cannot reach.

        AWS answers InvalidInstanceId (``Instances [[i-...]] not in a valid state for
        account <id>``) when an InstanceIds entry (or a Targets ``InstanceIds`` value) is not
        a running instance with an online agent; moto accepts any id. Otherwise moto's
        SendCommand runs, with its Targets resolved as AWS does (see
        ``_instance_ids_from_targets``: moto sends a command without Targets to every
        instance of the region).
        """
        instance_ids = list(self._get_param("InstanceIds", []) or [])
        for target in self._get_param("Targets", []) or []:
            if target.get("Key") == "InstanceIds":
                instance_ids += target.get("Values", [])
        unusable = self._unusable(instance_ids)
        if unusable:
            raise _ssm_error(
                "InvalidInstanceId",
                f"Instances [[{', '.join(unusable)}]] not in a valid state for account "
                f"{self.current_account}",
            )
        result = super().send_command()
        # AWS keeps the command's CloudWatchOutputConfig and lists it (ListCommands); moto
        # drops it.
        output = self._get_param("CloudWatchOutputConfig")
        commands = self.ssm_backend._commands
        if output and commands:
            commands[-1].cloud_watch_output_config = output
        return result

    def list_command_invocations(self) -> ActionResult:
        """ListCommandInvocations: one invocation per instance of a command.

        AWS API Reference, Systems Manager, ListCommandInvocations: CommandId, InstanceId,
        Details, MaxResults (1-50, default 50), NextToken; answers CommandInvocations
        (CommandId, InstanceId, InstanceName, Comment, DocumentName, DocumentVersion,
        RequestedDateTime, Status, StatusDetails, ServiceRole, CommandPlugins when Details).
        An unknown CommandId is InvalidCommandId. moto's commands all end in Success.
        """
        command_id = self._get_param("CommandId")
        instance_id = self._get_param("InstanceId")
        details = bool(self._get_param("Details", False))
        max_results = self._get_int_param("MaxResults", 50)
        if not 1 <= max_results <= 50:
            raise ValidationException(
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                "satisfy constraint: Member must have value between 1 and 50"
            )
        commands = self.ssm_backend.list_commands(command_id, None)
        invocations = []
        for command in commands:
            for invocation in command.invocations:
                if instance_id and invocation["InstanceId"] != instance_id:
                    continue
                entry = {
                    "CommandId": command.command_id,
                    "InstanceId": invocation["InstanceId"],
                    "InstanceName": "",
                    "Comment": command.comment,
                    "DocumentName": command.document_name,
                    "DocumentVersion": "$DEFAULT",
                    "RequestedDateTime": command.requested_date_time,
                    "Status": invocation["Status"],
                    "StatusDetails": invocation["StatusDetails"],
                    "StandardOutputUrl": "",
                    "StandardErrorUrl": "",
                    "ServiceRole": command.service_role_arn,
                    "NotificationConfig": command.notification_config,
                }
                if details:
                    entry["CommandPlugins"] = [
                        {
                            "Name": invocation["PluginName"],
                            "Status": invocation["Status"],
                            "StatusDetails": invocation["StatusDetails"],
                            "ResponseCode": invocation["ResponseCode"],
                            "Output": invocation["StandardOutputContent"],
                        }
                    ]
                invocations.append(entry)
        page, next_token = _page(
            invocations,
            self._get_param("NextToken"),
            max_results,
            _ssm_error("InvalidNextToken", "The specified token isn't valid."),
        )
        return ActionResult({"CommandInvocations": page, "NextToken": next_token})

    def set_test_agent_status(self) -> tuple[int, dict[str, Any], str]:
        """Test-only (target AmazonSSM.SetTestAgentStatus): set the PingStatus that
        DescribeInstanceInformation reports for a running instance, and that SendCommand
        checks. Body ``{"InstanceId": "i-...", "PingStatus": "ConnectionLost"}``."""
        instance_id = self._get_param("InstanceId")
        ping_status = self._get_param("PingStatus")
        if ping_status not in PING_STATUSES:
            raise ValidationException(f"PingStatus must be one of {', '.join(PING_STATUSES)}")
        if self._ec2().get_instance_by_id(instance_id or "") is None:
            raise _ssm_error("InvalidInstanceId", f"Instance {instance_id} does not exist")
        self._agent_status()[instance_id] = ping_status
        return _json_response(200, {"InstanceId": instance_id, "PingStatus": ping_status})


# --------------------------------------------------------------------------------------
# Route 53 (REST-XML protocol)
# --------------------------------------------------------------------------------------

_route53_lock = threading.Lock()


def _record_key(record_set: dict[str, Any]) -> tuple[str, str, str]:
    name = record_set.get("Name", "")
    if not name.endswith("."):
        name += "."
    return name.lower(), record_set.get("Type", ""), record_set.get("SetIdentifier") or ""


def _record_content(record_set: dict[str, Any]) -> tuple[Any, ...]:
    """What a DELETE must repeat exactly: TTL, values (in any order), alias target."""
    values = sorted(
        r["Value"] if isinstance(r, dict) else r for r in record_set.get("ResourceRecords") or []
    )
    alias = record_set.get("AliasTarget") or None
    if alias:
        alias = (
            alias.get("HostedZoneId"),
            str(alias.get("DNSName", "")).lower().rstrip("."),
            str(alias.get("EvaluateTargetHealth", "")).lower(),
        )
    ttl = record_set.get("TTL")
    return (str(ttl) if ttl is not None else None, tuple(values), alias)


def _stored_record(record: Any) -> dict[str, Any]:
    return {
        "Name": record.name,
        "Type": record.type,
        "SetIdentifier": record.set_identifier,
        "TTL": record.ttl,
        "ResourceRecords": list(record.records or []),
        "AliasTarget": record.alias_target,
    }


def _spell_as_stored(record_set: dict[str, Any], stored: dict[str, Any]) -> None:
    """Give a matching DELETE the stored name and value order: moto compares both exactly
    (AWS ignores name case and value order); a DELETE that differs otherwise is untouched."""
    if _record_content(record_set) == _record_content(stored):
        record_set["Name"] = stored["Name"]
        if record_set.get("ResourceRecords"):
            record_set["ResourceRecords"] = [{"Value": v} for v in stored["ResourceRecords"]]


def _describe(record_set: dict[str, Any]) -> str:
    """``[name='x.example.com.', type='A']`` (and ``set-identifier``), as AWS names a record."""
    name = record_set.get("Name", "")
    if not name.endswith("."):
        name += "."
    text = f"name='{name}', type='{record_set.get('Type', '')}'"
    if record_set.get("SetIdentifier"):
        text += f", set-identifier='{record_set['SetIdentifier']}'"
    return f"[{text}]"


class InvalidChangeBatch(Route53ClientError):
    def __init__(self, messages: list[str]):
        super().__init__("InvalidChangeBatch", f"[{', '.join(messages)}]")


class Route53Changes(Route53):
    """moto's Route 53 responses with AWS's validation of change batches."""

    def change_resource_record_sets(self) -> ActionResult:
        """ChangeResourceRecordSets: the batch is validated whole, then applied atomically.

        AWS API Reference, Route 53, ChangeResourceRecordSets: "To delete a resource record
        set, you must specify all the same values that you specified when you created it",
        and change batches are transactional. AWS answers HTTP 400 InvalidChangeBatch with
        every problem in one bracketed message, e.g. ``[Tried to delete resource record set
        [name='x.example.com.', type='A'] but it was not found]``, ``... but the values
        provided do not match the current values``, ``Tried to create resource record set
        [...] but it already exists``. moto deletes a missing or different record silently.
        """
        zone_id = self._get_param("HostedZoneId")
        changes = self._get_param("ChangeBatch.Changes") or []
        with _route53_lock:
            zone = self.backend.get_hosted_zone(zone_id)
            records = {_record_key(_stored_record(r)): _stored_record(r) for r in zone.rrsets}
            untouched = set(records)  # records of the zone no earlier change of the batch names
            problems = []
            for change in changes:
                record_set = change.get("ResourceRecordSet", {})
                key = _record_key(record_set)
                action = change.get("Action")
                current = records.get(key)
                if key in untouched and action == "DELETE" and current is not None:
                    _spell_as_stored(record_set, current)
                untouched.discard(key)
                if action == "CREATE":
                    if current is not None:
                        problems.append(
                            f"Tried to create resource record set {_describe(record_set)} but it already exists"
                        )
                    records[key] = record_set
                elif action == "DELETE":
                    if current is None:
                        problems.append(
                            f"Tried to delete resource record set {_describe(record_set)} but it was not found"
                        )
                    elif _record_content(current) != _record_content(record_set):
                        problems.append(
                            f"Tried to delete resource record set {_describe(record_set)} but the "
                            "values provided do not match the current values"
                        )
                    records.pop(key, None)
                elif action == "UPSERT":
                    records[key] = record_set
            if problems:
                raise InvalidChangeBatch(problems)
            saved_rrsets = list(zone.rrsets)
            saved_changes = copy.copy(zone.rr_changes)
            try:
                return super().change_resource_record_sets()
            except BaseException:
                zone.rrsets = saved_rrsets
                zone.rr_changes = saved_changes
                raise


# --------------------------------------------------------------------------------------
# DynamoDB: atomic writes
# --------------------------------------------------------------------------------------

_DYNAMODB_WRITES = threading.Lock()
_DYNAMODB_WRITE_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
)


def _serialized(method: Any) -> Any:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_WRITES:
            return method(self, *args, **kwargs)

    write.__name__ = method.__name__
    write.__doc__ = method.__doc__
    return write


def make_dynamodb_writes_atomic() -> None:
    """DynamoDB checks a write's ConditionExpression and applies the write atomically, so of
    two conditional writes racing on one item at most one succeeds. moto's threaded server
    checks and writes without a lock, so both can succeed; one lock around every write
    operation restores AWS's guarantee (reads stay concurrent)."""
    from moto.dynamodb.responses import DynamoHandler

    for name in _DYNAMODB_WRITE_OPERATIONS:
        setattr(DynamoHandler, name, _serialized(getattr(DynamoHandler, name)))


# --------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------


def _install(urls_module: Any, original: type, extended: type) -> None:
    """Route the service's URLs to the extended response class (before the server starts)."""
    for path, handler in list(urls_module.url_paths.items()):
        if getattr(handler, "__self__", None) is original:
            urls_module.url_paths[path] = extended.dispatch


def _list_cloud_watch_output() -> None:
    """Commands list their CloudWatchOutputConfig, as AWS's ListCommands does."""
    original = ssm_models.Command.response_object

    def response_object(self: Any) -> dict[str, Any]:
        r = original(self)
        output = getattr(self, "cloud_watch_output_config", None)
        if output:
            r["CloudWatchOutputConfig"] = output
        return r

    ssm_models.Command.response_object = response_object


def install_extensions() -> None:
    make_dynamodb_writes_atomic()
    ssm_models.Command._get_instance_ids_from_targets = _instance_ids_from_targets
    _list_cloud_watch_output()
    _install(autoscaling_urls, AutoScalingResponse, AutoScaling)
    _install(ssm_urls, SimpleSystemManagerResponse, SystemsManager)
    _install(route53_urls, Route53, Route53Changes)


def _exit_on_stdin_eof() -> None:
    try:
        sys.stdin.read()
    finally:
        os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    install_extensions()
    threading.Thread(target=_exit_on_stdin_eof, name="stdin-eof", daemon=True).start()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"ready {port}", flush=True)
    # Anything printed later (moto prints a few diagnostics) goes to stderr: nobody reads
    # stdout after the ready line, and a full pipe would block the server.
    sys.stdout = sys.stderr
    threading.Event().wait()


if __name__ == "__main__":
    main()

//! Tests of the moto harness itself (`tests/support`, `scripts/moto_server.py`): the server
//! starts, resets and answers, and its AWS-shaped extensions behave as AWS does. Only raw
//! HTTP requests here (query protocol for Auto Scaling and EC2, JSON 1.1 for SSM, REST-XML
//! for Route 53), so these tests do not depend on the AWS SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::{LAUNCHING, Moto, MotoGuard, Response, TERMINATING};

const GROUP: &str = "asg-workers";
const HOOK: &str = "launch-hook";
const TOKEN: &str = "6f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b";
const OTHER_TOKEN: &str = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";

/// A launch configuration, a group of `size` instances and a lifecycle hook, created with
/// raw Auto Scaling requests; the ids of the group's instances.
fn group_with_hook(moto: &MotoGuard, size: u32, transition: &str) -> Vec<String> {
    let ok = |r: Response, what: &str| assert_eq!(r.status, 200, "{what}: {}", r.body);
    ok(
        moto.autoscaling(
            "CreateLaunchConfiguration",
            &[
                ("LaunchConfigurationName", "lc-workers"),
                ("ImageId", "ami-12c6146b"),
                ("InstanceType", "t3.micro"),
            ],
        ),
        "CreateLaunchConfiguration",
    );
    let size = size.to_string();
    ok(
        moto.autoscaling(
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", GROUP),
                ("LaunchConfigurationName", "lc-workers"),
                ("MinSize", "0"),
                ("MaxSize", "10"),
                ("DesiredCapacity", &size),
                ("AvailabilityZones.member.1", "us-east-1a"),
            ],
        ),
        "CreateAutoScalingGroup",
    );
    ok(
        moto.autoscaling(
            "PutLifecycleHook",
            &[
                ("AutoScalingGroupName", GROUP),
                ("LifecycleHookName", HOOK),
                ("LifecycleTransition", transition),
            ],
        ),
        "PutLifecycleHook",
    );
    let groups = moto.autoscaling(
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", GROUP)],
    );
    ok(groups.clone(), "DescribeAutoScalingGroups");
    groups
        .body
        .split("<InstanceId>")
        .skip(1)
        .filter_map(|rest| rest.split("</InstanceId>").next())
        .map(str::to_owned)
        .collect()
}

fn actions(moto: &MotoGuard) -> Value {
    serde_json::from_str(&moto.test_lifecycle_actions())
        .expect("DescribeTestLifecycleActions is JSON")
}

fn complete(moto: &MotoGuard, by: (&str, &str), result: &str) -> Response {
    moto.autoscaling(
        "CompleteLifecycleAction",
        &[
            ("AutoScalingGroupName", GROUP),
            ("LifecycleHookName", HOOK),
            ("LifecycleActionResult", result),
            by,
        ],
    )
}

fn heartbeat(moto: &MotoGuard, by: (&str, &str)) -> Response {
    moto.autoscaling(
        "RecordLifecycleActionHeartbeat",
        &[
            ("AutoScalingGroupName", GROUP),
            ("LifecycleHookName", HOOK),
            by,
        ],
    )
}

/// Asserts an AWS query-protocol error: status 400, code and message.
fn assert_query_error(response: &Response, code: &str, message: &str) {
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(
        response.body.contains("<ErrorResponse"),
        "{}",
        response.body
    );
    assert_eq!(response.xml_text("Code"), Some(code), "{}", response.body);
    assert_eq!(
        response.xml_text("Message"),
        Some(message),
        "{}",
        response.body
    );
}

/// Asserts an AWS JSON 1.1 error: status 400, `__type` and message.
fn assert_json_error(response: &Response, code: &str, message: &str) {
    assert_eq!(response.status, 400, "{}", response.body);
    let error: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(error["__type"], code, "{}", response.body);
    assert_eq!(error["Message"], message, "{}", response.body);
}

// ---------------------------------------------------------------------------------------------
// the server

#[test]
fn server_starts_and_answers_on_loopback() {
    let moto = Moto::shared();
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let response = moto.autoscaling("DescribeAutoScalingGroups", &[]);
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response.body.contains("<DescribeAutoScalingGroupsResponse"),
        "{}",
        response.body
    );
}

#[test]
fn env_points_a_child_process_at_moto() {
    let moto = Moto::shared();
    let env = moto.env();
    let get = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(moto.endpoint()));
    assert_eq!(get("AWS_REGION").as_deref(), Some("us-east-1"));
    assert_eq!(get("AWS_ACCESS_KEY_ID").as_deref(), Some("testing"));
    assert_eq!(get("AWS_SECRET_ACCESS_KEY").as_deref(), Some("testing"));
    assert_eq!(get("AWS_MAX_ATTEMPTS").as_deref(), Some("1"));
    assert_eq!(get("AWS_EC2_METADATA_DISABLED").as_deref(), Some("true"));
}

#[test]
fn register_shows_the_action_and_reset_forgets_it() {
    let moto = Moto::shared();
    let instances = group_with_hook(&moto, 1, LAUNCHING);
    assert_eq!(instances.len(), 1);
    moto.register_lifecycle_action(GROUP, HOOK, &instances[0], TOKEN, LAUNCHING);

    let state = actions(&moto);
    let active = state["active"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{state}");
    assert_eq!(active[0]["group"], GROUP);
    assert_eq!(active[0]["hook"], HOOK);
    assert_eq!(active[0]["instance"], instances[0].as_str());
    assert_eq!(active[0]["token"], TOKEN);
    assert_eq!(active[0]["transition"], LAUNCHING);
    assert_eq!(state["completions"], Value::Array(vec![]));
    assert_eq!(state["heartbeats"], Value::Array(vec![]));

    moto.reset();
    let state = actions(&moto);
    assert_eq!(state["active"], Value::Array(vec![]), "{state}");
    let groups = moto.autoscaling("DescribeAutoScalingGroups", &[]);
    assert!(
        !groups.body.contains(GROUP),
        "reset keeps the group: {}",
        groups.body
    );
}

#[test]
fn each_test_starts_from_an_empty_moto() {
    // Whatever another test left behind, acquiring the server reset it.
    let moto = Moto::shared();
    let groups = moto.autoscaling("DescribeAutoScalingGroups", &[]);
    assert!(!groups.body.contains("<member>"), "{}", groups.body);
    assert_eq!(actions(&moto)["active"], Value::Array(vec![]));
}

#[test]
fn register_needs_an_existing_group_and_hook() {
    let moto = Moto::shared();
    let response = moto.autoscaling(
        "RegisterTestLifecycleAction",
        &[
            ("AutoScalingGroupName", GROUP),
            ("LifecycleHookName", HOOK),
            ("InstanceId", "i-0123456789abcdef0"),
            ("LifecycleActionToken", TOKEN),
        ],
    );
    assert_query_error(
        &response,
        "ValidationError",
        "AutoScalingGroup name not found - AutoScalingGroup 'asg-workers' not found",
    );
}

// ---------------------------------------------------------------------------------------------
// Auto Scaling lifecycle actions

#[test]
fn complete_for_an_unknown_group_is_a_validation_error() {
    let moto = Moto::shared();
    let response = complete(&moto, ("LifecycleActionToken", TOKEN), "CONTINUE");
    assert_query_error(
        &response,
        "ValidationError",
        "AutoScalingGroup name not found - AutoScalingGroup 'asg-workers' not found",
    );
}

#[test]
fn complete_succeeds_once_then_no_action_is_active() {
    let moto = Moto::shared();
    let instances = group_with_hook(&moto, 1, LAUNCHING);
    moto.register_lifecycle_action(GROUP, HOOK, &instances[0], TOKEN, LAUNCHING);

    let first = complete(&moto, ("LifecycleActionToken", TOKEN), "CONTINUE");
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body.contains("<CompleteLifecycleActionResponse")
            && first.body.contains("<CompleteLifecycleActionResult/>"),
        "{}",
        first.body
    );

    let second = complete(&moto, ("LifecycleActionToken", TOKEN), "CONTINUE");
    assert_query_error(
        &second,
        "ValidationError",
        &format!("No active Lifecycle Action found with token {TOKEN}"),
    );

    let state = actions(&moto);
    assert_eq!(state["active"], Value::Array(vec![]), "{state}");
    let completions = state["completions"].as_array().unwrap();
    assert_eq!(completions.len(), 1, "{state}");
    assert_eq!(completions[0]["token"], TOKEN);
    assert_eq!(completions[0]["instance"], instances[0].as_str());
    assert_eq!(completions[0]["result"], "CONTINUE");
}

#[test]
fn complete_by_instance_id_and_heartbeats_are_recorded() {
    let moto = Moto::shared();
    let instances = group_with_hook(&moto, 2, TERMINATING);
    moto.register_lifecycle_action(GROUP, HOOK, &instances[0], TOKEN, TERMINATING);
    moto.register_lifecycle_action(GROUP, HOOK, &instances[1], OTHER_TOKEN, TERMINATING);

    let beat = heartbeat(&moto, ("InstanceId", &instances[0]));
    assert_eq!(beat.status, 200, "{}", beat.body);
    assert!(
        beat.body
            .contains("<RecordLifecycleActionHeartbeatResponse"),
        "{}",
        beat.body
    );
    let done = complete(&moto, ("InstanceId", &instances[0]), "ABANDON");
    assert_eq!(done.status, 200, "{}", done.body);

    let again = complete(&moto, ("InstanceId", &instances[0]), "ABANDON");
    assert_query_error(
        &again,
        "ValidationError",
        &format!(
            "No active Lifecycle Action found with instance ID {}",
            instances[0]
        ),
    );
    let late_beat = heartbeat(&moto, ("LifecycleActionToken", TOKEN));
    assert_query_error(
        &late_beat,
        "ValidationError",
        &format!("No active Lifecycle Action found with token {TOKEN}"),
    );

    let state = actions(&moto);
    let active = state["active"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{state}");
    assert_eq!(active[0]["token"], OTHER_TOKEN);
    assert_eq!(state["heartbeats"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["heartbeats"][0]["instance"], instances[0].as_str());
    assert_eq!(state["completions"][0]["result"], "ABANDON");
    assert_eq!(state["completions"][0]["transition"], TERMINATING);
}

#[test]
fn complete_checks_hook_result_and_token_as_aws_does() {
    let moto = Moto::shared();
    let instances = group_with_hook(&moto, 1, LAUNCHING);
    moto.register_lifecycle_action(GROUP, HOOK, &instances[0], TOKEN, LAUNCHING);

    let other_hook = moto.autoscaling(
        "CompleteLifecycleAction",
        &[
            ("AutoScalingGroupName", GROUP),
            ("LifecycleHookName", "another-hook"),
            ("LifecycleActionResult", "CONTINUE"),
            ("LifecycleActionToken", TOKEN),
        ],
    );
    assert_query_error(
        &other_hook,
        "ValidationError",
        &format!("No active Lifecycle Action found with token {TOKEN}"),
    );

    let bad_result = complete(&moto, ("LifecycleActionToken", TOKEN), "RETRY");
    assert_eq!(bad_result.status, 400, "{}", bad_result.body);
    assert_eq!(bad_result.xml_text("Code"), Some("ValidationError"));

    let short_token = complete(&moto, ("LifecycleActionToken", "tok-1"), "CONTINUE");
    assert_query_error(
        &short_token,
        "ValidationError",
        "1 validation error detected: Value 'tok-1' at 'lifecycleActionToken' failed to \
         satisfy constraint: Member must have length greater than or equal to 36",
    );

    // None of the rejected calls completed the action.
    assert_eq!(actions(&moto)["active"].as_array().unwrap().len(), 1);
}

#[test]
fn scaling_activities_report_each_launch() {
    let moto = Moto::shared();
    let instances = group_with_hook(&moto, 3, LAUNCHING);
    let mut described = Vec::new();
    let mut token = String::new();
    loop {
        let mut params = vec![("AutoScalingGroupName", GROUP), ("MaxRecords", "2")];
        if !token.is_empty() {
            params.push(("NextToken", &token));
        }
        let page = moto.autoscaling("DescribeScalingActivities", &params);
        assert_eq!(page.status, 200, "{}", page.body);
        for part in page.body.split("<Description>").skip(1) {
            described.push(part.split("</Description>").next().unwrap().to_owned());
        }
        assert!(
            page.body
                .matches("<StatusCode>Successful</StatusCode>")
                .count()
                >= 1
        );
        match page.xml_text("NextToken") {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    described.sort();
    let mut expected: Vec<String> = instances
        .iter()
        .map(|id| format!("Launching a new EC2 instance: {id}"))
        .collect();
    expected.sort();
    assert_eq!(described, expected);
}

// ---------------------------------------------------------------------------------------------
// SSM

fn run_instances(moto: &MotoGuard, count: u32) -> Vec<String> {
    let count = count.to_string();
    let response = moto.ec2(
        "RunInstances",
        &[
            ("ImageId", "ami-12c6146b"),
            ("InstanceType", "t3.micro"),
            ("MinCount", &count),
            ("MaxCount", &count),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    response
        .body
        .split("<instanceId>")
        .skip(1)
        .filter_map(|rest| rest.split("</instanceId>").next())
        .map(str::to_owned)
        .collect()
}

fn instance_information(moto: &MotoGuard, body: &str) -> Value {
    let response = moto.ssm("DescribeInstanceInformation", body);
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.body).unwrap()
}

fn ids_of(information: &Value) -> Vec<String> {
    let mut ids: Vec<String> = information["InstanceInformationList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["InstanceId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn describe_instance_information_lists_running_instances() {
    let moto = Moto::shared();
    let mut instances = run_instances(&moto, 2);
    instances.sort();

    let all = instance_information(&moto, "{}");
    assert_eq!(ids_of(&all), instances);
    let node = &all["InstanceInformationList"][0];
    assert_eq!(node["PingStatus"], "Online");
    assert_eq!(node["PlatformType"], "Linux");
    assert_eq!(node["ResourceType"], "EC2Instance");
    assert!(node["AgentVersion"].is_string(), "{node}");

    let one = instance_information(
        &moto,
        &format!(
            r#"{{"Filters":[{{"Key":"InstanceIds","Values":["{}"]}}]}}"#,
            instances[1]
        ),
    );
    assert_eq!(ids_of(&one), vec![instances[1].clone()]);
    let legacy = instance_information(
        &moto,
        &format!(
            r#"{{"InstanceInformationFilterList":[{{"key":"InstanceIds","valueSet":["{}"]}}]}}"#,
            instances[0]
        ),
    );
    assert_eq!(ids_of(&legacy), vec![instances[0].clone()]);

    moto.set_agent_status(&instances[0], "ConnectionLost");
    let online = instance_information(
        &moto,
        r#"{"Filters":[{"Key":"PingStatus","Values":["Online"]}]}"#,
    );
    assert_eq!(ids_of(&online), vec![instances[1].clone()]);

    let too_small = moto.ssm("DescribeInstanceInformation", r#"{"MaxResults":1}"#);
    assert_json_error(
        &too_small,
        "ValidationException",
        "1 validation error detected: Value '1' at 'maxResults' failed to satisfy constraint: \
         Member must have value greater than or equal to 5",
    );
}

#[test]
fn describe_instance_information_paginates() {
    let moto = Moto::shared();
    let mut instances = run_instances(&moto, 7);
    instances.sort();
    let first = instance_information(&moto, r#"{"MaxResults":5}"#);
    assert_eq!(
        first["InstanceInformationList"].as_array().unwrap().len(),
        5
    );
    let token = first["NextToken"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = instance_information(
        &moto,
        &format!(r#"{{"MaxResults":5,"NextToken":"{token}"}}"#),
    );
    assert_eq!(
        second["InstanceInformationList"].as_array().unwrap().len(),
        2
    );
    assert!(
        second.get("NextToken").is_none_or(Value::is_null),
        "{second}"
    );
    let mut seen = [ids_of(&first), ids_of(&second)].concat();
    seen.sort();
    assert_eq!(seen, instances);
}

#[test]
fn send_command_reaches_only_known_online_instances() {
    let moto = Moto::shared();
    let instances = run_instances(&moto, 2);
    let send = |ids: &str| {
        moto.ssm(
            "SendCommand",
            &format!(
                r#"{{"DocumentName":"AWS-RunShellScript","InstanceIds":[{ids}],"Parameters":{{"commands":["true"]}}}}"#
            ),
        )
    };

    let unknown = send(r#""i-0123456789abcdef0""#);
    assert_json_error(
        &unknown,
        "InvalidInstanceId",
        "Instances [[i-0123456789abcdef0]] not in a valid state for account 123456789012",
    );

    let sent = send(&format!(r#""{}""#, instances[0]));
    assert_eq!(sent.status, 200, "{}", sent.body);
    let command: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        command["Command"]["InstanceIds"],
        Value::Array(vec![Value::String(instances[0].clone())]),
        "the command goes to the named instance only"
    );
    let command_id = command["Command"]["CommandId"].as_str().unwrap();
    let invocations = moto.ssm(
        "ListCommandInvocations",
        &format!(r#"{{"CommandId":"{command_id}","Details":true}}"#),
    );
    assert_eq!(invocations.status, 200, "{}", invocations.body);
    let invocations: Value = serde_json::from_str(&invocations.body).unwrap();
    let list = invocations["CommandInvocations"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{invocations}");
    assert_eq!(list[0]["InstanceId"], instances[0].as_str());
    assert_eq!(list[0]["Status"], "Success");

    moto.set_agent_status(&instances[1], "ConnectionLost");
    let offline = send(&format!(r#""{}""#, instances[1]));
    assert_json_error(
        &offline,
        "InvalidInstanceId",
        &format!(
            "Instances [[{}]] not in a valid state for account 123456789012",
            instances[1]
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Route 53

const ROUTE53_NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

fn route53(moto: &MotoGuard, method: &str, path: &str, body: &str) -> Response {
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/route53/aws4_request, \
                SignedHeaders=host, Signature=0";
    moto.request(
        method,
        path,
        &[("Authorization", auth), ("Content-Type", "application/xml")],
        body.as_bytes(),
    )
}

/// A hosted zone for `example.com.`; its id without the `/hostedzone/` prefix.
fn hosted_zone(moto: &MotoGuard) -> String {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><CreateHostedZoneRequest xmlns="{ROUTE53_NS}"><Name>example.com</Name><CallerReference>harness</CallerReference></CreateHostedZoneRequest>"#
    );
    let response = route53(moto, "POST", "/2013-04-01/hostedzone", &body);
    assert_eq!(response.status, 201, "{}", response.body);
    let id = response.xml_text("Id").unwrap();
    id.trim_start_matches("/hostedzone/").to_owned()
}

fn change(action: &str, name: &str, ttl: u32, values: &[&str]) -> String {
    let records: String = values
        .iter()
        .map(|value| format!("<ResourceRecord><Value>{value}</Value></ResourceRecord>"))
        .collect();
    format!(
        "<Change><Action>{action}</Action><ResourceRecordSet><Name>{name}</Name><Type>A</Type>\
         <TTL>{ttl}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet>\
         </Change>"
    )
}

fn change_batch(moto: &MotoGuard, zone: &str, changes: &[String]) -> Response {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="{ROUTE53_NS}"><ChangeBatch><Changes>{}</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#,
        changes.concat()
    );
    route53(
        moto,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/rrset/"),
        &body,
    )
}

fn a_records(moto: &MotoGuard, zone: &str) -> Vec<String> {
    let response = route53(
        moto,
        "GET",
        &format!("/2013-04-01/hostedzone/{zone}/rrset"),
        "",
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let mut names: Vec<String> = response
        .body
        .split("<ResourceRecordSet>")
        .skip(1)
        .filter(|set| set.contains("<Type>A</Type>"))
        .filter_map(|set| {
            let name = set.split("<Name>").nth(1)?.split("</Name>").next()?;
            let value = set.split("<Value>").nth(1)?.split("</Value>").next()?;
            Some(format!("{name} {value}"))
        })
        .collect();
    names.sort();
    names
}

#[test]
fn route53_rejects_deleting_a_missing_or_different_record() {
    let moto = Moto::shared();
    let zone = hosted_zone(&moto);

    let missing = change_batch(
        &moto,
        &zone,
        &[change("DELETE", "x.example.com", 60, &["192.0.2.1"])],
    );
    assert_query_error(
        &missing,
        "InvalidChangeBatch",
        "[Tried to delete resource record set [name='x.example.com.', type='A'] but it was not \
         found]",
    );

    let created = change_batch(
        &moto,
        &zone,
        &[change("CREATE", "x.example.com", 60, &["192.0.2.1"])],
    );
    assert_eq!(created.status, 200, "{}", created.body);

    for stale in [
        change("DELETE", "x.example.com", 60, &["192.0.2.2"]),
        change("DELETE", "x.example.com", 300, &["192.0.2.1"]),
    ] {
        let response = change_batch(&moto, &zone, &[stale]);
        assert_query_error(
            &response,
            "InvalidChangeBatch",
            "[Tried to delete resource record set [name='x.example.com.', type='A'] but the \
             values provided do not match the current values]",
        );
    }
    assert_eq!(a_records(&moto, &zone), vec!["x.example.com. 192.0.2.1"]);

    let exact = change_batch(
        &moto,
        &zone,
        &[change("DELETE", "x.example.com.", 60, &["192.0.2.1"])],
    );
    assert_eq!(exact.status, 200, "{}", exact.body);
    assert_eq!(a_records(&moto, &zone), Vec::<String>::new());
}

#[test]
fn route53_applies_a_batch_whole_or_not_at_all() {
    let moto = Moto::shared();
    let zone = hosted_zone(&moto);
    let rejected = change_batch(
        &moto,
        &zone,
        &[
            change("CREATE", "y.example.com", 60, &["192.0.2.7"]),
            change("DELETE", "z.example.com", 60, &["192.0.2.8"]),
        ],
    );
    assert_eq!(rejected.status, 400, "{}", rejected.body);
    assert_eq!(rejected.xml_text("Code"), Some("InvalidChangeBatch"));
    assert_eq!(
        a_records(&moto, &zone),
        Vec::<String>::new(),
        "nothing applied"
    );

    // The documented replacement: delete a record and create its successor in one batch.
    let created = change_batch(
        &moto,
        &zone,
        &[change("CREATE", "y.example.com", 60, &["192.0.2.7"])],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let replaced = change_batch(
        &moto,
        &zone,
        &[
            change("DELETE", "y.example.com", 60, &["192.0.2.7"]),
            change("CREATE", "y.example.com", 60, &["192.0.2.8"]),
            change("UPSERT", "w.example.com", 60, &["192.0.2.9"]),
        ],
    );
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        a_records(&moto, &zone),
        vec!["w.example.com. 192.0.2.9", "y.example.com. 192.0.2.8"]
    );
}

#[test]
fn route53_delete_ignores_value_order_and_name_case() {
    let moto = Moto::shared();
    let zone = hosted_zone(&moto);
    let values = ["192.0.2.1", "192.0.2.2"];
    let created = change_batch(
        &moto,
        &zone,
        &[change("CREATE", "m.example.com", 60, &values)],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let deleted = change_batch(
        &moto,
        &zone,
        &[change(
            "DELETE",
            "M.Example.com.",
            60,
            &["192.0.2.2", "192.0.2.1"],
        )],
    );
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(a_records(&moto, &zone), Vec::<String>::new());
}

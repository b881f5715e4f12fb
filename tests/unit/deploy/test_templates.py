"""deploy/aws/*.yaml and the Dockerfile against the engine: the queue catalogue, the buckets, the seed's numbers.

moto's CloudFormation creates the queues, the KMS key and the buckets' names and encryption (see
tests/integration/deploy/); what it skips (alarms, Object Lock, lifecycle, bucket policies, everything in
services.yaml) is checked here on the template itself, and by cfn-lint and checkov in `make lint`.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from config.settings import Settings
from engine.adapters.s3 import bucket_names
from engine.broker.drift import compare
from engine.broker.queues import QueueSpec
from engine.ops import cloudformation
from pipelines.registry import CATALOGUE
from tests.fixtures.services import ROOT

DEPLOY = ROOT / "deploy" / "aws"


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.loads((DEPLOY / name).read_text())
    return loaded


DATA = _load("data-plane.yaml")
SERVICES = _load("services.yaml")


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _name(props: dict[str, Any], key: str) -> str:
    """A ``!Sub "${QueuePrefix}payments.fifo"`` name with an empty prefix."""
    return str(props[key]["Fn::Sub"]).replace("${QueuePrefix}", "")


def _default(template: dict[str, Any], value: Any) -> Any:
    """A ``!Ref Parameter``'s default, or the value itself."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


QUEUES = _of_type(DATA, "AWS::SQS::Queue")
QUEUE_NAMES = {logical: _name(q["Properties"], "QueueName") for logical, q in QUEUES.items()}


def _as_sqs_attributes(logical: str) -> dict[str, str]:
    """A template queue as ``GetQueueAttributes(All)`` would answer for it (ARNs in a made-up account)."""
    props = QUEUES[logical]["Properties"]
    arn = f"arn:aws:sqs:eu-west-1:000000000000:{QUEUE_NAMES[logical]}"
    attrs = {"QueueArn": arn, "FifoQueue": str(props.get("FifoQueue", False)).lower()}
    attrs["ContentBasedDeduplication"] = str(props.get("ContentBasedDeduplication", False)).lower()
    for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
        if key in props:
            attrs[key] = str(props[key])
    if props.get("KmsMasterKeyId") == {"Ref": "DataKey"}:
        attrs["KmsMasterKeyId"] = "DataKey"
    if "RedrivePolicy" in props:
        target = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        attrs["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": f"arn:aws:sqs:eu-west-1:000000000000:{QUEUE_NAMES[target]}",
                "maxReceiveCount": props["RedrivePolicy"]["maxReceiveCount"],
            }
        )
    return attrs


def _template_attributes(spec: QueueSpec) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    by_name = {name: logical for logical, name in QUEUE_NAMES.items()}
    queue, dlq = by_name.get(spec.name()), by_name.get(spec.dlq_name())
    return (_as_sqs_attributes(queue) if queue else None, _as_sqs_attributes(dlq) if dlq else None)


def test_the_generated_blocks_are_current() -> None:
    stale = [p.name for p, text in cloudformation.render().items() if p.read_text() != text]
    assert stale == [], f"{stale} differ from the queue catalogue: run `make templates`"


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.base)
def test_each_catalogue_queue_is_in_the_template_as_the_engine_requires_it(spec: QueueSpec) -> None:
    # The drift check's own rules (engine/broker/drift.py), applied to the template instead of a live queue.
    queue, dlq = _template_attributes(spec)
    assert compare(spec, "", queue, dlq) == []


def test_a_changed_redrive_count_in_the_catalogue_is_caught() -> None:
    spec = replace(CATALOGUE[0], max_receive_count=CATALOGUE[0].max_receive_count + 7)
    queue, dlq = _template_attributes(spec)
    assert [d.attribute for d in compare(spec, "", queue, dlq)] == ["RedrivePolicy.maxReceiveCount"]
    rendered = cloudformation.render(specs=(spec, *CATALOGUE[1:]))[DEPLOY / "data-plane.yaml"]
    assert f"maxReceiveCount: {spec.max_receive_count}" in rendered


def test_the_template_has_no_queue_outside_the_catalogue() -> None:
    expected = {s.name() for s in CATALOGUE} | {s.dlq_name() for s in CATALOGUE}
    assert set(QUEUE_NAMES.values()) == expected


def test_splice_refuses_a_template_without_markers() -> None:
    with pytest.raises(cloudformation.StaleTemplateError):
        cloudformation.splice("Resources: {}\n", "queues", ["x"])


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.base)
def test_each_queue_has_the_seeds_alarms(spec: QueueSpec) -> None:
    alarms = _of_type(DATA, "AWS::CloudWatch::Alarm")
    stem = cloudformation.logical_id(spec)
    on = {
        (a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0], a["Properties"]["MetricName"]): a["Properties"]
        for a in alarms.values()
    }
    depth = on[(f"{stem}Queue", "ApproximateNumberOfMessagesVisible")]
    assert _default(DATA, depth["Threshold"]) == 1000 and depth["ComparisonOperator"] == "GreaterThanThreshold"
    oldest = on[(f"{stem}Queue", "ApproximateAgeOfOldestMessage")]
    assert _default(DATA, oldest["Threshold"]) == 900
    dead = on[(f"{stem}DeadLetterQueue", "ApproximateNumberOfMessagesVisible")]
    assert dead["Threshold"] == 0 and dead["ComparisonOperator"] == "GreaterThanThreshold"
    for alarm in (depth, oldest, dead):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


BUCKETS = {_name(b["Properties"], "BucketName"): b["Properties"] for b in _of_type(DATA, "AWS::S3::Bucket").values()}
DATA_BUCKETS = ["payments-invoices", "payments-settlements", "payments-reports", "payments-audit"]


def test_every_bucket_of_the_engine_is_in_the_template() -> None:
    assert set(bucket_names(Settings())) <= set(DATA_BUCKETS) <= set(BUCKETS)


@pytest.mark.parametrize("name", DATA_BUCKETS)
def test_data_buckets_are_kms_encrypted_versioned_private_and_archived_after_90_days(name: str) -> None:
    props = BUCKETS[name]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]}}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    (transition,) = rule["Transitions"]
    assert transition["StorageClass"].startswith("GLACIER") and _default(DATA, transition["TransitionInDays"]) == 90


def test_the_audit_bucket_is_locked_in_compliance_mode_for_seven_years() -> None:
    props = BUCKETS["payments-audit"]
    assert props["ObjectLockEnabled"] is True
    lock = props["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert _default(DATA, lock["Rule"]["DefaultRetention"]["Years"]) == 7


def test_the_kms_key_rotates() -> None:
    assert DATA["Resources"]["DataKey"]["Properties"]["EnableKeyRotation"] is True


# --- services.yaml ---------------------------------------------------------------------------------------------


def test_workers_scale_on_backlog_per_task_between_3_and_50() -> None:
    r = SERVICES["Resources"]
    target = r["WorkerScalableTarget"]["Properties"]
    assert (_default(SERVICES, target["MinCapacity"]), _default(SERVICES, target["MaxCapacity"])) == (3, 50)
    config = r["WorkerBacklogScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
    (returned,) = [m for m in metrics.values() if m.get("ReturnData")]
    expression = returned["Expression"]
    for spec in CATALOGUE:  # every work queue's visible messages, summed, over the running tasks
        queue_metric = metrics[cloudformation.metric_id(spec)]["MetricStat"]["Metric"]
        assert queue_metric["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert _name(queue_metric["Dimensions"][0], "Value") == spec.name()
        assert cloudformation.metric_id(spec) in expression
    assert metrics["tasks"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    assert re.search(r"/ IF\(tasks > 0, tasks, 1\)$", expression)


def test_web_is_behind_the_alb_on_health_ready_and_scales_on_cpu() -> None:
    r = SERVICES["Resources"]
    assert r["WebTargetGroup"]["Properties"]["HealthCheckPath"] == "/health/ready"
    policy = r["WebCpuScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert _default(SERVICES, policy["TargetValue"]) == 70


def test_one_image_three_commands_and_exactly_one_scheduler() -> None:
    r = SERVICES["Resources"]
    commands = {
        k: r[k]["Properties"]["ContainerDefinitions"][0]["Command"][:2]
        for k in ("WebTaskDefinition", "WorkerTaskDefinition", "SchedulerTaskDefinition")
    }
    assert commands == {
        "WebTaskDefinition": ["payments", "serve"],
        "WorkerTaskDefinition": ["payments", "worker"],
        "SchedulerTaskDefinition": ["payments", "scheduler"],
    }
    images = {r[k]["Properties"]["ContainerDefinitions"][0]["Image"]["Ref"] for k in commands}
    assert images == {"ImageUri"}
    scheduler = r["SchedulerService"]["Properties"]
    assert scheduler["DesiredCount"] == 1 and scheduler["DeploymentConfiguration"]["MaximumPercent"] == 100


def test_the_worker_role_gets_only_the_data_planes_queue_and_bucket_policies() -> None:
    arns = SERVICES["Resources"]["WorkerTaskRole"]["Properties"]["ManagedPolicyArns"]
    assert [a["Fn::ImportValue"]["Fn::Sub"] for a in arns] == [
        "${DataPlaneStack}-QueueConsumerPolicyArn",
        "${DataPlaneStack}-BucketAccessPolicyArn",
    ]
    assert "Policies" not in SERVICES["Resources"]["WorkerTaskRole"]["Properties"]
    consumer = DATA["Resources"]["QueueConsumerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    resources = [r for statement in consumer for r in _as_list(statement["Resource"])]
    assert all("Fn::GetAtt" in r for r in resources), "no wildcard queue or key in the consumer policy"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_database_cpu_alarm_is_the_seeds() -> None:
    alarm = SERVICES["Resources"]["DatabaseCpuAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("AWS/RDS", "CPUUtilization", 80)


def test_secrets_come_from_secrets_manager_never_the_environment() -> None:
    for k in ("WebTaskDefinition", "WorkerTaskDefinition", "SchedulerTaskDefinition"):
        container = SERVICES["Resources"][k]["Properties"]["ContainerDefinitions"][0]
        plain = {e["Name"] for e in container["Environment"]}
        secret = {s["Name"] for s in container["Secrets"] if isinstance(s, dict) and "Name" in s}
        assert {"PAYMENTS_DATABASE_URL", "PAYMENTS_STRIPE_API_KEY"} <= secret
        assert not plain & secret and not any("SECRET" in n or "KEY" in n for n in plain)


def test_api_tokens_come_from_the_identity_provider_never_a_shared_secret() -> None:
    for k in ("WebTaskDefinition", "WorkerTaskDefinition", "SchedulerTaskDefinition"):
        container = SERVICES["Resources"][k]["Properties"]["ContainerDefinitions"][0]
        names = {e["Name"] for e in container["Environment"]} | {
            s["Name"] for s in container["Secrets"] if isinstance(s, dict) and "Name" in s
        }
        assert "PAYMENTS_JWT_SECRET" not in names
    web = SERVICES["Resources"]["WebTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    plain = {e["Name"]: e["Value"] for e in web["Environment"]}
    assert plain["PAYMENTS_JWT_ISSUER"] == {"Ref": "JwtIssuer"}
    assert plain["PAYMENTS_JWT_JWKS_URL"] == {"Ref": "JwtJwksUrl"}


# --- Dockerfile ------------------------------------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()
FINAL_STAGE = DOCKERFILE[DOCKERFILE.rindex("\nFROM ") :]


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    users = re.findall(r"^USER\s+(\S+)", FINAL_STAGE, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n.*/health/live", FINAL_STAGE, re.M)


def test_the_final_stage_has_no_build_tools_and_the_install_step_is_the_locked_wheel() -> None:
    assert "pip" not in FINAL_STAGE and "apt-get" not in FINAL_STAGE and "gcc" not in FINAL_STAGE
    assert "COPY --from=build /opt/payments /opt/payments" in FINAL_STAGE
    # The build stage installs with deploy/install.sh, the very script tests/e2e/test_production_install.py runs.
    assert re.search(r"^RUN .*deploy/install\.sh /opt/payments$", DOCKERFILE, re.M)
    assert "--constraint" in (ROOT / "deploy" / "install.sh").read_text()
    assert "[local]" not in DOCKERFILE and ".[local" not in DOCKERFILE

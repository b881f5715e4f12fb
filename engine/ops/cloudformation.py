"""The queue catalogue written into the CloudFormation templates under ``deploy/aws/`` (``make templates``).

The templates are plain, hand-written YAML except for the blocks that depend on the catalogue, which sit between
``# BEGIN GENERATED: <block>`` and ``# END GENERATED: <block>`` lines and are rewritten from
:data:`pipelines.registry.CATALOGUE` here:

- ``data-plane.yaml`` / ``queues``: each queue with its DLQ (FIFO, ContentBasedDeduplication off, the catalogue's
  VisibilityTimeout, retention and redrive count, KMS), its three alarms (depth, oldest message, dead letters)
  and the IAM statements that let the services use it;
- ``services.yaml`` / ``backlog``: the metric math of the workers' target-tracking policy (messages visible on
  every work queue, over the running worker tasks).

Generating rather than copying means a change of the catalogue (a new job kind, a new redrive count) reaches the
templates by one command, and ``tests/unit/deploy/test_templates.py`` fails until it has been run.  Run
``python -m engine.ops.cloudformation`` to rewrite, ``--check`` to only report stale blocks (exit 1).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from engine.broker.queues import QueueSpec
from engine.errors import InvalidInput
from pipelines.registry import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "deploy" / "aws"
HEADER = "# Generated from the queue catalogue by `make templates`: do not edit by hand."


class StaleTemplateError(InvalidInput):
    """A template lacks a block's markers, so it cannot be brought up to date."""


def logical_id(spec: QueueSpec) -> str:
    """The CloudFormation logical-id stem of a queue: ``payments`` → ``Payments``."""
    return "".join(part.capitalize() for part in re.split(r"[-_.]", spec.base) if part)


def metric_id(spec: QueueSpec) -> str:
    """The metric-math id of a queue (lower case letters, digits and ``_``): ``payments`` → ``q_payments``."""
    return "q_" + re.sub(r"[^a-z0-9_]", "_", spec.base.lower())


def queue_resources(specs: tuple[QueueSpec, ...] = CATALOGUE.specs) -> list[str]:
    """The ``Resources`` entries of every queue, DLQ, alarm and the queue-access policies (zero-indented)."""
    body: list[str] = []
    for spec in specs:
        body += _queue_pair(spec) + _alarms(spec)
    body += _access_policies(specs)
    # The helpers write their lines as they sit under ``Resources:`` (two spaces in), which reads better.
    return [HEADER] + [line.removeprefix("  ") for line in body]


def _queue_pair(spec: QueueSpec) -> list[str]:
    stem = logical_id(spec)
    fifo = ["      FifoQueue: true", "      ContentBasedDeduplication: false"] if spec.fifo else []
    common = [
        "    DeletionPolicy: Retain",
        "    UpdateReplacePolicy: Retain",
        "    Properties:",
    ]
    tags = ["      Tags:", "        - Key: payments:queue", f"          Value: {spec.base}"]
    return [
        f"  # {spec.name()}: jobs of kind {spec.kind!r}; dead letters kept {spec.dlq_retention} s",
        f"  {stem}DeadLetterQueue:",
        "    Type: AWS::SQS::Queue",
        *common,
        f'      QueueName: !Sub "${{QueuePrefix}}{spec.dlq_name()}"',
        *fifo,
        f"      MessageRetentionPeriod: {spec.dlq_retention}",
        "      KmsMasterKeyId: !Ref DataKey",
        *tags,
        f"  {stem}Queue:",
        "    Type: AWS::SQS::Queue",
        *common,
        f'      QueueName: !Sub "${{QueuePrefix}}{spec.name()}"',
        *fifo,
        f"      VisibilityTimeout: {spec.visibility_timeout}",
        f"      MessageRetentionPeriod: {spec.retention}",
        "      KmsMasterKeyId: !Ref DataKey",
        "      RedrivePolicy:",
        f"        deadLetterTargetArn: !GetAtt {stem}DeadLetterQueue.Arn",
        f"        maxReceiveCount: {spec.max_receive_count}",
        *tags,
    ]


def _alarm(name: str, description: str, queue_resource: str, metric: str, threshold: str, periods: int) -> list[str]:
    return [
        f"  {name}:",
        "    Type: AWS::CloudWatch::Alarm",
        "    Properties:",
        f'      AlarmDescription: "{description}"',
        "      Namespace: AWS/SQS",
        f"      MetricName: {metric}",
        "      Dimensions:",
        "        - Name: QueueName",
        f"          Value: !GetAtt {queue_resource}.QueueName",
        "      Statistic: Maximum",
        "      Period: 60",
        f"      EvaluationPeriods: {periods}",
        f"      Threshold: {threshold}",
        "      ComparisonOperator: GreaterThanThreshold",
        "      TreatMissingData: notBreaching",
        "      AlarmActions: [!Ref AlarmTopic]",
        "      OKActions: [!Ref AlarmTopic]",
    ]


def _alarms(spec: QueueSpec) -> list[str]:
    stem = logical_id(spec)
    return [
        *_alarm(
            f"{stem}DepthAlarm",
            f"More than QueueDepthThreshold messages wait on {spec.name()} (the workers fall behind).",
            f"{stem}Queue",
            "ApproximateNumberOfMessagesVisible",
            "!Ref QueueDepthThreshold",
            3,
        ),
        *_alarm(
            f"{stem}OldestMessageAlarm",
            f"The oldest message on {spec.name()} waits longer than OldestMessageAgeThreshold seconds.",
            f"{stem}Queue",
            "ApproximateAgeOfOldestMessage",
            "!Ref OldestMessageAgeThreshold",
            3,
        ),
        *_alarm(
            f"{stem}DeadLettersAlarm",
            f"{spec.dlq_name()} is not empty (a job failed for good; see payments dlq ls).",
            f"{stem}DeadLetterQueue",
            "ApproximateNumberOfMessagesVisible",
            "0",
            1,
        ),
    ]


def _arns(specs: tuple[QueueSpec, ...], dlq: bool) -> list[str]:
    suffix = "DeadLetterQueue" if dlq else "Queue"
    return [f"              - !GetAtt {logical_id(s)}{suffix}.Arn" for s in specs]


def _access_policies(specs: tuple[QueueSpec, ...]) -> list[str]:
    """Two managed policies: sending jobs (web, scheduler) and consuming them (worker, scheduler)."""
    head = [
        "    Type: AWS::IAM::ManagedPolicy",
        "    Properties:",
        "      PolicyDocument:",
        '        Version: "2012-10-17"',
        "        Statement:",
    ]
    kms = [
        "          - Sid: QueueEncryption",
        "            Effect: Allow",
        "            Action: [kms:GenerateDataKey, kms:Decrypt]",
        "            Resource: !GetAtt DataKey.Arn",
    ]
    return [
        "  QueueProducerPolicy:",
        *head[:2],
        "      Description: Send jobs to the engine's work queues (the ingest and the scheduler).",
        *head[2:],
        "          - Sid: SendJobs",
        "            Effect: Allow",
        "            Action: [sqs:SendMessage, sqs:GetQueueUrl, sqs:GetQueueAttributes]",
        "            Resource:",
        *_arns(specs, dlq=False),
        *kms,
        "  QueueConsumerPolicy:",
        *head[:2],
        "      Description: Consume, re-send and dead-letter jobs (the workers and the scheduler's DLQ sweep).",
        *head[2:],
        "          - Sid: ConsumeJobs",
        "            Effect: Allow",
        "            Action:",
        "              - sqs:ReceiveMessage",
        "              - sqs:DeleteMessage",
        "              - sqs:ChangeMessageVisibility",
        "              - sqs:SendMessage",
        "              - sqs:GetQueueUrl",
        "              - sqs:GetQueueAttributes",
        "            Resource:",
        *_arns(specs, dlq=False),
        *_arns(specs, dlq=True),
        "          - Sid: ReplayDeadLetters",
        "            Effect: Allow",
        "            Action: [sqs:StartMessageMoveTask, sqs:ListMessageMoveTasks]",
        "            Resource:",
        *_arns(specs, dlq=True),
        *kms,
    ]


def backlog_metrics(specs: tuple[QueueSpec, ...] = CATALOGUE.specs) -> list[str]:
    """The target-tracking metric math of the workers: every queue's visible messages over the running tasks.

    Zero-indented entries of ``CustomizedMetricSpecification.Metrics``; the template's own ``tasks`` metric
    (ECS RunningTaskCount of the worker service) follows them.
    """
    lines = [HEADER]
    for spec in specs:
        lines += [
            f"- Id: {metric_id(spec)}",
            "  MetricStat:",
            "    Metric:",
            "      Namespace: AWS/SQS",
            "      MetricName: ApproximateNumberOfMessagesVisible",
            "      Dimensions:",
            "        - Name: QueueName",
            f'          Value: !Sub "${{QueuePrefix}}{spec.name()}"',
            "    Stat: Sum",
            "  ReturnData: false",
        ]
    total = " + ".join(metric_id(s) for s in specs)
    lines += [
        "- Id: backlog_per_task",
        "  Label: Messages visible on the work queues per running worker task",
        f"  Expression: ({total}) / IF(tasks > 0, tasks, 1)",
        "  ReturnData: true",
    ]
    return lines


#: Which block of which template is made by which function.
BLOCKS: dict[tuple[str, str], Callable[[tuple[QueueSpec, ...]], list[str]]] = {
    ("data-plane.yaml", "queues"): queue_resources,
    ("services.yaml", "backlog"): backlog_metrics,
}


def splice(text: str, block: str, lines: list[str]) -> str:
    """``text`` with the lines between ``block``'s markers replaced by ``lines``, at the markers' indentation.

    Raises:
        StaleTemplateError: the markers are missing or out of order.
    """
    begin = re.search(rf"^( *)# BEGIN GENERATED: {re.escape(block)}\b.*\n", text, re.M)
    end = re.search(rf"^ *# END GENERATED: {re.escape(block)}\b.*$", text, re.M)
    if begin is None or end is None or end.start() < begin.end():
        raise StaleTemplateError(f"no '# BEGIN/END GENERATED: {block}' markers")
    indent = begin.group(1)
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in lines)
    return text[: begin.end()] + body + text[end.start() :]


def render(directory: Path = TEMPLATE_DIR, specs: tuple[QueueSpec, ...] = CATALOGUE.specs) -> dict[Path, str]:
    """Every template with its generated blocks brought up to date (not written).

    Raises:
        StaleTemplateError: a template lacks a block's markers.
        OSError: a template cannot be read.
    """
    out: dict[Path, str] = {}
    for (file, block), make in BLOCKS.items():
        path = directory / file
        text = out.get(path) or path.read_text()
        out[path] = splice(text, block, make(specs))
    return out


def main(argv: list[str] | None = None) -> int:
    """Rewrite the templates' generated blocks; with ``--check`` only list the stale ones (exit 1 if any)."""
    parser = argparse.ArgumentParser(prog="python -m engine.ops.cloudformation", description=__doc__)
    parser.add_argument("--check", action="store_true", help="Report stale templates instead of writing them.")
    args = parser.parse_args(argv)
    stale = [path for path, text in render().items() if path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run `make templates`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in render().items():
        if path in stale:
            path.write_text(text)
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

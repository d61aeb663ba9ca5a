"""The SNS topic that alarms and the functions' own messages go to: passed in, or created here."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Names, Validations
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

def grant_publish(topic: sns.ITopic, role: iam.IRole) -> None:
    """sns:Publish on the topic, and the use of its KMS key if it has one, without wildcard actions."""
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="PublishNotifications", actions=["sns:Publish"], resources=[topic.topic_arn])
    )
    if topic.master_key is not None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptNotifications",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[topic.master_key.key_arn],
            )
        )


def resolve_topic(
    scope: Construct,
    id_: str,
    *,
    topic: sns.ITopic | None,
    email: str | None,
    encryption_key: kms.IKey | None,
) -> sns.ITopic:
    """``topic`` when given, else a new topic (SSL-only, encrypted with ``encryption_key`` if given).

    ``email`` (checked by the caller's props) subscribes that address to whichever topic is used
    (the address must confirm it).
    """
    if topic is None:
        created = sns.Topic(scope, id_, enforce_ssl=True, master_key=encryption_key)
        if encryption_key is not None:
            # CloudWatch alarms publish to an encrypted topic only if the key lets them.
            encryption_key.grant(
                iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
            )
        else:
            Validations.of(created).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SNS2",
                    reason=(
                        "Alarm and job notifications carry names and counts, never a secret. The AWS managed "
                        "SNS key would stop CloudWatch alarms from publishing; pass encryption_key to use a CMK."
                    ),
                )
            )
        topic = created
    if email is not None:
        topic.add_subscription(subscriptions.EmailSubscription(email))
    return topic


def slack_channel(
    scope: Construct, id_: str, *, topic: sns.ITopic, workspace_id: str, channel_id: str
) -> chatbot.SlackChannelConfiguration:
    """An AWS Chatbot Slack channel that receives everything published to ``topic`` (alarms and the
    functions' messages). Its role has no permissions and its guardrail is ``ReadOnlyAccess``:
    nobody in the channel can change anything in the account through it. The workspace must be
    authorized for AWS Chatbot once, in its console, before the deploy."""
    channel = chatbot.SlackChannelConfiguration(
        scope,
        id_,
        slack_channel_configuration_name=Names.unique_resource_name(scope, max_length=100) + "-" + id_,
        slack_workspace_id=workspace_id,
        slack_channel_id=channel_id,
        notification_topics=[topic],
        guardrail_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")],
        logging_level=chatbot.LoggingLevel.ERROR,
    )
    return channel

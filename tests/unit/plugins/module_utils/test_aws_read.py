"""aws_read's error mapping, with botocore's own Stubber in front of a real EC2 client (no network)."""

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.kubediag.egress.plugins.module_utils.cloud import aws_read

INSTANCE = {"InstanceId": "i-0abc", "VpcId": "vpc-1", "SubnetId": "subnet-1", "PrivateIpAddress": "10.0.1.20",
            "NetworkInterfaces": []}


def stubbed():
    client = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-secret")  # noqa: S106 - a stub, no call leaves
    return client, Stubber(client)


@pytest.mark.parametrize(("code", "reason"), [("UnauthorizedOperation", "access_denied"), ("AuthFailure", "access_denied"),
                                              ("RequestLimitExceeded", "error")])
def test_a_denied_call_names_the_iam_action(code, reason):
    client, stub = stubbed()
    stub.add_response("describe_instances", {"Reservations": [{"Instances": [INSTANCE]}]})
    stub.add_response("describe_network_interfaces", {"NetworkInterfaces": []})
    stub.add_client_error("describe_network_acls", service_error_code=code, service_message="You are not authorized")
    with stub, pytest.raises(aws_read.AwsReadError) as raised:
        aws_read.read_snapshot(client, "i-0abc")
    assert raised.value.reason == reason
    if reason == "access_denied":
        assert str(raised.value).startswith(f"AWS denied ec2:DescribeNetworkAcls ({code})")
    else:
        assert str(raised.value) == f"EC2 DescribeNetworkAcls failed: {code} You are not authorized"


def test_an_unknown_instance_says_to_check_account_and_region():
    client, stub = stubbed()
    stub.add_client_error("describe_instances", service_error_code="InvalidInstanceID.NotFound", service_message="nope")
    with stub, pytest.raises(aws_read.AwsReadError, match="does not exist in this account and region") as raised:
        aws_read.read_snapshot(client, "i-0abc")
    assert raised.value.reason == "not_found"


def test_node_egress_turns_read_failures_into_not_checked_and_bad_input_into_an_error():
    client, stub = stubbed()
    stub.add_client_error("describe_instances", service_error_code="UnauthorizedOperation")
    with stub:
        result = aws_read.node_egress(client, "i-0abc", [{"ip": "198.51.100.10", "port": 443}])
    assert result["checked"] is False and result["not_checked"]["reason"] == "access_denied"
    assert "ec2:DescribeInstances" in result["not_checked"]["message"]
    with pytest.raises(aws_read.aws_path.AwsPathError):
        aws_read.node_egress(client, "i-0abc", [{"ip": "198.51.100.10"}])


def test_a_missing_profile_is_a_credentials_problem():
    with pytest.raises(aws_read.AwsReadError, match="AWS profile 'nope' is not configured") as raised:
        aws_read.ec2_client("eu-west-1", profile="nope")
    assert raised.value.reason == "no_credentials"

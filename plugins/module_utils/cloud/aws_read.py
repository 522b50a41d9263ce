"""Reads, with boto3, the EC2 objects a node's egress path depends on, and turns read failures into a `not_checked` reason.

One snapshot per node: the instance, its network interfaces (and the one holding a pod IP), their security groups,
the VPC's network ACLs, route tables, NAT gateways and CIDRs, the internet gateways its routes name, and the managed
prefix lists its rules and routes reference. Every list call goes through a paginator; throttling is retried by
botocore's standard retry mode (jittered exponential backoff). The decision itself is aws_path.evaluate_path.
"""

import re

from ansible_collections.kubediag.egress.plugins.module_utils.cloud import aws_path

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
except ImportError as exc:  # reported by the module as a missing requirement
    BOTO3_IMPORT_ERROR = exc
    boto3 = None
else:
    BOTO3_IMPORT_ERROR = None

ACCESS_DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure", "InvalidClientTokenId",
                 "SignatureDoesNotMatch", "ExpiredToken", "RequestExpired")


class AwsReadError(Exception):
    """The cloud part cannot be checked; `reason` is a short word (no_credentials, access_denied, unreachable, not_found,
    error) and the message says what to do."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def ec2_client(region, profile=None, access_key=None, secret_key=None, session_token=None, endpoint_url=None,
               ca_bundle=None, validate_certs=True, timeout=10.0, max_attempts=5):
    """An EC2 client with bounded timeouts and botocore's standard (jittered) retries."""
    try:
        session = boto3.session.Session(profile_name=profile or None, aws_access_key_id=access_key or None,
                                        aws_secret_access_key=secret_key or None, aws_session_token=session_token or None)
    except ProfileNotFound:
        raise AwsReadError("no_credentials", f"AWS profile {profile!r} is not configured (~/.aws/config)") from None
    verify = ca_bundle if ca_bundle and validate_certs else bool(validate_certs)
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "max_attempts": max_attempts})
    try:
        return session.client("ec2", region_name=region or None, endpoint_url=endpoint_url or None, verify=verify, config=config)
    except NoRegionError:
        raise AwsReadError("error", "no AWS region: give region (cluster_network_info reports each node's), or set AWS_REGION") from None


class CallCounter:
    """Counts the API calls a client makes (retries included), for the result and the bench."""

    def __init__(self, client):
        self.calls = 0
        client.meta.events.register("before-send.ec2.*", self._count)

    def _count(self, **kwargs):
        self.calls += 1


def _paginate(client, operation, key, **kwargs):
    items = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key) or ())
    return items


def _action(operation):
    return "ec2:" + "".join(part.capitalize() for part in operation.split("_"))


def read_snapshot(client, instance_id, pod_ip=None):
    """The describe_* answers aws_path.evaluate_path takes, for one instance (and the pod IP's ENI when given)."""
    try:
        return _read(client, instance_id, pod_ip)
    except NoCredentialsError:
        raise AwsReadError("no_credentials", "no AWS credentials: set access_key/secret_key or profile on the cluster host, "
                                             "or the usual AWS_* environment (or an instance/IRSA role)") from None
    except ClientError as exc:
        error = exc.response.get("Error") or {}
        operation = exc.operation_name if hasattr(exc, "operation_name") else "an EC2 call"
        code = error.get("Code", "")
        if code in ACCESS_DENIED:
            action = _action(_snake(operation))
            raise AwsReadError("access_denied", f"AWS denied {action} ({code}): allow it for this identity "
                                                "(see the IAM policy in the aws_egress_info docs)") from None
        if code.startswith("InvalidInstanceID"):
            raise AwsReadError("not_found", f"instance {instance_id} does not exist in this account and region ({code}): "
                                            "check region and credentials belong to the cluster's account") from None
        raise AwsReadError("error", f"EC2 {operation} failed: {code} {error.get('Message', '')}".strip()) from None
    except BotoCoreError as exc:
        raise AwsReadError("unreachable", f"cannot reach EC2: {exc}") from None


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _read(client, instance_id, pod_ip):
    reservations = _paginate(client, "describe_instances", "Reservations", InstanceIds=[instance_id])
    instances = [instance for reservation in reservations for instance in reservation.get("Instances") or ()]
    if not instances:
        raise AwsReadError("not_found", f"instance {instance_id} was not found")
    instance = instances[0]
    vpc_id = instance.get("VpcId")
    interfaces = _paginate(client, "describe_network_interfaces", "NetworkInterfaces",
                           Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
    if pod_ip and not any(private.get("PrivateIpAddress") == pod_ip
                          for eni in interfaces for private in eni.get("PrivateIpAddresses") or ()):
        # security groups for pods: the pod's branch ENI is not attached to the instance itself
        interfaces += _paginate(client, "describe_network_interfaces", "NetworkInterfaces",
                                Filters=[{"Name": "addresses.private-ip-address", "Values": [pod_ip]},
                                         {"Name": "vpc-id", "Values": [vpc_id]}])
    group_ids = sorted({group["GroupId"] for eni in interfaces for group in eni.get("Groups") or ()})
    groups = _paginate(client, "describe_security_groups", "SecurityGroups",
                       Filters=[{"Name": "group-id", "Values": group_ids}]) if group_ids else []
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
    acls = _paginate(client, "describe_network_acls", "NetworkAcls", Filters=vpc_filter)
    tables = _paginate(client, "describe_route_tables", "RouteTables", Filters=vpc_filter)
    nats = _paginate(client, "describe_nat_gateways", "NatGateways", Filter=vpc_filter)
    igw_ids = sorted({route["GatewayId"] for table in tables for route in table.get("Routes") or ()
                      if str(route.get("GatewayId", "")).startswith("igw-")})
    igws = _paginate(client, "describe_internet_gateways", "InternetGateways",
                     Filters=[{"Name": "internet-gateway-id", "Values": igw_ids}]) if igw_ids else []
    vpcs = _paginate(client, "describe_vpcs", "Vpcs", VpcIds=[vpc_id])
    cidrs = sorted({assoc["CidrBlock"] for vpc in vpcs for assoc in vpc.get("CidrBlockAssociationSet") or ()
                    if (assoc.get("CidrBlockState") or {}).get("State", "associated") == "associated"}
                   | {assoc["Ipv6CidrBlock"] for vpc in vpcs for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or ()
                      if assoc.get("Ipv6CidrBlock")})
    prefix_list_ids = sorted({item["PrefixListId"] for group in groups for permission in group.get("IpPermissionsEgress") or ()
                              for item in permission.get("PrefixListIds") or ()}
                             | {route["DestinationPrefixListId"] for table in tables for route in table.get("Routes") or ()
                                if route.get("DestinationPrefixListId")})
    prefix_lists = {}
    for prefix_list_id in prefix_list_ids:
        try:
            entries = _paginate(client, "get_managed_prefix_list_entries", "Entries", PrefixListId=prefix_list_id)
        except ClientError:
            continue  # left out: aws_path says the rule's match is unknown rather than guessing
        prefix_lists[prefix_list_id] = [entry["Cidr"] for entry in entries]
    return {"instance": instance, "network_interfaces": interfaces, "security_groups": groups, "network_acls": acls,
            "route_tables": tables, "nat_gateways": nats, "internet_gateways": igws, "prefix_lists": prefix_lists,
            "vpc_cidrs": cidrs}


def node_egress(client, instance_id, destinations, pod_ip=None, snat=True):
    """One snapshot of the node's VPC path, evaluated for every destination (the answer is reused for all of them).

    Returns {"checked": True, "paths": [...], "egress_ips": [...]} or, when the cloud cannot be read,
    {"checked": False, "not_checked": {"reason", "message"}, "paths": [], "egress_ips": []}. A bad destination raises
    aws_path.AwsPathError (the caller's input, not the cloud's state)."""
    flows = [aws_path.validate_flow(destination) for destination in destinations]
    try:
        snapshot = read_snapshot(client, instance_id, pod_ip)
    except AwsReadError as exc:
        return {"checked": False, "not_checked": {"reason": exc.reason, "message": str(exc)}, "paths": [], "egress_ips": []}
    paths = []
    for destination, flow in zip(destinations, flows, strict=True):
        path = aws_path.evaluate_path(snapshot, destination, pod_ip=pod_ip, snat=snat)
        paths.append({"destination": {"ip": str(flow["destination"]), "port": flow["port"],
                                      "protocol": aws_path.PROTOCOL_NAMES[flow["protocol"]]}, **path})
    egress_ips = sorted({ip for path in paths for ip in path["egress_ips"]})
    return {"checked": True, "not_checked": None, "paths": paths, "egress_ips": egress_ips,
            "vpc_id": snapshot["instance"].get("VpcId"), "subnet_id": snapshot["instance"].get("SubnetId")}

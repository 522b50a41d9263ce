"""The lab's VPC (tests/lab/scenarios/aws/): the cloud objects in the lab's moto drive the pod's real packets, and
kubediag.egress.aws_egress_info, run against that moto, decides what the packets did.

The answer key below is written from AWS's documented behaviour for each scenario (which hop stops the flow, with which
Reachability Analyzer code, and the address the internet sees), not from the lab's or the module's code. Every lab comes
up once, all in parallel (they are independent), and is shared by the tests that read it."""

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import kubernetes
import pytest

from tests.integration.ansible_module import run_module, run_module_per_host

LAB_PARENT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lab")
if LAB_PARENT not in sys.path:
    sys.path.insert(0, LAB_PARENT)

from kdlab import Lab, system, testing  # noqa: E402
from kdlab.aws import plugin  # noqa: E402
from kdlab.build import down  # noqa: E402

pytestmark = pytest.mark.lab
SCENARIO_DIR = os.path.join(LAB_PARENT, "scenarios", "aws")
API = {"ip": "198.51.100.10", "port": 443, "url": "https://api.example.test/health"}
ALLOWLISTED = {"ip": "198.51.100.17", "port": 443, "url": "https://allowlisted.example.test/health"}
NAT_EIP, NODE_PUBLIC_IP = "203.0.113.100", "203.0.113.150"

# scenario -> (destination, HTTP status the pod gets or None when its packets are dropped, the address whoami.example.test
#              (port 80) sees or None when that is dropped too, the module's blocking hops [(hop, code)], the lab.json id
#              kind the blocking hop must name)
EXPECTED = {
    "healthy": (API, "200", NAT_EIP, [], None),
    "healthy-igw-public-ip": (API, "200", NODE_PUBLIC_IP, [], None),
    "firewall.cloud_egress_denied-sg": (API, None, NAT_EIP, [("security_group", "ENI_SG_RULES_MISMATCH")], "security_groups"),
    "firewall.cloud_egress_denied-nacl-deny": (API, None, NAT_EIP, [("nacl_node_subnet_outbound", "SUBNET_ACL_RESTRICTION")], "network_acls"),
    "firewall.cloud_egress_denied-nacl-return": (API, None, None, [("nacl_node_subnet_return", "SUBNET_ACL_RESTRICTION")], "network_acls"),
    "firewall.cloud_egress_denied-nat-subnet-nacl": (API, None, None, [("nacl_nat_subnet_from_node", "SUBNET_ACL_RESTRICTION")],
                                                     "network_acls"),
    "route.no_internet_path-no-default-route": (API, None, None, [("route", "NO_ROUTE_TO_DESTINATION")], "route_tables"),
    "route.no_internet_path-deleted-nat": (API, None, None, [("route", "BAD_STATE_ROUTE")], "route_tables"),
    "route.no_internet_path-private-nat": (API, None, None, [("nat_gateway", "NAT_GATEWAY_PRIVATE")], "nat_gateways"),
    "route.no_internet_path-igw-no-public-ip": (API, None, None, [("public_ip", "NO_PUBLIC_IP")], None),
    "endpoint.ip_allowlist": (ALLOWLISTED, "403", NAT_EIP, [], None),
}
NO_CREDENTIALS = "healthy-no-credentials"


def _up(name: str, parent: str) -> tuple[str, str]:
    lab_dir = os.path.join(parent, name)
    result = subprocess.run([sys.executable, "-m", "kdlab", "up", "--scenario", os.path.join(SCENARIO_DIR, name + ".yml"), "--lab", lab_dir],
                            env={**os.environ, "PYTHONPATH": LAB_PARENT}, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return name, lab_dir


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    parent = str(tmp_path_factory.mktemp("vpc"))
    names = [*EXPECTED, NO_CREDENTIALS]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_up, name, parent) for name in names]
        try:
            found = {name: Lab.load(lab_dir) for name, lab_dir in (f.result() for f in futures)}
        except BaseException:
            for name in names:
                down(os.path.join(parent, name))
            raise
    print(f"{len(names)} VPC labs up in {time.monotonic() - started:.1f} s")
    yield found
    for lab in found.values():
        down(lab.dir)


def curl(lab: Lab, url: str, seconds: float = 1.5) -> subprocess.CompletedProcess:
    return testing.run_in(lab, ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--connect-timeout", str(seconds),
                                "-m", str(seconds + 1), url], pod="shop/web")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def node_instance_id(lab: Lab) -> str:
    """The instance behind node-1 as a diagnosis finds it: the Node's spec.providerID, read from the lab's API server."""
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(lab.info["kubeconfig"], context="lab"))
    provider_id = api.read_node("node-1").spec.provider_id
    zone, _unused, instance_id = provider_id.removeprefix("aws:///").partition("/")
    assert zone == "eu-west-1a" and instance_id.startswith("i-"), provider_id
    return instance_id


def module_args(lab: Lab, destination: dict) -> dict:
    aws = plugin.connection(lab)
    return {"instance_id": node_instance_id(lab), "region": aws["region"], "endpoint_url": aws["endpoint_url"],
            "destinations": [{"ip": destination["ip"], "port": destination["port"]}], "timeout": 5,
            **{k: aws[k] for k in ("access_key", "secret_key") if k in aws}}


def _observe(lab: Lab, destination: dict) -> dict:
    probe = curl(lab, destination["url"])
    whoami = testing.run_in(lab, ["curl", "-sS", "-m", "3", "http://whoami.example.test/"], pod="shop/web")
    return {"probe": probe, "whoami": whoami.stdout.strip() if whoami.returncode == 0 else None}


@pytest.fixture(scope="module")
def observed(labs, tmp_path_factory):
    """What every scenario's pod saw (probes in parallel), and aws_egress_info's answer for each, all in one ansible-playbook
    run. No AWS credentials reach the module but the ones a scenario's lab.json gives (the no-credentials scenario's none)."""
    names = [*EXPECTED, NO_CREDENTIALS]
    destinations = {name: EXPECTED[name][0] if name in EXPECTED else API for name in names}
    with ThreadPoolExecutor(max_workers=6) as pool:
        seen = dict(zip(names, pool.map(lambda name: _observe(labs[name], destinations[name]), names), strict=True))
    home = str(tmp_path_factory.mktemp("ansible"))
    with pytest.MonkeyPatch.context() as env:
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.delenv(variable, raising=False)
        for variable in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
            env.setenv(variable, os.path.join(home, "none"))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        hosts = {f"h{i}": module_args(labs[name], destinations[name]) for i, name in enumerate(names)}
        results = run_module_per_host("aws_egress_info", hosts, home)
    for i, name in enumerate(names):
        seen[name]["module"] = results[f"h{i}"]
    return seen


@pytest.mark.parametrize("name", list(EXPECTED))
def test_packets_and_the_module_agree(labs, observed, name):
    lab = labs[name]
    _destination, status, seen_as, blocking, named = EXPECTED[name]
    ids = lab.info["aws"]["clusters"]["lab"]
    assert lab.info["aws"]["access_key"] and lab.info["aws"]["region"] == "eu-west-1"
    # the module was given the instance id from the Node's providerID (the API server's): it is the node's moto instance
    assert ids["provider_ids"]["node-1"] == f"aws:///eu-west-1a/{ids['instances']['node-1']}"
    assert observed[name]["module"]["instance_id"] == ids["instances"]["node-1"]
    probe = observed[name]["probe"]
    if status is None:
        assert probe.returncode == 28, (probe.returncode, probe.stdout, probe.stderr)     # dropped: the connect times out
    else:
        assert probe.stdout == status, (probe.returncode, probe.stdout, probe.stderr)
    assert observed[name]["whoami"] == seen_as
    result = observed[name]["module"]
    assert not result["failed"] and result["checked"], result
    path = result["paths"][0]
    assert [(hop["hop"], hop["code"]) for hop in path["blocking"]] == blocking, path
    assert path["result"] == ("deny" if blocking else "allow")
    if seen_as:
        assert result["egress_ips"] == [seen_as]
    if named:
        assert path["blocking"][0]["object"] in ids[named].values(), (path["blocking"][0], ids[named])
    if name.endswith("nacl-deny"):
        assert "rule 90 deny" in path["blocking"][0]["rule"]


def test_no_credentials_the_packets_work_and_the_cloud_is_not_checked(labs, observed):
    lab = labs[NO_CREDENTIALS]
    assert "access_key" not in plugin.connection(lab) and lab.info["aws"]["access_key"] is None
    assert observed[NO_CREDENTIALS]["probe"].stdout == "200" and observed[NO_CREDENTIALS]["whoami"] == NAT_EIP
    result = observed[NO_CREDENTIALS]["module"]
    assert not result["failed"] and result["checked"] is False and result["not_checked"]["reason"] == "no_credentials", result


def test_moto_answers_in_real_aws_shapes(labs):
    """The gaps FIELD_NOTES lists, as the lab's moto presents them: blackhole, 32767 entries both ways, protocol numbers."""
    lab = labs["route.no_internet_path-deleted-nat"]
    aws, ids = plugin.connection(lab), lab.info["aws"]["clusters"]["lab"]
    ec2 = boto3.client("ec2", region_name=aws["region"], endpoint_url=aws["endpoint_url"], aws_access_key_id=aws["access_key"],
                       aws_secret_access_key=aws["secret_key"])
    table = ec2.describe_route_tables(RouteTableIds=[ids["route_tables"]["private"]])["RouteTables"][0]
    default = next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
    assert default["State"] == "blackhole" and default["NatGatewayId"] == ids["nat_gateways"]["nat-a"]
    acl = ec2.create_network_acl(VpcId=ids["vpc_id"])["NetworkAcl"]
    assert sorted((e["Egress"], e["RuleNumber"], e["RuleAction"], e["Protocol"]) for e in acl["Entries"]) == [
        (False, 32767, "deny", "-1"), (True, 32767, "deny", "-1")]
    ec2.create_network_acl_entry(NetworkAclId=acl["NetworkAclId"], RuleNumber=200, Protocol="udp", RuleAction="allow", Egress=True,
                                 CidrBlock="0.0.0.0/0", PortRange={"From": 53, "To": 53})
    ec2.create_network_acl_entry(NetworkAclId=acl["NetworkAclId"], RuleNumber=100, Protocol="tcp", RuleAction="allow", Egress=True,
                                 CidrBlock="0.0.0.0/0", PortRange={"From": 443, "To": 443})
    entries = ec2.describe_network_acls(NetworkAclIds=[acl["NetworkAclId"]])["NetworkAcls"][0]["Entries"]
    assert [(e["RuleNumber"], e["Protocol"]) for e in entries if e["Egress"]] == [(100, "6"), (200, "17"), (32767, "-1")]
    ec2.delete_network_acl(NetworkAclId=acl["NetworkAclId"])


def _probe_until(lab: Lab, opened: bool, limit: float = 3.0) -> float:
    """Seconds until the pod's https to the API endpoint opens (or closes): one exec running short curls back to back,
    each a fresh connection (a dropped SYN is not retried within 0.1 s), so exec start-up is paid once."""
    condition = "until" if opened else "while"
    script = (f"end=$(( $(date +%s) + {int(limit)} )); {condition} curl -s -o /dev/null --connect-timeout 0.1 -m 1 {API['url']}; "
              "do [ $(date +%s) -lt $end ] || exit 1; done")
    started = time.monotonic()
    result = testing.run_in(lab, ["sh", "-c", script], pod="shop/web", timeout=limit + 5)
    assert result.returncode == 0, f"the path did not {'open' if opened else 'close'} within {limit} s: {result.stderr}"
    return time.monotonic() - started


def _applied_times(lab: Lab) -> list[float]:
    with open(os.path.join(lab.dir, "logs", "aws.log"), encoding="utf-8") as f:
        return [float(line.split()[0]) for line in f if " applied the rules " in line]


def test_opening_the_security_group_through_the_api_opens_the_path_within_a_second(labs, tmp_path):
    lab = labs["firewall.cloud_egress_denied-sg"]
    aws, group = plugin.connection(lab), lab.info["aws"]["clusters"]["lab"]["security_groups"]["nodes"]
    ec2 = boto3.client("ec2", region_name=aws["region"], endpoint_url=aws["endpoint_url"], aws_access_key_id=aws["access_key"],
                       aws_secret_access_key=aws["secret_key"])
    rule = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "198.51.100.10/32"}]}
    applied_before = len(_applied_times(lab))
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[rule])
    changed = time.time()
    try:
        delay = _probe_until(lab, opened=True)
        rules_delay = _applied_times(lab)[applied_before] - changed
        print(f"re-drive after authorize_security_group_egress: packets pass after {delay:.2f} s, rules applied after {rules_delay:.2f} s")
        assert delay < 1.0, delay
        result = run_module("aws_egress_info", module_args(lab, API), str(tmp_path))
        assert result["paths"][0]["result"] == "allow", result["paths"][0]["blocking"]
    finally:
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[rule])
    _probe_until(lab, opened=False)


def test_adding_the_inbound_return_rule_to_the_nacl_opens_the_path(labs):
    """Stateless NACL through the API: the missing inbound rule for the replies, added, lets them in; removed, drops them."""
    lab = labs["firewall.cloud_egress_denied-nacl-return"]
    aws, acl = plugin.connection(lab), lab.info["aws"]["clusters"]["lab"]["network_acls"]["private"]
    ec2 = boto3.client("ec2", region_name=aws["region"], endpoint_url=aws["endpoint_url"], aws_access_key_id=aws["access_key"],
                       aws_secret_access_key=aws["secret_key"])
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow", Egress=False,
                                 CidrBlock="198.51.100.0/24", PortRange={"From": 1024, "To": 65535})
    try:
        assert _probe_until(lab, opened=True) < 1.0
    finally:
        ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Egress=False)
    _probe_until(lab, opened=False)


def test_down_leaves_no_moto_process_and_no_port(labs):
    """Last: takes one shared lab down."""
    lab = labs["healthy-igw-public-ip"]
    port = int(lab.info["aws"]["endpoint_url"].rsplit(":", 1)[1])
    pid = next(e["pid"] for e in lab.journal.entries() if e["kind"] == "process" and e["name"] == "aws")
    assert system.process_start_time(pid) is not None
    # `down` from another process, as after a test run that was killed: the journal alone is enough
    result = subprocess.run([sys.executable, "-m", "kdlab", "down", "--lab", lab.dir], env={**os.environ, "PYTHONPATH": LAB_PARENT},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 3
    while not _gone(pid):      # killed; a zombie until its new parent reaps it
        assert time.monotonic() < deadline, f"moto (pid {pid}) still runs after down"
        time.sleep(0.05)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert testing.leftovers(lab.dir) == []

"""The AWS connection options every aws module of kubediag.egress shares (names and environment fallbacks as in amazon.aws)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region of the node's instance (cluster_network_info reports each node's).
      - Can also be set with E(AWS_REGION) or E(AWS_DEFAULT_REGION).
    type: str
    aliases: [aws_region]
  profile:
    description:
      - A named profile of the AWS configuration files. Can also be set with E(AWS_PROFILE).
      - Not with O(access_key), O(secret_key) or O(session_token).
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - The AWS access key id. Can also be set with E(AWS_ACCESS_KEY_ID).
      - Without any credential option, boto3's own chain applies (environment, configuration files, instance or IRSA role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - The AWS secret access key. Can also be set with E(AWS_SECRET_ACCESS_KEY).
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - The AWS session token of temporary credentials. Can also be set with E(AWS_SESSION_TOKEN).
    type: str
    aliases: [aws_session_token, security_token]
  endpoint_url:
    description:
      - The EC2 endpoint URL, for VPC endpoints, partitions with their own endpoints, or an emulator.
      - Can also be set with E(AWS_URL).
    type: str
    aliases: [aws_endpoint_url, ec2_url]
  aws_ca_bundle:
    description:
      - A CA bundle to verify the endpoint's certificate with. Can also be set with E(AWS_CA_BUNDLE).
    type: path
  validate_certs:
    description:
      - Whether to verify the endpoint's certificate.
    type: bool
    default: true
"""

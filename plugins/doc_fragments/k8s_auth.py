"""The Kubernetes connection options every k8s module of kubediag.egress shares (names as in kubernetes.core)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig content as a dictionary.
      - Defaults to E(KUBECONFIG) or C(~/.kube/config) unless O(host) is given.
      - Can also be set with E(K8S_AUTH_KUBECONFIG).
    type: raw
  context:
    description:
      - The kubeconfig context to use; the current context when omitted.
      - Can also be set with E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the API server, overriding the kubeconfig's. Can also be set with E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token for the API server. Can also be set with E(K8S_AUTH_API_KEY).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's certificate. Can also be set with E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA bundle that signs the API server's certificate. Can also be set with E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate for the API server. Can also be set with E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert). Can also be set with E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - HTTP proxy URL for reaching the API server. Can also be set with E(K8S_AUTH_PROXY).
    type: str
  no_proxy:
    description:
      - Comma-separated hosts to reach without O(proxy). Can also be set with E(K8S_AUTH_NO_PROXY).
    type: str
  backoff_retries:
    description:
      - How many times a request is retried when the API server throttles (429) or fails (5xx), with jittered
        exponential backoff that honours C(Retry-After).
    type: int
    default: 3
  backoff_delay:
    description:
      - Base delay in seconds of the first retry; it doubles on each further retry.
    type: float
    default: 0.5
  api_timeout:
    description:
      - Timeout in seconds of each API request.
    type: float
    default: 15.0
requirements:
  - python >= 3.11
  - kubernetes >= 28.1.0
"""

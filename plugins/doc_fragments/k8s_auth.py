"""The Kubernetes connection options every k8s module of kubediag.egress shares (names as in kubernetes.core)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig content as a dictionary.
      - Defaults, unless O(host) is given, to what kubectl reads, every file of E(KUBECONFIG) (a path list, merged; the first
        C(current-context) set wins), else C(~/.kube/config).
      - Can also be set with E(K8S_AUTH_KUBECONFIG).
    type: raw
  context:
    description:
      - The kubeconfig context to use; the current context when omitted. A context the kubeconfig lacks fails with the names
        of the contexts it has.
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
      - At most how many times one call is retried. Reads retry every transient failure (429, 5xx, a reset, refused or
        timed-out connection) with jittered exponential backoff that honours C(Retry-After); writes only when the API server
        surely did not act on them (429, a refused connection), so a create is never made twice.
      - An exec's websocket upgrade is retried the same way; a probe command cut mid-exec is run again (it only reads).
      - Every retry also has to fit in O(api_budget).
    type: int
    default: 8
  backoff_delay:
    description:
      - Base delay in seconds of the first retry; it doubles on each further retry, up to 5 seconds.
    type: float
    default: 0.5
  api_timeout:
    description:
      - Timeout in seconds of each API request, in total (connection and the whole answer).
    type: float
    default: 15.0
  api_budget:
    description:
      - Seconds that the retries of one module run share, from the moment it connects; once spent, a failing call fails
        with a message naming the attempts made. Defaults to 4 times O(api_timeout).
    type: float
  api_qps:
    description:
      - Client-side rate limit of the API requests of one module run, per second (a token bucket, as client-go's);
        C(0) disables it.
    type: float
    default: 10.0
  api_burst:
    description:
      - Requests that may go at once before O(api_qps) applies.
    type: int
    default: 30
requirements:
  - python >= 3.11
  - kubernetes >= 28.1.0
"""

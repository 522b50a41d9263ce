"""`python -m kdlab.aws.service <config.json>`: the lab's moto (server mode, 127.0.0.1, a free port), seeded from the
scenario's `aws:` sections, then a loop that reads each VPC through the EC2 API every POLL_SECONDS, and at once after any
write request the server answered, and, when the rules it implies changed, rewrites the cluster gateway's KD-AWS chains
(one atomic iptables-restore). Started by kdlab.aws.plugin; `down` kills it with its process group."""

import io
import json
import logging
import os
import sys
import threading
import time
from urllib.parse import parse_qs

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")   # 1300 AMIs cost ~1 s at the first EC2 call; the lab uses one fixed id

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from kdlab import system
from kdlab.aws import dataplane, seed, shapes
from kdlab.aws import spec as aws_spec

POLL_SECONDS = 0.25
READ_ONLY_ACTIONS = ("Describe", "Get", "List")


class WriteSignal:
    """A WSGI wrapper around moto that sets `written` once a request other than a read has been answered, so the data
    plane follows an API write without waiting for the next poll (reading a VPC costs ~6 calls, 50 ms each under load)."""

    def __init__(self, app):
        self.app, self.written = app, threading.Event()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
        response = self.app(environ, start_response)
        if not action.startswith(READ_ONLY_ACTIONS):
            self.written.set()
        return response


def apply(cluster: dict, text: str, sources: list[str], added: set[str]) -> None:
    # The gateway answers ARP for every address it SNATs to, so the lab's internet routes the replies back.
    new = [ip for ip in sources if ip not in added]
    if new:
        system.ip_batch(cluster["gateway_netns"], [f"addr replace {ip}/32 dev pub0" for ip in new], "adding public addresses")
        added.update(new)
    system.iptables_restore(cluster["gateway_netns"], text, f"the AWS rules of cluster {cluster['name']}", noflush=True)


def main(config_path: str) -> None:
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    shapes.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)    # a line per request, every poll: the log would only grow
    signal = WriteSignal(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, signal, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    ec2 = seed.client(endpoint)
    clusters, ids = config["clusters"], {}
    for cluster in clusters:
        ids[cluster["name"]] = seed.seed_cluster(ec2, cluster["name"], cluster["aws"], {n["name"]: n["ip"] for n in cluster["nodes"]})
        for node in cluster["nodes"]:
            node["instance_id"] = ids[cluster["name"]]["instances"][node["name"]]
    while not os.path.exists(config["go_file"]):     # the gateways exist once `up` has built the network
        time.sleep(0.02)
    current, added = {}, set()
    first = True
    while True:
        for cluster in clusters:
            try:
                started = time.monotonic()
                text, sources = dataplane.render(dataplane.read_snapshot(ec2, ids[cluster["name"]]["vpc_id"]), cluster["nodes"])
                read = time.monotonic()
                if text != current.get(cluster["name"]):
                    apply(cluster, text, sources, added)
                    current[cluster["name"]] = text
                    print(f"{time.time():.3f} applied the rules of cluster {cluster['name']} ({text.count(chr(10))} lines; read "
                          f"{1000 * (read - started):.0f} ms, applied {1000 * (time.monotonic() - read):.0f} ms)", flush=True)
            except Exception as e:     # a bad write through the API must not stop the data plane: keep the last rules
                if first:
                    raise
                print(f"{time.time():.3f} cluster {cluster['name']}: {type(e).__name__}: {e}", flush=True)
        if first:
            first = False
            state = {"endpoint_url": endpoint, "region": aws_spec.REGION, "clusters": ids}
            tmp = config["ready_file"] + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1)
            os.replace(tmp, config["ready_file"])
        signal.written.wait(POLL_SECONDS)
        signal.written.clear()


if __name__ == "__main__":
    main(sys.argv[1])

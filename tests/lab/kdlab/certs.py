"""The lab's PKI: a lab CA and its certificates, plus a separate unknown CA, written as PEM files."""

import datetime
import os

import trustme

from kdlab import world

# certificate kind -> (issuing CA, names on the certificate)
LEAF_NAMES = {
    "lab": [e.host for e in world.ENDPOINTS if e.cert == "lab"] + ["ifconfig.example.test"],
    "expired": ["expired.example.test"],
    "wrong_name": ["not-the-right-name.example.test"],
    "unknown_ca": ["untrusted.example.test"],
}


def write_pki(pki_dir: str) -> dict[str, str]:
    """Writes ca.pem + ca-key.pem (the lab CA) and <kind>.pem (key + chain) per kind; returns kind -> path."""
    os.makedirs(pki_dir, exist_ok=True)
    lab_ca, unknown_ca = trustme.CA(organization_name="kubediag lab CA"), trustme.CA(organization_name="Some Other CA")
    lab_ca.cert_pem.write_to_path(os.path.join(pki_dir, "ca.pem"))
    lab_ca.private_key_pem.write_to_path(os.path.join(pki_dir, "ca-key.pem"))    # hooks sign their own serving certificates
    unknown_ca.cert_pem.write_to_path(os.path.join(pki_dir, "unknown-ca.pem"))
    now = datetime.datetime.now(datetime.UTC)
    paths = {}
    for kind, names in LEAF_NAMES.items():
        ca = unknown_ca if kind == "unknown_ca" else lab_ca
        validity = {"not_before": now - datetime.timedelta(days=60), "not_after": now - datetime.timedelta(days=1)} if kind == "expired" else {}
        leaf = ca.issue_cert(*names, **validity)
        path = os.path.join(pki_dir, f"{kind}.pem")
        with open(path, "wb") as f:
            f.write(leaf.private_key_pem.bytes())
            for blob in leaf.cert_chain_pems:
                f.write(blob.bytes())
        paths[kind] = path
    return paths

"""The lab's AWS: a VPC in moto (server mode) whose objects drive the cluster gateway's packets (docs/lab.md)."""

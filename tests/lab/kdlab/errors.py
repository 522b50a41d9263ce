"""Errors the lab reports to its users: each message says what happened and what to do."""

NOT_ROOT = "the lab needs root (it creates network namespaces); run as root"


class LabError(Exception):
    """A lab operation failed; str(error) is the message for the user."""


class ExecNotFound(LabError):
    """The command is not in the pod's image, reported the way the container runtime reports it."""

    exit_code = 127

    def __init__(self, command: str):
        self.message = f'exec: "{command}": executable file not found in $PATH'
        super().__init__(self.message)

"""The attributes every controller-side action of kubediag.egress shares (its module file holds only the documentation).
Each module adds its own check_mode and diff_mode."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  action:
    description: Runs on the controller as an action plugin (no module round trip); this file holds its documentation.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""

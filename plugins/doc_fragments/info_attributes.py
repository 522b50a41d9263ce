"""The attributes every read-only ``_info`` module of kubediag.egress shares."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads; it runs the same way in check mode and always reports C(changed=false).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: Nothing is changed, so there is no diff.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""

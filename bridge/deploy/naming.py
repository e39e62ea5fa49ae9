"""Component and OASIS symbolic names, for the deploy modules and their users.

The rule lives in the coupling library (``bridge.transport.naming``), because
the pyoasis transport needs it and must not import deployment; this module
re-exports it so that ``bridge.deploy.naming`` keeps working.
"""
from __future__ import annotations

from bridge.transport.naming import (MEMBER_PLACEHOLDER, OASIS_NAME_MAX, check_component, check_field,
                                     check_oasis_name, member_component, member_oasis_name, oasis_name)

__all__ = ["MEMBER_PLACEHOLDER", "OASIS_NAME_MAX", "check_component", "check_field", "check_oasis_name",
           "member_component", "member_oasis_name", "oasis_name"]

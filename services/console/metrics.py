"""The console's metrics: counts by action and result code only, never an id, a reason or a name."""

from __future__ import annotations

from prometheus_client import Counter

import services.common.metrics  # noqa: F401 - no `_created` series in this process either

SIGN_INS = Counter("cpi_console_sign_ins_total", "Console sign-ins, by result.", ["result"])
HELD_ACTIONS = Counter("cpi_console_held_actions_total", "Held-intel actions in the console, by action and result.",
                       ["action", "result"])
RECONTACT = Counter("cpi_console_recontact_total", "Re-contact request steps, by step and result.",
                    ["step", "result"])
CSRF_REFUSED = Counter("cpi_console_csrf_refused_total", "Console POSTs refused for a missing or wrong CSRF token.")

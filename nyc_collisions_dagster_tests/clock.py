"""Processes that live at another moment, with nothing in Dagster mocked: libfaketime (the
`libfaketime` package's build of it), preloaded, moves the wall clock of a process and of every
child it starts by a fixed offset. Their monotonic clocks stay real, so no timeout or sleep
of theirs changes length.
"""

import math
from datetime import datetime, timezone

import libfaketime


def clock_at(moment: datetime) -> dict[str, str]:
    """The environment that starts a process whose clock reads `moment` now, and runs on from
    there at the real pace."""
    offset = math.ceil((moment - datetime.now(timezone.utc)).total_seconds())
    _, preload = libfaketime.get_reload_information()
    return {**preload, "FAKETIME": f"{offset:+d}"}

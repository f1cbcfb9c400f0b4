"""idle.py — how this machine's idle CPUs wait, for the benchmarks' headers.

On a VM, a CPU that goes idle halts, and waking it again is a trip through
the hypervisor: every request to a FUSE server, and every wakeup of a
process on the other CPU, pays it.  The guest's cpuidle-haltpoll driver
polls for a while before halting (`guest_halt_poll_ns`); these machines
boot with it set to 0.  Measured here (session 8): with 50 us of polling,
open()+close() in a tree 20.8 -> 13.4 us, an untar into a tree 4.8-6.5 ->
3.2-3.4 s, native ext4 unchanged.  So every table says which it was.
"""

PARAM = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def idle_policy():
    """One line: the cpuidle driver and governor, and guest halt polling."""
    base = "/sys/devices/system/cpu/cpuidle/"
    driver = _read(base + "current_driver") or "none"
    governor = _read(base + "current_governor") or _read(base + "current_governor_ro") or "?"
    poll = _read(PARAM)
    text = f"cpuidle driver {driver}, governor {governor}"
    if poll is not None:
        text += f", guest halt polling {int(poll) // 1000} us ({PARAM})"
    return text

"""idle.py — how this machine's idle CPUs wait, for the benchmarks' headers.

On a VM, a CPU that goes idle halts, and waking it again is a trip through
the hypervisor: every request to a FUSE server, and every wakeup of a
process on the other CPU, pays it.  The guest's cpuidle-haltpoll driver
polls for a while before halting (`guest_halt_poll_ns`); these machines
boot with it set to 0.  Measured here (session 8): with 50 us of polling,
open()+close() in a tree 20.8 -> 13.4 us, an untar into a tree 4.8-6.5 ->
3.2-3.4 s, native ext4 unchanged.  Since session 9 a busy tree server asks
for the same itself (src/lib/cpulat.h: a CPU latency request of 0 us while
requests come, where idle vCPUs halt at once; MEZZO_CPU_LATENCY=0|1
overrides).  So every table says which it was.
"""

import os

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
    # what mezzo's tree servers do about it (the rule of src/lib/cpulat.c)
    env = os.environ.get("MEZZO_CPU_LATENCY", "")
    if env:
        asks = env not in ("0", "off")
        why = f"MEZZO_CPU_LATENCY={env}"
    else:
        asks = driver == "haltpoll" and poll == "0"
        why = "by default " + ("where idle vCPUs halt at once" if asks else "only where idle vCPUs halt at once")
    text += "; busy tree servers " + ("ask" if asks else "do not ask") + f" idle CPUs to poll ({why})"
    return text

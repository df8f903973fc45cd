"""Memory estimates checked against the free memory before a large allocation.

A request that cannot fit (ten million samples held at once, a DDLS chain of a
billion steps whose noise is drawn up front) is refused at once with the
estimate and the free memory, instead of growing until the operating system's
out-of-memory killer ends this process, or another one.
"""

from __future__ import annotations

#: Share of the available memory that one request may take.
DEFAULT_FRACTION = 0.5


class MemoryBudgetError(ValueError):
    """A request needs more memory than is free."""


def available_bytes() -> int | None:
    """The memory available to new allocations, in bytes, or None if unknown.

    `MemAvailable` of `/proc/meminfo` (Linux), else psutil's `available`.

    Returns:
        Bytes, or `None` where neither source exists.
    """
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def describe(num_bytes: float) -> str:
    """`num_bytes` as a short human-readable size (`"1.2 GB"`)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= size:
            return f"{num_bytes / size:.1f} {unit}"
    return f"{int(num_bytes)} B"


def check_fits(
    estimate_bytes: float, what: str, fraction: float = DEFAULT_FRACTION
) -> None:
    """Refuses a request whose memory estimate exceeds a share of the free memory.

    Args:
        estimate_bytes: float. The bytes the request would hold at once.
        what: str. What would be held and why, for the message (it names the
            argument to lower).
        fraction: float. Share of the available memory allowed. Defaults to
            `0.5`.

    Raises:
        MemoryBudgetError: naming `what`, the estimate and the free memory.
    """
    free = available_bytes()
    if free is None or estimate_bytes <= fraction * free:
        return
    raise MemoryBudgetError(
        f"{what} would hold about {describe(estimate_bytes)} in memory at once; "
        f"{describe(free)} is free (at most {fraction:.0%} of it is used)"
    )


__all__ = ["MemoryBudgetError", "available_bytes", "check_fits", "describe"]

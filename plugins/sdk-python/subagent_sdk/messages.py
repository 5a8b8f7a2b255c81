"""Follow-up messages sent to this task while it runs (`subagent send`)."""

from typing import Optional

from ._bindings import host


def next() -> Optional[str]:  # noqa: A001 - mirrors the Rust SDK's `messages::next`
    """The next waiting message, without blocking; `None` if there is none."""
    return host.next_message()


def wait(timeout: float) -> Optional[str]:
    """Wait up to `timeout` seconds for a message; returns `None` on timeout,
    and at once when the task is cancelled."""
    return host.wait_message(_millis(timeout))


def _millis(seconds: float) -> int:
    return max(0, min(int(seconds * 1000), 2**64 - 1))

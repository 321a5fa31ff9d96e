"""The error every task answer builder raises where the reference skips a sample."""

from data_prep.rejects import ReasonError


class TaskError(ReasonError):
    """A record from which an auxiliary task cannot be derived. ``reason`` is a short slug."""

"""The exception every forwarding refusal raises (a destination refused, a target to disable first…), so
that a view catches one type and shows its message."""


class ForwardingError(ValueError):
    """A forwarding request that cannot be carried out; the message says why, in words for the admin."""

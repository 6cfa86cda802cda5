"""The one exception type the callback core raises for a badly defined or misbehaving callback."""


class CallbackError(ValueError):
    """A callback is defined or used wrongly; the message names the class, event, callback and fix."""

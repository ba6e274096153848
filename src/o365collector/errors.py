"""The one exception tree of o365collector.

O365CollectorError
  ├─ ConfigError              bad configuration: exit status 2 at start
  ├─ SourceError              a Microsoft API could not be read
  │    ├─ AuthError           credentials refused (token endpoint or API 401 after renewal)
  │    ├─ PermissionDeniedError token accepted but not allowed (403, missing role or consent)
  │    ├─ SetupError          tenant setup missing (Graph service principal, report not offered)
  │    ├─ BadRequestError     the API refused our query (400): a collector bug, loud
  │    ├─ RestartWindowError  a stored resume link is no longer valid: read the window again
  │    └─ UnavailableError    retries exhausted on transient failures (network, 5xx, 429)
  ├─ SinkError                a sink could not be started or used
  └─ StateError               the checkpoint store failed
       └─ LeaseLostError      a fenced write refused: another replica holds the tenant now

Every message names what is wrong and how to fix it, and never contains a secret.
"""

from __future__ import annotations


class O365CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class ConfigError(O365CollectorError):
    """The configuration is invalid; the message lists every problem with its key path."""


class SourceError(O365CollectorError):
    """A Microsoft API could not be read."""


class AuthError(SourceError):
    """Credentials were refused: wrong secret, unknown client, unknown tenant, expired secret."""


class PermissionDeniedError(SourceError):
    """The token was accepted but lacks a permission, a consent or a directory role."""


class SetupError(SourceError):
    """The tenant is not set up for this API (missing service principal, report not offered)."""


class BadRequestError(SourceError):
    """The API rejected the query itself; this is a collector bug and is reported loudly."""


class RestartWindowError(SourceError):
    """A stored resume link was refused; the window must be read again from its start."""


class UnavailableError(SourceError):
    """Transient failures (network, 5xx, 429, non-JSON bodies) outlasted the retry budget."""


class SinkError(O365CollectorError):
    """A sink could not be started, written or closed."""


class StateError(O365CollectorError):
    """The checkpoint store could not be read or written."""


class StateLockedError(StateError):
    """Another process holds the state directory's lock; the message names it and the fix."""


class LeaseLostError(StateError):
    """A fenced write was refused: this replica no longer holds the lease on ``tenant``.

    Another replica took the tenant over (or the lease expired): nothing was written, and
    the tenant's work must stop here, since the new owner resumes from the last commit.
    """

    def __init__(self, tenant: str, message: str) -> None:
        """``message`` names the tenant and why; ``tenant`` is kept for the caller."""
        super().__init__(message)
        self.tenant = tenant

    def __reduce__(self) -> tuple[type[LeaseLostError], tuple[str, str]]:
        """Pickled with both arguments (it may cross a process or thread pool boundary)."""
        return type(self), (self.tenant, str(self))

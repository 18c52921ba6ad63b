"""What the client raises: one base class to catch, and a message a person can act on in each."""
from __future__ import annotations


class ClientError(Exception):
    """Anything the client could not do; the message says what and why."""


class InputError(ClientError, ValueError):
    """Something passed to the client cannot be read: an empty history, a model that is not Keras, mismatched arrays."""


class ServiceError(ClientError):
    """The service refused the request; carries its status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message


class Unreachable(ClientError, ConnectionError):
    """No answer from the service: it is not running there, the network is down, or it took too long."""


class TrainingProblem(UserWarning):
    """Warned by the live callback when the service sees the run going wrong (a NaN loss, a plateau, ...)."""

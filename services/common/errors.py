"""One root exception for the project; each package adds one-line subclasses."""


class CpiError(Exception):
    """Root of every error the pipeline raises on purpose."""


class ConfigurationError(CpiError):
    """Settings or a data file (rules, keyring) are wrong; the process should stop and say why."""


class DecodeError(CpiError):
    """A message's bytes are not the contract they should be."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TransientError(CpiError):
    """Something outside the message failed (a database or server briefly away): retry, don't dead-letter."""

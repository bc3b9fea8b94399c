"""The errors `migrate` expects, each bound to the exit code the CLI turns it into.

Every message says what happened and what to do next; the CLI prints it without a traceback.
"""

from __future__ import annotations


class ExitCode:
    OK = 0  # done / go
    NO_GO = 1  # checks failed, refused
    BAD_INPUT = 2  # playbook, flags, a command not built yet
    ROLLED_BACK = 3  # failed and rolled back safely
    NEEDS_HUMAN = 4  # failed; the message says what state things are in and what to run next


class MigrateError(Exception):
    exit_code = ExitCode.NEEDS_HUMAN

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  next: {self.hint}" if self.hint else self.message


class BadInput(MigrateError):
    """The playbook or the command line is wrong; nothing was touched."""

    exit_code = ExitCode.BAD_INPUT


class PlaybookError(BadInput):
    pass


class SecretError(BadInput):
    """A secret named by the playbook cannot be read."""


class NotBuiltYet(BadInput):
    pass


class Refused(MigrateError):
    """A check or a guard said no; nothing was changed."""

    exit_code = ExitCode.NO_GO


class LockHeld(Refused):
    pass


class ExecutorError(MigrateError):
    pass


class HostKeyUnknown(ExecutorError):
    exit_code = ExitCode.BAD_INPUT


class CommandFailed(ExecutorError):
    def __init__(self, message: str, *, exit_status: int | None, stderr: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.exit_status = exit_status
        self.stderr = stderr


class CommandTimeout(ExecutorError):
    pass


class StepFailed(MigrateError):
    pass


class NeedsHuman(MigrateError):
    """Done, or stopped, in a state a human must look at; the message says which and what next."""


class RolledBack(MigrateError):
    exit_code = ExitCode.ROLLED_BACK


class SandboxError(MigrateError):
    pass

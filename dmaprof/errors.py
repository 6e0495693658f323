"""dmaprof's error hierarchy and exit codes.

Every failure a user can meet is a ``DmaprofError`` subclass carrying its exit code. The CLI
maps them to one line on stderr and ``sys.exit(code)`` in exactly one place
(``dmaprof.cli.main``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (README "Exit codes" and ``dmaprof --help``)."""

    OK = 0
    ERROR = 1  # any other dmaprof error (e.g. refusing to overwrite a file)
    USAGE = 2  # bad command line (click's own code)
    ADB_UNAVAILABLE = 3  # no adb binary, or the adb server cannot be reached
    NO_DEVICE = 4  # no device connected
    SEVERAL_DEVICES = 5  # more than one device and no -s/ANDROID_SERIAL
    UNAUTHORIZED = 6  # the device has not accepted this computer's adb key
    OFFLINE = 7  # the device is offline, or went away during the command
    DEVICE_COMMAND = 8  # a command on the device failed or timed out
    BAD_CAPTURE = 9  # an input missing or unreadable, not a capture, truncated, corrupt, newer
    BUDGET_BREACHED = 10  # `diff --fail-on`/budgets: a rule was breached (a finding, not an error)
    PARTIAL = 11  # some of several devices failed (`snapshot --all`)
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODE_HELP = """\
Exit codes:
  0    success
  1    other error
  2    usage error
  3    adb missing, its server unreachable, or not an adb server on its port
  4    no device connected
  5    several devices and no -s/ANDROID_SERIAL
  6    device unauthorized
  7    device offline or lost during the command
  8    device command failed or timed out
  9    bad input: a file missing or unreadable, not a capture, truncated,
       corrupt, or from a newer dmaprof
  10   budget breached (diff --fail-on / --budgets)
  11   some devices failed (snapshot --all)
  130  interrupted (Ctrl-C)"""


class DmaprofError(Exception):
    """Base of every error dmaprof reports to the user as one line."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class AdbUnavailableError(DmaprofError):
    exit_code = ExitCode.ADB_UNAVAILABLE


class NoDeviceError(DmaprofError):
    exit_code = ExitCode.NO_DEVICE


class SeveralDevicesError(DmaprofError):
    exit_code = ExitCode.SEVERAL_DEVICES


class UnauthorizedError(DmaprofError):
    exit_code = ExitCode.UNAUTHORIZED


class OfflineError(DmaprofError):
    exit_code = ExitCode.OFFLINE


class DeviceCommandError(DmaprofError):
    exit_code = ExitCode.DEVICE_COMMAND


class BadCaptureError(DmaprofError):
    exit_code = ExitCode.BAD_CAPTURE


class BudgetBreachedError(DmaprofError):
    exit_code = ExitCode.BUDGET_BREACHED


class InterruptedByUser(DmaprofError):
    exit_code = ExitCode.INTERRUPTED

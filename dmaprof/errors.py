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
    ERROR = 1
    USAGE = 2
    ADB_UNAVAILABLE = 3
    NO_DEVICE = 4
    SEVERAL_DEVICES = 5
    UNAUTHORIZED = 6
    OFFLINE = 7
    DEVICE_COMMAND = 8
    BAD_CAPTURE = 9
    BUDGET_BREACHED = 10  # a finding, not an error
    PARTIAL = 11
    VERDICT_UNKNOWN = 12  # neither a pass nor a breach: a rule's figure is unknown on a side
    INTERRUPTED = 130


#: what each code means, as ``dmaprof --help`` prints it (one entry per code: a test checks)
EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "other error",
    ExitCode.USAGE: "usage error",
    ExitCode.ADB_UNAVAILABLE: "adb missing, its server unreachable, or not an adb server there",
    ExitCode.NO_DEVICE: "no device connected",
    ExitCode.SEVERAL_DEVICES: "several devices and no -s/ANDROID_SERIAL",
    ExitCode.UNAUTHORIZED: "device unauthorized",
    ExitCode.OFFLINE: "device offline or lost during the command",
    ExitCode.DEVICE_COMMAND: "device command failed or timed out",
    ExitCode.BAD_CAPTURE: "bad input (missing, unreadable, not a capture, corrupt, newer schema)",
    ExitCode.BUDGET_BREACHED: "budget breached (diff --fail-on / --budgets)",
    ExitCode.PARTIAL: "some devices failed (snapshot --all)",
    ExitCode.VERDICT_UNKNOWN: "a budget rule could not be judged (unknown figure: --on-unknown)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}

EXIT_CODE_HELP = "Exit codes:\n" + "\n".join(
    f"  {code.value:<4} {EXIT_CODE_MEANINGS[code]}" for code in ExitCode
)


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


class VerdictUnknownError(DmaprofError):
    """No rule was breached, but at least one could not be judged (``--on-unknown error``)."""

    exit_code = ExitCode.VERDICT_UNKNOWN


class InterruptedByUser(DmaprofError):
    exit_code = ExitCode.INTERRUPTED

"""Human units for the terminal only; machine output always carries raw integer bytes."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value: int | None, *, lower_bound: bool = False, upper_bound: bool = False) -> str:
    """1536 -> '1.5 KiB'. Binary units, as kernel and Android memory figures are KiB-based."""
    if value is None:
        return "unknown"
    prefix = "≥ " if lower_bound else ("≤ " if upper_bound else "")
    sign = "-" if value < 0 else ""
    amount = float(abs(value))
    for unit in _UNITS:
        if amount < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{prefix}{sign}{int(amount)} B"
            return f"{prefix}{sign}{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def signed_bytes(value: int) -> str:
    return ("+" if value > 0 else "") + human_bytes(value)


def safe_text(value: object) -> str:
    """Make hostile names printable: control characters, escapes and bad UTF-8 become visible.

    Names come from the device (process names, cmdlines, buffer names) and may hold newlines,
    terminal escape sequences or invalid UTF-8. Tables show them escaped; JSON keeps them exact.
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\x00":
            out.append("\\0")
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # surrogateescape'd byte
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


def last_line(data: bytes) -> str:
    """The last non-blank line of a command's output: the part of stderr worth quoting."""
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""

"""Exceptions with messages meant for the user (printed as one line by the CLI)."""


class BenchmarkError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits non-zero."""


class UnknownNameError(BenchmarkError, KeyError):
    """An unknown dataset or model name; the message suggests close names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetError(BenchmarkError):
    """A dataset file is missing, corrupt or malformed."""


class ChecksumError(DatasetError):
    """A file's sha256 differs from the catalog's."""


class ParseError(DatasetError):
    """A malformed data file; names the file and, where known, the line."""

    def __init__(self, path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")

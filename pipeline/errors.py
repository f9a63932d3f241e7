"""Errors raised by medcite.

Every error the library raises on purpose derives from :class:`PipelineError`, so a caller can
catch one type. Messages name the file, item and value that are wrong, and what to do::

    PipelineError
    ├── InputError            bad user input: a question, an option, a settings value
    │   ├── DocumentError     one document cannot be read (encrypted, corrupt, empty, image-only, ...)
    │   └── RunMismatchError  a batch run folder holds answers made with other settings
    ├── CorpusError           a corpus cannot be materialised (unknown name, checksum mismatch, no source)
    │   └── ChecksumError     a file's sha256 differs from the manifest
    ├── IndexError_           an index folder is missing, damaged, or unreadable
    │   └── IndexMismatchError  an index was built with other settings or another model
    └── GenerationError       a generator failed (reserved for the answer stage)
        ├── ServerError       an OpenAI-compatible server answered with an HTTP error
        └── ReplyError        one model reply was cut short or held nothing usable (fails one section)

``IndexError_`` carries a trailing underscore so it never shadows the builtin ``IndexError``;
it is exported as ``pipeline.IndexLoadError`` too.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error medcite raises on purpose."""

    retryable: bool = False


class InputError(PipelineError, ValueError):
    """Bad input from the user: a question, an option, a settings value."""


class DocumentError(InputError):
    """One document cannot be ingested. The message names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CorpusError(PipelineError):
    """A corpus cannot be materialised."""


class ChecksumError(CorpusError):
    """A file's sha256 differs from the one its manifest records."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{path}: sha256 is {actual[:16]}…, the corpus manifest expects {expected[:16]}…; "
            "the mirror copy is damaged or a different version — replace it or pull again"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class IndexError_(PipelineError):  # noqa: N801 - the underscore avoids shadowing the builtin
    """An index folder is missing, damaged, or unreadable."""


IndexLoadError = IndexError_


class IndexMismatchError(IndexError_):
    """An index was built with other settings than the ones it is opened with."""

    def __init__(self, path: str, differences: dict[str, tuple[object, object]]) -> None:
        lines = ", ".join(f"{k}: index has {a!r}, settings ask {b!r}" for k, (a, b) in differences.items())
        super().__init__(
            f"{path}: index was built with other settings ({lines}); "
            "rebuild it with `medcite index build` or open it with matching settings"
        )
        self.path = path
        self.differences = differences


class GenerationError(PipelineError):
    """A generator failed to produce an answer."""

    retryable = True


class ServerError(GenerationError):
    """An OpenAI-compatible server answered with an HTTP error; ``status`` and the start of its ``body`` kept."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retryable = status in (408, 429) or status >= 500


class ReplyError(GenerationError):
    """One model reply cannot be used: cut short (``reason`` "length" or "interrupted") or holding no statement in
    the shape asked for ("unusable"). It fails the section it was for, never the whole answer: the section says
    so and the answer's stats count it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class RunMismatchError(InputError):
    """A run folder holds answers made with other settings, another index or another generator."""

    def __init__(self, path: str, differences: dict[str, tuple[object, object]]) -> None:
        lines = "; ".join(f"{k}: the run has {a!r}, now {b!r}" for k, (a, b) in differences.items())
        super().__init__(
            f"{path}: the answers there were made differently ({lines}); resuming would mix them. "
            "Choose a new --out, or pass --force to start over (the old files are moved to a previous-* folder)"
        )
        self.path = path
        self.differences = differences

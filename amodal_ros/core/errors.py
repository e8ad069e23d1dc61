"""Errors raised at the package's boundaries; messages say what is wrong and what to do."""


class CheckpointError(RuntimeError):
    """A model folder is missing, malformed, unsafe, or does not match the expected layout."""


class InputError(ValueError):
    """Frames, masks or depth given to the pipeline are inconsistent or unusable."""


class UnusableDepthError(InputError):
    """A window's camera depth holds nothing to use (no valid pixel, mixed encodings)."""


class BackendUnavailableError(RuntimeError):
    """A requested acceleration backend cannot run here (the message says why and what to do)."""


class ProcessingError(RuntimeError):
    """Models failed on some input (each failure was logged with its cause); the message says
    what was written (infer: nothing; replay: the whole bag, failed windows flagged)."""

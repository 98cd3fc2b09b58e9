"""One error type for bad input, printed as a single line."""


class InputError(ValueError):
    """Bad input: names the subject, the file and the problem on one line.

    Parameters
    ----------
    problem : str
        What is wrong, e.g. ``"image is 3D, expected a 4D run"``.
    path : str or os.PathLike, optional
        The offending file.
    subject : str, optional
        The participant the file belongs to (``sub-<id>``).
    stage : str, optional
        The rule that found the problem, when not the one raising it (an
        exclusion decided upstream, e.g. ``resample_atlas``).
    """

    def __init__(self, problem, path=None, subject=None, stage=None):
        self.problem = str(problem)
        self.path = None if path is None else str(path)
        self.subject = subject
        self.stage = stage
        super().__init__(self._format())

    def _format(self):
        parts = [p for p in (self.subject, self.path) if p]
        parts.append(" ".join(self.problem.split()))
        return ": ".join(parts)

    def with_context(self, path=None, subject=None):
        """Return a copy with the subject and/or file filled in where missing."""
        return InputError(
            self.problem,
            path=self.path if self.path is not None else path,
            subject=self.subject if self.subject is not None else subject,
            stage=self.stage,
        )

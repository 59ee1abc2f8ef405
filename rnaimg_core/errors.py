"""The one user-facing error type of rnaimg."""

from __future__ import annotations


class InputError(ValueError):
    """A problem with what the user gave us, phrased so a biologist can act on it.

    Pages show it with ``st.error``; the command line prints it and exits with
    status 2. Anything else that escapes is a bug.
    """

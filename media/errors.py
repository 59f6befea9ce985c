"""Media errors; the signaling edge maps them to docs/protocol.md codes."""


class MediaError(Exception):
    code = "internal"


class BadOffer(MediaError):
    """The SDP offer could not be parsed or negotiated."""

    code = "bad_request"


class MediaClosed(MediaError):
    """The session's media was released while the offer was being answered."""

    code = "conflict"

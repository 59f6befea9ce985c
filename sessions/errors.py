"""Domain errors. The signaling edge maps each to one docs/protocol.md error code."""


class DomainError(Exception):
    code = "internal"


class BadRequest(DomainError):
    code = "bad_request"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class Unavailable(DomainError):
    code = "unavailable"

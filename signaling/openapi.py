"""The OpenAPI 3.1 description of the HTTP API (``GET /api/v1/openapi.json``). Written
out by hand, beside the handlers it describes: the handlers are plain aiohttp, and the
document is the contract third-party kiosks and consoles code against, so it is kept
exact and checked against the running server by schemathesis in the tests."""

from __future__ import annotations

from typing import Any


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ERRORS = {
    "400": _error("malformed request (the message names the field)"),
    "401": _error("no or invalid credentials"),
    "403": _error("the caller may not do this"),
    "404": _error("no such thing"),
    "408": _error("the upload stalled (no data for a while)"),
    "409": _error("the state does not allow it"),
    "410": _error("deleted under the retention policy"),
    "413": _error("over a size limit"),
    "415": _error("not an accepted type"),
    "422": _error("unreadable content"),
    "429": _error("rate limited"),
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: ERRORS[code] for code in codes}


BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
SESSION_ID = {"name": "sid", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}}
DOCUMENT_ID = {"name": "document_id", "in": "path", "required": True,
               "schema": {"type": "string", "minLength": 1, "maxLength": 128}}
FILE_RESPONSE = {"description": "the file", "content": {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
}}
PNG_RESPONSE = {"description": "a PNG image",
                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}

NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_STRING = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"enum": ["bad_request", "unauthorized", "forbidden", "not_found",
                                  "conflict", "rate_limited", "unavailable", "internal"]},
                "message": {"type": "string"},
            },
        }},
    },
    "Names": {"type": "object", "additionalProperties": {"type": "string"}},
    "Document": {
        "type": "object",
        "required": ["document_id", "kind", "sha256", "pages"],
        "properties": {
            "document_id": {"type": "string"},
            "kind": {"type": "string"},
            "sha256": {"type": "string"},
            "pages": {"type": "integer"},
            "content_type": {"type": "string"},
            "size": {"type": "integer"},
            "created_at": {"type": "number"},
        },
    },
    "Session": {
        "type": "object",
        "required": ["session_id", "state", "department_id", "service_id"],
        "properties": {
            "session_id": {"type": "string"},
            "state": {"enum": ["queued", "ringing", "connected", "closed", "abandoned"]},
            "department_id": {"type": "string"},
            "service_id": {"type": "string"},
            "language": {"type": "string"},
            "kiosk": {"type": "object"},
            "staff_id": NULLABLE_STRING,
            "created_at": {"type": "number"},
            "answered_at": NULLABLE_NUMBER,
            "ended_at": NULLABLE_NUMBER,
            "end_reason": NULLABLE_STRING,
            "documents": {"type": "array", "items": _ref("Document")},
            "verification": {"type": ["object", "null"]},
            "case": {"oneOf": [_ref("Case"), {"type": "null"}]},
        },
    },
    "Case": {
        "type": "object",
        "required": ["receipt_no", "state", "department_id", "submitted_at"],
        "properties": {
            "receipt_no": {"type": "string"},
            "session_id": {"type": "string"},
            "department_id": {"type": "string"},
            "service_id": {"type": "string"},
            "kiosk_id": {"type": "string"},
            "staff_id": NULLABLE_STRING,
            "state": {"enum": ["submitted", "approved", "rejected"]},
            "submitted_at": {"type": "number"},
            "documents": {"type": "array"},
            "decision": {"type": ["object", "null"]},
            "result_document_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
    "PrintJob": {
        "type": "object",
        "required": ["job_id", "document_id", "title", "url"],
        "properties": {
            "job_id": {"type": "string"}, "document_id": {"type": "string"},
            "title": {"type": "string"}, "url": {"type": "string"},
            "content_type": {"type": "string"}, "pages": {"type": "integer"},
            "page_urls": {"type": "array", "items": {"type": "string"}},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/auth/login": {"post": {
        "summary": "Sign in a staff member or supervisor",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string", "minLength": 1, "maxLength": 64},
                           "password": {"type": "string", "minLength": 1, "maxLength": 1024}},
        }}}},
        "responses": {
            "200": _json({"type": "object",
                          "required": ["token", "role", "departments", "expires_at"],
                          "properties": {"token": {"type": "string"},
                                         "role": {"enum": ["staff", "supervisor"]},
                                         "departments": {"type": "array"},
                                         "display_name": {"type": "string"},
                                         "expires_at": {"type": "number"}}}),
            **_errors("400", "401", "429"),
        },
    }},
    "/api/v1/auth/logout": {"post": {
        "summary": "Sign out: every sign-in of the caller's account ends (HTTP and sockets)",
        "security": BEARER,
        "responses": {"200": _json({"type": "object", "required": ["ok"],
                                    "properties": {"ok": {"const": True}}}),
                      **_errors("401", "403")},
    }},
    "/api/v1/catalog": {"get": {
        "summary": "Departments and their services",
        "responses": {"200": _json({"type": "object", "required": ["departments"],
                                    "properties": {"departments": {"type": "array"}}})},
    }},
    "/api/v1/ice-servers": {"get": {
        "summary": "STUN/TURN servers for the caller's peer connection",
        "security": BEARER,
        "responses": {
            "200": _json({"type": "object", "required": ["ice_servers", "ttl_s"],
                          "properties": {"ice_servers": {"type": "array"},
                                         "ttl_s": {"type": "integer"},
                                         "ice_transport_policy": {"enum": ["all", "relay"]}}}),
            **_errors("401"),
        },
    }},
    "/api/v1/calls": {"get": {
        "summary": "Live sessions (supervisors)",
        "security": BEARER,
        "responses": {"200": _json({"type": "object", "required": ["calls"],
                                    "properties": {"calls": {"type": "array"}}}),
                      **_errors("401", "403")},
    }},
    "/api/v1/sessions/{sid}": {"get": {
        "summary": "A session's record",
        "security": BEARER,
        "parameters": [SESSION_ID],
        "responses": {"200": _json(_ref("Session")), **_errors("401", "403", "404")},
    }},
    "/api/v1/sessions/{sid}/documents": {"post": {
        "summary": "Upload a document (the session's kiosk)",
        "security": BEARER,
        "parameters": [SESSION_ID],
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file", "kind"],
            "properties": {"file": {"type": "string", "format": "binary"},
                           "kind": {"enum": ["id_card", "form", "supporting"]}},
        }}}},
        "responses": {"201": _json(_ref("Document"), "stored"),
                      **_errors("400", "401", "403", "404", "408", "409", "413", "415",
                               "422", "429")},
    }},
    "/api/v1/sessions/{sid}/recordings": {"get": {
        "summary": "A session's recordings (supervisors)",
        "security": BEARER,
        "parameters": [SESSION_ID],
        "responses": {"200": _json({"type": "object", "required": ["recordings"],
                                    "properties": {"recordings": {"type": "array"}}}),
                      **_errors("401", "403", "404")},
    }},
    "/api/v1/sessions/{sid}/audit": {"get": {
        "summary": "A session's audit trail and whether its chain verifies (supervisors)",
        "security": BEARER,
        "parameters": [SESSION_ID],
        "responses": {"200": _json({"type": "object", "required": ["events", "verified"],
                                    "properties": {"session_id": {"type": "string"},
                                                   "events": {"type": "array"},
                                                   "verified": {"type": "boolean"},
                                                   "break": NULLABLE_STRING}}),
                      **_errors("401", "403", "404")},
    }},
    "/api/v1/documents/{document_id}": {"get": {
        "summary": "A document's original bytes",
        "security": BEARER,
        "parameters": [DOCUMENT_ID],
        "responses": {"200": FILE_RESPONSE, **_errors("401", "403", "404", "410")},
    }},
    "/api/v1/documents/{document_id}/pages/{page}.png": {"get": {
        "summary": "A page as PNG",
        "security": BEARER,
        "parameters": [DOCUMENT_ID,
                       {"name": "page", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 1}},
                       {"name": "w", "in": "query", "schema": {"type": "integer",
                                                               "minimum": 1}}],
        "responses": {"200": PNG_RESPONSE, **_errors("400", "401", "403", "404", "410")},
    }},
    "/api/v1/signatures/{signature_id}.png": {"get": {
        "summary": "A signature's image",
        "security": BEARER,
        "parameters": [{"name": "signature_id", "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1}}],
        "responses": {"200": PNG_RESPONSE, **_errors("401", "403", "404")},
    }},
    "/api/v1/cases": {"get": {
        "summary": "Cases in a state (staff: own departments)",
        "security": BEARER,
        "parameters": [{"name": "state", "in": "query",
                        "schema": {"enum": ["submitted", "approved", "rejected"]}}],
        "responses": {"200": _json({"type": "object", "required": ["cases"], "properties": {
            "cases": {"type": "array", "items": _ref("Case")}}}),
            **_errors("400", "401", "403")},
    }},
    "/api/v1/cases/{receipt_no}": {"get": {
        "summary": "One case",
        "security": BEARER,
        "parameters": [{"name": "receipt_no", "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1}}],
        "responses": {"200": _json(_ref("Case")), **_errors("400", "401", "403", "404")},
    }},
    "/api/v1/print/lookup": {"post": {
        "summary": "The Citizen's Window: a case's printable results by receipt number",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["receipt_no"],
            "properties": {"receipt_no": {"type": "string", "minLength": 1, "maxLength": 40}},
        }}}},
        "responses": {"200": _json({"type": "object", "required": ["receipt_no", "state", "jobs"],
                                    "properties": {"receipt_no": {"type": "string"},
                                                   "state": {"enum": ["submitted", "approved",
                                                                      "rejected"]},
                                                   "jobs": {"type": "array",
                                                            "items": _ref("PrintJob")}}}),
                      **_errors("400", "404", "429")},
    }},
    "/healthz": {"get": {"summary": "The process serves",
                         "responses": {"200": _json({"type": "object"})}}},
    "/readyz": {"get": {"summary": "Store and models ready, node not shutting down",
                        "responses": {"200": _json({"type": "object"}),
                                      "503": _json({"type": "object"}, "not ready")}}},
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Smart Counter",
            "version": "1",
            "description": "The HTTP half of protocol v1; the realtime half is socket.io "
                           "(see docs/protocol.md).",
        },
        "servers": [{"url": "/"}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "a staff/supervisor sign-in token or a kiosk device token",
            }},
        },
    }

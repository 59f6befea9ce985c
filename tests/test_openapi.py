"""The OpenAPI document against the running server: schemathesis generates requests
for every operation (valid and invalid) and checks that the server neither fails nor
answers anything the document does not describe."""

from __future__ import annotations

import os
import subprocess
import sys

import aiohttp

from tests.harness import running_server

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]


async def test_the_document_is_served_and_valid(tmp_path):
    import schemathesis

    async with running_server(tmp_path) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/api/v1/openapi.json") as resp:
                assert resp.status == 200
                document = await resp.json()
    schema = schemathesis.openapi.from_dict(document)  # refuses an invalid document
    operations = {op.ok().label for op in schema.get_all_operations()}
    assert "POST /api/v1/print/lookup" in operations
    assert "POST /api/v1/sessions/{sid}/documents" in operations


def unthrottled_uploads(settings) -> None:
    """The fuzzer uploads far faster than a scanner: its answers are what is checked, not
    the upload limit's (tests/security)."""
    settings.uploads_per_minute = 100_000


async def test_schemathesis_finds_no_server_error_nor_undocumented_answer(tmp_path):
    async with running_server(tmp_path, configure=unthrottled_uploads) as server:
        for role, token in (("supervisor", await server.login("sup")),
                            ("kiosk", server.kiosk_tokens["k1"])):
            result = await _run_schemathesis(server.url, token, tmp_path / role)
            assert result.returncode == 0, f"{role}:\n{result.stdout[-6000:]}\n{result.stderr}"


async def _run_schemathesis(url: str, token: str, workdir) -> subprocess.CompletedProcess:
    import asyncio

    workdir.mkdir()
    command = [
        *SCHEMATHESIS, "run", f"{url}/api/v1/openapi.json",
        "--url", url,
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_schema_conformance",
        "--max-examples", "25",
        "--seed", "1",
        "--request-timeout", "10",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout.decode(),
                                       stderr.decode())

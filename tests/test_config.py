"""Configuration: defaults, a TOML file, the environment over it; TLS for production."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smartcounter.config import KNOWN_VARIABLES, ConfigError, load
from tests.harness import SHARED_MODELS_DIR, free_port


def test_a_file_sets_values_and_the_environment_overrides_them(tmp_path):
    config = tmp_path / "smartcounter.toml"
    config.write_text(
        'redis_url = "redis://10.0.0.5:6379/0"\n'
        "port = 9000\n"
        "recording = false\n"
        'turn_urls = ["turn:turn.example.gov:3478", "turns:turn.example.gov:5349"]\n'
        'turn_secret = "shared"\n'
        "verify_match_threshold = 0.42\n"
        'ice_servers = [{urls = ["stun:stun.example.gov:3478"]}]\n'
    )
    settings = load(config, env={"SMARTCOUNTER_PORT": "9100"})
    assert settings.redis_url == "redis://10.0.0.5:6379/0"
    assert settings.port == 9100  # the environment wins
    assert settings.recording is False
    assert settings.turn.urls == ["turn:turn.example.gov:3478", "turns:turn.example.gov:5349"]
    assert settings.verification.match_threshold == 0.42
    assert settings.ice_servers[0].urls == ["stun:stun.example.gov:3478"]
    via_env = load(env={"SMARTCOUNTER_CONFIG": str(config)})
    assert via_env.port == 9000


@pytest.mark.parametrize(
    "text,words",
    [("reddis_url = 'x'\n", "unknown settings SMARTCOUNTER_REDDIS_URL"),
     ("port = \n", "cannot read"),
     ("[redis]\nurl = 'x'\n", "must be a value"),
     ("turn_urls = ['turn:x']\n", "TURN_SECRET"),
     ("tls_cert = '/etc/cert.pem'\n", "TLS_KEY"),
     ("log_format = 'xml'\n", "LOG_FORMAT")],
)
def test_bad_files_are_explained(tmp_path, text, words):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load(config, env={})


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


async def test_serve_speaks_https_with_the_configured_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    port = free_port()
    config = tmp_path / "smartcounter.toml"
    config.write_text(f'tls_cert = "{cert}"\ntls_key = "{key}"\nlog_format = "text"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smartcounter.cli", "serve", "--port", str(port),
        "--data-dir", str(tmp_path / "data"), "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SMARTCOUNTER_MODELS_DIR": str(SHARED_MODELS_DIR)},
    )
    try:
        async with asyncio.timeout(60):
            banner = ""
            while "Smart Counter on" not in banner:
                banner = (await proc.stdout.readline()).decode()
                assert banner, "the server exited"
        assert f"https://127.0.0.1:{port}" in banner, banner
        trust = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(60):
                while True:
                    try:
                        async with http.get(f"https://127.0.0.1:{port}/healthz",
                                            ssl=trust) as resp:
                            assert resp.status == 200
                            break
                    except aiohttp.ClientConnectorError:
                        await asyncio.sleep(0.2)
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    await resp.read()
    finally:
        proc.terminate()
        await proc.wait()


def test_media_address_and_node_ttl_come_from_the_environment():
    settings = load(env={"SMARTCOUNTER_MEDIA_ADDRESS": "203.0.113.7",
                         "SMARTCOUNTER_NODE_TTL_S": "5"})
    assert (settings.media_address, settings.node_ttl_s) == ("203.0.113.7", 5.0)
    with pytest.raises(ConfigError, match="SMARTCOUNTER_MEDIA_ADDRESS must be an IP"):
        load(env={"SMARTCOUNTER_MEDIA_ADDRESS": "media.example"})


def test_the_known_variables_are_the_ones_read_and_documented():
    root = Path(__file__).resolve().parents[1]
    named = re.compile(r"SMARTCOUNTER_[A-Z_]*[A-Z]")
    special = {"SMARTCOUNTER_CONFIG"}  # names the file itself

    def found(text: str) -> set[str]:
        return {n for n in named.findall(text)
                if n not in special and not n.startswith("SMARTCOUNTER_VERIFY")}

    read = set()
    for package in ("signaling", "sessions", "media", "document_share", "smartcounter"):
        for source in (root / package).rglob("*.py"):
            read |= found(source.read_text(encoding="utf-8"))
    documented = found((root / "docs" / "configuration.md").read_text(encoding="utf-8"))
    assert read == set(KNOWN_VARIABLES), read ^ set(KNOWN_VARIABLES)
    assert documented == set(KNOWN_VARIABLES), documented ^ set(KNOWN_VARIABLES)

"""What an openai member's own options put on the wire, through the OpenAI SDK, as the loopback
provider receives it: Azure OpenAI's deployment path, `api-version` and `api-key` header (or
an Entra ID token), the organization and project headers, and a member's own headers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.testing.fake_provider import FakeProvider

from .batches import plan_of, run
from .cloud import files_containing

pytest.importorskip("openai")

AZURE_KEY = "azure-test-KEY-3c2b1a0f9e8d7c6b5a4f"
VERSION = "2024-10-21"
DEPLOYMENT = "reviews-deploy"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    for variable in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_AD_TOKEN",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_API_VERSION",
    ):
        monkeypatch.delenv(variable, raising=False)
    with FakeProvider() as server:
        yield server


def _config(path: Path, member: str) -> Path:
    path.write_text(f"[retry]\nattempts = 1\n\n[[members]]\n{member}timeout = 5\n")
    return path


def _azure(fake: FakeProvider, extra: str = "") -> str:
    return (
        f'spec = "openai:{DEPLOYMENT}"\nazure = true\nbase_url = "{fake.url}"\n'
        f'api_version = "{VERSION}"\n{extra}'
    )


def _check(cli: Any, fake: FakeProvider, config: Path) -> dict[str, Any]:
    """`panel backends check` on the config; the one request the provider received."""
    result = cli("backends", "check", "--config", str(config))
    assert result.code == 0, result.out + result.err
    (request,) = fake.stats()["recent"]
    return dict(request)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_azure_member_calls_its_deployment_with_the_api_version_and_the_api_key_header(
    cli: Any, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    request = _check(cli, fake, _config(tmp_path / "panel.toml", _azure(fake)))
    assert request["path"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={VERSION}"
    # The key goes in `api-key`, and no Authorization header is sent beside it.
    assert (request["auth_scheme"], request["auth_key_sha256"]) == ("api-key", _sha(AZURE_KEY))
    assert request["status"] == 200 and request["model"] == DEPLOYMENT
    # Azure is OpenAI's own service: the strict schema and the newer token parameter.
    assert request["form"] == "json_schema" and "max_completion_tokens" in request["body"]


def test_azure_member_with_an_entra_token_sends_it_as_a_bearer(
    cli: Any, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "entra-token-7a6b5c4d3e2f")
    request = _check(cli, fake, _config(tmp_path / "panel.toml", _azure(fake)))
    assert request["path"].startswith(f"/openai/deployments/{DEPLOYMENT}/chat/completions?")
    assert (request["auth_scheme"], request["auth_key_sha256"]) == (
        "bearer",
        _sha("entra-token-7a6b5c4d3e2f"),
    )


@pytest.mark.parametrize(
    ("option", "said"),
    [("azure = true\n", "azure needs api_version"), (f'api_version = "{VERSION}"\n', "is for azure = true")],
    ids=["azure-without-version", "version-without-azure"],
)
def test_azure_and_api_version_go_together_or_one_line_and_exit_2(
    cli: Any,
    fake: FakeProvider,
    tmp_path: Path,
    runs_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    said: str,
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    member = f'spec = "openai:{DEPLOYMENT}"\n{option}base_url = "{fake.url}"\n'
    config = _config(tmp_path / "panel.toml", member)
    result = cli("compare", "ollama", "vllm", "--config", str(config), "--out", str(runs_dir))
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "members[0].api_version" in line and said in line
    assert not runs_dir.exists() and fake.stats()["requests"] == 0


def test_azure_member_without_its_key_names_the_azure_variable(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-azure-0000")  # never sent to Azure
    config = _config(tmp_path / "panel.toml", _azure(fake))
    result = cli("compare", "ollama", "vllm", "--config", str(config), "--out", str(runs_dir))
    assert result.code == 2
    assert "AZURE_OPENAI_API_KEY" in result.err and fake.stats()["requests"] == 0


def test_organization_project_and_own_headers_reach_the_wire(
    cli: Any, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-headers-1234")
    member = (
        f'spec = "openai:gpt-4.1-mini"\nbase_url = "{fake.base_url("openai")}"\n'
        'organization = "org-panel"\nproject = "proj-panel"\n'
        'headers = { "X-Gateway-Route" = "reviews", "X-Team" = "editors" }\n'
    )
    request = _check(cli, fake, _config(tmp_path / "panel.toml", member))
    headers = request["headers"]
    assert headers["openai-organization"] == "org-panel"
    assert headers["openai-project"] == "proj-panel"
    assert (headers["x-gateway-route"], headers["x-team"]) == ("reviews", "editors")
    assert request["auth_scheme"] == "bearer"  # the member's headers leave the key alone


def test_organization_from_the_environment_and_a_blank_project_sends_no_header(
    cli: Any, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-headers-1234")
    monkeypatch.setenv("OPENAI_ORG_ID", " org-from-env ")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "  ")
    member = f'spec = "openai:gpt-4.1-mini"\nbase_url = "{fake.base_url("openai")}"\n'
    headers = _check(cli, fake, _config(tmp_path / "panel.toml", member))["headers"]
    assert headers["openai-organization"] == "org-from-env"
    assert "openai-project" not in headers


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "api-key",
        "AUTHORIZATION",
        "X-Api-Key",
        # what else carries a credential: a session cookie, Azure API Management's key,
        # Google's key header, a gateway's token
        "Cookie",
        "Ocp-Apim-Subscription-Key",
        "x-goog-api-key",
        "X-Auth-Token",
    ],
)
def test_a_key_header_in_panel_toml_is_refused_in_one_line(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-headers-1234")
    secret = "sk-written-into-the-config-9f8e7d"
    member = (
        f'spec = "openai:gpt-4.1-mini"\nbase_url = "{fake.base_url("openai")}"\n'
        f'headers = {{ "{name}" = "Bearer {secret}" }}\n'
    )
    config = _config(tmp_path / "panel.toml", member)
    result = cli("compare", "ollama", "vllm", "--config", str(config), "--out", str(runs_dir))
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "headers" in line and name in line and "api_key_env" in line
    assert secret not in result.out + result.err
    assert not runs_dir.exists() and fake.stats()["requests"] == 0


def test_azure_batch_route_goes_through_the_deployment_resource(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from panel.backends.registry import parse_member

    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    options = {"azure": True, "base_url": fake.url, "api_version": VERSION, "timeout": 5, "route": "batch"}
    plan = plan_of([parse_member("openai:gpt-4.1-mini", options)], tools=2)
    _, stats, store = run(plan, tmp_path / "runs")
    store.close()
    assert (stats.total, stats.valid, stats.failed) == (8, 8, 0)
    batches = fake.stats()["batches"]
    assert batches["created"] == {"openai": 1} and batches["requests"] == {"openai": 8}
    assert fake.stats()["requests"] == 0  # nothing went live
    assert files_containing(tmp_path / "runs", AZURE_KEY) == []


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ('"" = "v"', "is not a header name"),
        ('"X Route" = "v"', "is not a header name"),
        ('"X-Route" = "a\\nInjected: 1"', "a value HTTP cannot carry"),
        ('"X-Route" = "café"', "a value HTTP cannot carry"),
    ],
    ids=["empty-name", "space-in-name", "line-break", "beyond-ascii"],
)
def test_a_header_http_cannot_send_is_refused_when_the_config_loads(
    cli: Any,
    fake: FakeProvider,
    tmp_path: Path,
    runs_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    header: str,
    said: str,
) -> None:
    # Each failed every request of the run (a ValueError, a 400, a UnicodeEncodeError) after
    # the config had been taken.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-headers-1234")
    member = (
        f'spec = "openai:gpt-4.1-mini"\nbase_url = "{fake.base_url("openai")}"\nheaders = {{ {header} }}\n'
    )
    config = _config(tmp_path / "panel.toml", member)
    result = cli("compare", "ollama", "vllm", "--config", str(config), "--out", str(runs_dir))
    assert result.code == 2, result.out + result.err
    (line,) = result.err.strip().splitlines()
    assert "members[0].headers" in line and said in line
    assert not runs_dir.exists() and fake.stats()["requests"] == 0


@pytest.mark.parametrize("option", ["organization", "project"])
def test_an_organization_or_project_http_cannot_send_is_refused_when_the_config_loads(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-headers-1234")
    member = f'spec = "openai:gpt-4.1-mini"\nbase_url = "{fake.base_url("openai")}"\n{option} = "a\\nb"\n'
    config = _config(tmp_path / "panel.toml", member)
    result = cli("compare", "ollama", "vllm", "--config", str(config), "--out", str(runs_dir))
    assert result.code == 2, result.out + result.err
    (line,) = result.err.strip().splitlines()
    assert f"members[0].{option}: a value HTTP cannot carry" in line
    assert not runs_dir.exists() and fake.stats()["requests"] == 0

"""`local:hf:OWNER/REPO/FILE.gguf`: a GGUF file from the Hugging Face Hub, through its cache.

`hf_hub_download` shows its own progress bar, keeps the file in the hub's cache (shared with
every other tool that uses it) and resumes an interrupted download; `HF_ENDPOINT`,
`HF_HOME`, `HF_TOKEN` and `HF_HUB_OFFLINE` work as they do everywhere else.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import BackendSpecError, MissingDependencyError

__all__ = ["PREFIX", "hub_gguf"]

PREFIX = "hf:"


def _parse(ref: str) -> tuple[str, str]:
    """`OWNER/REPO/path/FILE.gguf` -> (repo id, file name inside the repo)."""
    parts = ref.strip().strip("/").split("/")
    if len(parts) < 3 or not all(parts) or not parts[-1].lower().endswith(".gguf"):
        raise BackendSpecError(
            f"local model 'hf:{ref}' is not a hub file: write local:hf:OWNER/REPO/FILE.gguf"
        )
    return "/".join(parts[:2]), "/".join(parts[2:])


def hub_gguf(ref: str) -> Path:
    """The local path of a hub GGUF, downloading it on first use; one line on any failure."""
    repo_id, filename = _parse(ref)
    if importlib.util.find_spec("huggingface_hub") is None:
        raise MissingDependencyError("local", "local", "huggingface_hub")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )

    where = f"hf:{repo_id}/{filename}"
    try:
        return Path(hf_hub_download(repo_id, filename))
    except LocalEntryNotFoundError:
        # Offline (HF_HUB_OFFLINE, or no connection) and not in the cache.
        raise BackendSpecError(
            f"local model {where} is not in the Hugging Face cache and the hub cannot be reached "
            "(HF_HUB_OFFLINE or no network): download it once with network"
        ) from None
    except EntryNotFoundError:
        raise BackendSpecError(f"local model {where}: the repository has no file {filename}") from None
    except (HfHubHTTPError, OfflineModeIsEnabled, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise BackendSpecError(f"local model {where} could not be downloaded: {detail[:300]}") from None

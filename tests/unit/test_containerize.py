"""What the release workflow runs around Docker, which only GitHub's runners have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flightdelay import release


def test_the_containerize_command_pushes_the_bento_version_with_a_registry_cache(tmp_path: Path) -> None:
    """``type=gha`` would need the Actions runtime token, which a ``run:`` step never has."""
    command = release.containerize_command("flightdelay-service:v3-01234567", "ghcr.io/acme/fd", tmp_path / "m.json")
    assert command[command.index("containerize") + 1] == "flightdelay-service:v3-01234567"
    assert command[command.index("--image-tag") + 1] == "ghcr.io/acme/fd:v3-01234567"
    options = [command[i + 1] for i, part in enumerate(command) if part == "--opt"]
    assert options == [
        "push",
        "cache-from=type=registry,ref=ghcr.io/acme/fd:buildcache",
        "cache-to=type=registry,ref=ghcr.io/acme/fd:buildcache,mode=max",
        f"metadata-file={tmp_path / 'm.json'}",
    ]


def test_a_tag_without_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(release.ReleaseError, match="not a Bento tag"):
        release.containerize_command("flightdelay-service", "ghcr.io/acme/fd", tmp_path / "m.json")


def test_the_digest_comes_from_the_buildx_metadata(tmp_path: Path) -> None:
    metadata = tmp_path / "image.json"
    digest = "sha256:" + "0f" * 32
    metadata.write_text(json.dumps({"containerimage.digest": digest, "image.name": "ghcr.io/acme/fd:v3"}))
    assert release.pushed_digest(metadata) == digest
    metadata.write_text(json.dumps({"image.name": "ghcr.io/acme/fd:v3"}))
    with pytest.raises(release.ReleaseError, match="records no pushed image digest"):
        release.pushed_digest(metadata)
    with pytest.raises(release.ReleaseError, match="cannot read the build metadata"):
        release.pushed_digest(tmp_path / "missing.json")

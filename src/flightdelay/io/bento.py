"""The BentoML model store: the pipeline's model saved under a tag that names its content."""

from __future__ import annotations

import tempfile
from importlib import metadata as distributions
from pathlib import Path

from flightdelay import serving
from flightdelay.io import tracking
from flightdelay.settings import Params

MODEL_NAME = "flight-delay"
TAG_PIN = "src/flightdelay/bento-tag.txt"  # read by the service; included in the Bento


def save_model(root: Path, params: Params) -> str:
    """Save the bundle (model, reference tables, threshold, lineage) once per model hash; return its tag."""
    import bentoml

    digest = tracking.sha256(root / params.paths.model)
    tag = f"{MODEL_NAME}:{digest[:16]}"  # the same model always gets the same tag, never `latest`
    try:
        return str(bentoml.models.get(tag).tag)
    except bentoml.exceptions.NotFound:
        pass
    lineage = tracking.lineage(root) | {"model_sha256": digest}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp)
        metadata = serving.write_bundle(
            bundle, root / params.paths.model, root / params.paths.raw, root / params.paths.metrics, lineage
        )
        with bentoml.models.create(tag, metadata=metadata, labels={"project": "flightdelay"}) as model:
            for item in bundle.iterdir():
                (Path(model.path) / item.name).write_bytes(item.read_bytes())
    return tag


def write_requirements(target: Path) -> int:
    """Pin the running environment (synced from uv.lock) for the Bento; return the number of packages."""
    pins = sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in distributions.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() != "flightdelay"
    )
    target.write_text("\n".join(pins) + "\n")
    return len(pins)

"""The S3 path of the DVC remote, against moto's S3 server on loopback (a real HTTP S3 endpoint)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flightdelay.io.bento import free_port
from tests.e2e.conftest import Project, clone, environment, listening, wait_ready

pytestmark = pytest.mark.slow

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server, listening(port), tmp_path / "moto.log", timeout=30)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_push_then_get_data_pulls_from_s3(reduced: Project, s3_endpoint: str, tmp_path: Path) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, **_boto(CREDENTIALS)).create_bucket(Bucket="ml-data")
    env = environment(tmp_path) | CREDENTIALS
    producer = clone(reduced.path, tmp_path / "producer", env)
    producer.share_cache(reduced)
    # The one documented command (plus the endpoint, which only a non-AWS S3 needs).
    producer.dvc("remote", "add", "--default", "storage", "s3://ml-data/dvc")
    producer.dvc("remote", "modify", "storage", "endpointurl", s3_endpoint)
    pushed = producer.cli("push-cache")  # what pr.yml runs after reproducing
    assert "pushed the outputs and the run-cache to DVC remote 'storage'" in pushed.stdout
    producer.git("commit", "--quiet", "-am", "use the S3 remote")

    consumer = clone(producer.path, tmp_path / "consumer", env)
    got = consumer.cli("get-data")
    snapshots = "data/raw/airlines.csv.dvc, data/raw/airports.csv.dvc, data/raw/planes.csv.dvc"
    assert f"pulled data.dvc, {snapshots} from DVC remote 'storage'" in got.stdout
    for pointer in ["data.dvc", *snapshots.split(", ")]:
        assert consumer.dvc("status", "--quiet", pointer, check=False).returncode == 0
    assert not (consumer.path / "data/sample.sqlite").exists()  # the snapshots came from the remote
    assert (consumer.path / "data/raw/flights/2013-03.csv").read_bytes() == (
        producer.path / "data/raw/flights/2013-03.csv"
    ).read_bytes()
    # Outputs and the run-cache travel too: the consumer reproduces without retraining.
    consumer.dvc("pull", "--run-cache")
    done = consumer.dvc("repro")
    assert "Running stage 'train'" not in done.stdout


def _boto(creds: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": creds["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": creds["AWS_SECRET_ACCESS_KEY"],
        "region_name": creds["AWS_DEFAULT_REGION"],
    }

"""Make ZenML 0.98's own deployment server servable for a snapshot, locally, without Docker.

Run with the ZenML server venv (bench/.venv-zenml, see bench/README.md), the same
ZENML_CONFIG_PATH as the snapshot, and the snapshot ID:

    bench/.venv-zenml/bin/python bench/zenml_deployment.py <snapshot-uuid>

It registers a `local` deployer stack component (`bench-local`) if there is none, and creates
(or re-points) a deployment record `bench-<pipeline>` at the snapshot, with no auth key. It
prints the deployment ID on the last line. Nothing is started: bench/run.py then runs ZenML's
server for that record in the foreground, exactly as the local deployer's daemon does:

    python -m zenml.deployers.server.app --deployment_id <id> --host 127.0.0.1 --port <port>

ZenML's `pipeline.deploy()` would do the same two things and then spawn that process itself,
detached and unpinned; the benchmark needs to own the process (pinning, CPU, clean stop).
"""

from __future__ import annotations

import sys
from uuid import UUID

DEPLOYER_NAME = "bench-local"


def main(argv: list[str]) -> int:
    """Register the deployer if needed, create or update the deployment, print its ID."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    snapshot_id = UUID(argv[0])

    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.models import DeploymentRequest, DeploymentUpdate

    client = Client()
    try:
        deployer = client.get_stack_component(StackComponentType.DEPLOYER, DEPLOYER_NAME)
    except KeyError:
        deployer = client.create_stack_component(
            name=DEPLOYER_NAME,
            flavor="local",
            component_type=StackComponentType.DEPLOYER,
            configuration={},
        )
    snapshot = client.zen_store.get_snapshot(snapshot_id)
    name = f"bench-{snapshot.pipeline.name}"
    try:
        existing = client.get_deployment(name)
    except KeyError:
        existing = None
    if existing is None:
        deployment = client.zen_store.create_deployment(
            DeploymentRequest(
                name=name,
                project=client.active_project.id,
                snapshot_id=snapshot_id,
                deployer_id=deployer.id,
                auth_key=None,
            )
        )
    else:
        deployment = client.zen_store.update_deployment(
            existing.id, DeploymentUpdate(snapshot_id=snapshot_id)
        )
    print(deployment.id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Self-registration: a service started outside ZenML keeps its own deployment record.

With `ZENML_SERVING_DEPLOYMENT_NAME` set, each worker, once ready, creates or updates the
ZenML deployment of that name (snapshot, `url`, status `running`, auth key) and, when it
drains, marks it `absent` with `url=""` (what ZenML writes for a deployment that is gone:
`None` fields are skipped by the store). Every worker writes the same values, and a create
that loses a race updates the record the winner made, so there is one record per name
whatever the number of workers.

An instance (host and port) marks the record absent only while the record still names it:
in a rolling update the new replica announces before the old one drains, and the record
stays `running`. ZenML needs a deployer component on every record: `ZENML_SERVING_DEPLOYER`,
else the `zenml-serving` component (created, with its flavor, when missing; workers starting
together race to create it, and the SQL store's check-then-insert lets the loser fail with an
integrity error rather than ZenML's EntityExistsError: the loser reads the winner's).

ZenML keeps one deployment per snapshot (its schema reads `snapshot.deployment` as a single
row): a snapshot that already belongs to a deployment of another name is not registered again
under this one (the log line says which name to use, or to snapshot again).
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import structlog

from zenml_serving.integration import FLAVOR_NAME, FLAVOR_SOURCE

if TYPE_CHECKING:
    from uuid import UUID

    from zenml.client import Client
    from zenml.models import DeploymentResponse

    from zenml_serving.api.context import DeploymentIdentity
    from zenml_serving.config import ServingConfig
    from zenml_serving.deployment.model import ServedPipeline

__all__ = ["SelfRegistration", "service_url"]

_log = structlog.stdlib.get_logger(__name__)
DEFAULT_DEPLOYER_NAME = "zenml-serving"


def service_url(config: ServingConfig) -> str:
    """Where ZenML's client should call this service: ZENML_SERVING_PUBLIC_URL, else
    `http://<host>:<port>` with a wildcard host read as the loopback address."""
    if config.public_url is not None:
        return config.public_url
    host = config.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}"


class SelfRegistration:
    """The deployment record of one service, announced when ready, withdrawn when draining."""

    def __init__(self, config: ServingConfig, pipeline: ServedPipeline) -> None:
        assert config.deployment_name is not None
        self._config = config
        self._pipeline = pipeline
        self._name = config.deployment_name
        self._url = service_url(config)
        self._instance = f"{socket.gethostname()}:{config.port}"

    async def announce(self, identity: DeploymentIdentity) -> None:
        """Create or update the record (status running); a failure is logged, not fatal."""
        try:
            record = await asyncio.to_thread(self._upsert)
        except Exception as exc:
            _log.error(
                "self_registration_failed",
                deployment=self._name,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        identity.id, identity.name = str(record.id), record.name
        _log.info("self_registered", deployment=self._name, url=self._url, id=str(record.id))

    async def withdraw(self) -> None:
        """Mark the record absent; a failure is logged."""
        try:
            await asyncio.to_thread(self._mark_absent)
        except Exception as exc:
            _log.error(
                "self_deregistration_failed",
                deployment=self._name,
                error=f"{type(exc).__name__}: {exc}",
            )

    def _upsert(self) -> DeploymentResponse:
        from zenml.client import Client
        from zenml.enums import DeploymentStatus
        from zenml.models import DeploymentRequest, DeploymentUpdate

        client = Client()
        project = self._pipeline.project_id
        others = [
            d.name
            for d in client.list_deployments(
                snapshot_id=self._pipeline.snapshot_id, project=project, size=10
            ).items
            if d.name != self._name
        ]
        if others:
            raise RuntimeError(
                f"snapshot {self._pipeline.snapshot_id} is already the ZenML deployment "
                f"{others[0]!r} (ZenML keeps one deployment per snapshot): set "
                f"ZENML_SERVING_DEPLOYMENT_NAME={others[0]}, or serve a snapshot of its own "
                "(`zenml-serving snapshot module:pipeline`)"
            )
        try:
            record = client.get_deployment(self._name, project=project)
        except KeyError:
            try:
                record = client.zen_store.create_deployment(
                    DeploymentRequest(
                        name=self._name,
                        project=project or client.active_project.id,
                        snapshot_id=self._pipeline.snapshot_id,
                        deployer_id=self._deployer_id(client),
                        auth_key=self._config.auth_key,
                    )
                )
            except Exception:  # another worker created it first (EntityExistsError, or the
                # SQL store's integrity error): update the winner's record
                record = client.get_deployment(self._name, project=project)
        update = DeploymentUpdate(
            snapshot_id=self._pipeline.snapshot_id,
            url=self._url,
            status=DeploymentStatus.RUNNING,
            auth_key=self._config.auth_key or "",
            deployment_metadata=self._metadata(),
        )
        return client.zen_store.update_deployment(record.id, update)

    def _mark_absent(self) -> None:
        from zenml.client import Client
        from zenml.enums import DeploymentStatus
        from zenml.models import DeploymentUpdate

        client = Client()
        try:
            record = client.get_deployment(self._name, project=self._pipeline.project_id)
        except KeyError:
            return
        if (record.deployment_metadata or {}).get("instance") != self._instance:
            return  # another instance announced since: it answers for the name now
        client.zen_store.update_deployment(
            record.id,
            DeploymentUpdate(url="", status=DeploymentStatus.ABSENT, deployment_metadata={}),
        )
        _log.info("self_deregistered", deployment=self._name)

    def _metadata(self) -> dict[str, Any]:
        return {
            "self_registered": True,
            "instance": self._instance,
            "url": self._url,
            "port": self._config.port,
            "workers": self._config.workers,
        }

    def _deployer_id(self, client: Client) -> UUID:
        from zenml.enums import StackComponentType

        kind = StackComponentType.DEPLOYER
        if self._config.deployer is not None:
            try:
                return client.get_stack_component(kind, self._config.deployer).id
            except KeyError:
                raise RuntimeError(
                    f"ZENML_SERVING_DEPLOYER={self._config.deployer!r}: no deployer of that "
                    "name or ID in the ZenML store (`zenml deployer list`)"
                ) from None
        existing = client.list_stack_components(type=kind, flavor=FLAVOR_NAME, size=1)
        if existing.items:
            return existing.items[0].id
        try:
            client.get_flavor_by_name_and_type(FLAVOR_NAME, kind)
        except KeyError:
            try:
                client.create_flavor(FLAVOR_SOURCE, kind)
            except Exception:  # another worker created it first (EntityExistsError or the
                # SQL store's integrity error); anything else shows up on the next read
                client.get_flavor_by_name_and_type(FLAVOR_NAME, kind)
        try:
            return client.create_stack_component(
                DEFAULT_DEPLOYER_NAME, FLAVOR_NAME, kind, configuration={}
            ).id
        except Exception:  # lost the race to another worker: use the winner's component
            return client.get_stack_component(kind, DEFAULT_DEPLOYER_NAME).id

"""ZenML's side of the house: the `zenml-serving` deployer flavor and deployment records.

- `flavor.ZenMLServingDeployerFlavor`: register it once per store with
  `zenml deployer flavor register zenml_serving.integration.flavor.ZenMLServingDeployerFlavor`;
  a deployer of that flavor starts zenml-serving locally for `pipeline.deploy()` and
  `zenml deployment provision`.
- `registration.SelfRegistration`: a service started by hand (or by the Kubernetes
  manifests) with `ZENML_SERVING_DEPLOYMENT_NAME` keeps its own deployment record.

Nothing on the request path imports this package; importing it loads nothing from ZenML.
"""

from __future__ import annotations

FLAVOR_NAME = "zenml-serving"
"""The deployer flavor's name (`--flavor=zenml-serving`, settings key `deployer.zenml-serving`)."""
FLAVOR_SOURCE = "zenml_serving.integration.flavor.ZenMLServingDeployerFlavor"
"""What `zenml deployer flavor register` takes."""

__all__ = ["FLAVOR_NAME", "FLAVOR_SOURCE"]

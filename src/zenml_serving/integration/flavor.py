"""The `zenml-serving` deployer flavor, registered once per ZenML store:

zenml deployer flavor register zenml_serving.integration.flavor.ZenMLServingDeployerFlavor
zenml deployer register serving --flavor=zenml-serving
zenml stack register serving-stack -o default -a default -D serving --set
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenml.deployers.base_deployer import BaseDeployerFlavor

from zenml_serving.integration import FLAVOR_NAME

if TYPE_CHECKING:
    from zenml.deployers.base_deployer import BaseDeployer, BaseDeployerConfig

__all__ = ["ZenMLServingDeployerFlavor"]


class ZenMLServingDeployerFlavor(BaseDeployerFlavor):
    """Deploys pipelines onto zenml-serving processes on this machine."""

    @property
    def name(self) -> str:
        """`--flavor=zenml-serving`."""
        return FLAVOR_NAME

    @property
    def config_class(self) -> type[BaseDeployerConfig]:
        """The component's configuration (and the settings' defaults)."""
        from zenml_serving.integration.settings import ZenMLServingDeployerConfig

        return ZenMLServingDeployerConfig

    @property
    def implementation_class(self) -> type[BaseDeployer]:
        """The deployer."""
        from zenml_serving.integration.deployer import ZenMLServingDeployer

        return ZenMLServingDeployer

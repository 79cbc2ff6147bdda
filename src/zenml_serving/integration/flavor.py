"""The `zenml-serving` deployer flavor, registered once per ZenML store:

zenml deployer flavor register zenml_serving.integration.flavor.ZenMLServingDeployerFlavor
zenml deployer register serving --flavor=zenml-serving
zenml stack register serving-stack -o default -a default -D serving --set
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenml.deployers.base_deployer import BaseDeployerFlavor

from zenml_serving.integration import FLAVOR_NAME, FLAVOR_SOURCE

if TYPE_CHECKING:
    from zenml.deployers.base_deployer import BaseDeployer, BaseDeployerConfig
    from zenml.models import FlavorRequest

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

    def to_model(self, integration: str | None = None, is_custom: bool = True) -> FlavorRequest:
        """The store's record of the flavor, with the import path that works wherever the
        package is installed (ZenML would record `src.zenml_serving...` for an editable
        install registered from the repository's root)."""
        model = super().to_model(integration=integration, is_custom=is_custom)
        return model.model_copy(update={"source": FLAVOR_SOURCE})

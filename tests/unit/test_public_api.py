"""The package's public names change only on purpose."""

from __future__ import annotations

import zenml_serving


class TestPublicApi:
    """`zenml_serving` exports exactly what the README documents."""

    def test_all_is_pinned(self) -> None:
        assert sorted(zenml_serving.__all__) == [
            "Capture",
            "CapturedOutput",
            "ServingConfig",
            "__version__",
            "create_app",
            "emit",
        ]

    def test_every_public_name_resolves(self) -> None:
        for name in zenml_serving.__all__:
            assert getattr(zenml_serving, name) is not None
        assert zenml_serving.Capture("none").mode.value == "none"

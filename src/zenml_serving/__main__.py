"""`python -m zenml_serving` runs the `zenml-serving` command."""

from zenml_serving.cli import main

main()

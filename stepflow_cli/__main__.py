"""`python -m stepflow_cli`: the same as the `stepflow` command."""

from stepflow_cli.main import main

main()

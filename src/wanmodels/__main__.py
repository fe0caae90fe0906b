"""`python -m wanmodels`."""

from wanmodels.cli.app import main

main()

"""`python -m wanmodels`."""

from wanmodels.cli import main

main()

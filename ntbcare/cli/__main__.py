"""`python -m ntbcare.cli`: the same command as the `ntbcare` script, with every command group."""

from ntbcare.cli import main

main()

"""`python -m panel`: the command line, as the `panel` and `toolpanel` scripts run it."""

from .cli import main

main()

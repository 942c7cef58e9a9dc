"""`python -m ganserve`: the same command line as the installed `ganserve` script."""

from ganserve.cli import app

app()

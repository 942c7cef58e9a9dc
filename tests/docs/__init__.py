"""The documentation: the README and the MkDocs site under docs/."""

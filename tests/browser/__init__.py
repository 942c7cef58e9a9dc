"""Browser tests of the web page."""

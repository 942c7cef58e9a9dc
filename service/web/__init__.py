"""The gateway's web page: `GET /` serves `static/index.html`, its assets lie under `/static`.

Plain HTML, CSS and JavaScript (no build step, nothing loaded from other hosts); the page talks
to the `/v1` API like any other client.
"""

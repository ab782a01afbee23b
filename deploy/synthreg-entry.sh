#!/bin/sh
# The `synthreg` command inside the image (the package runs from /opt/synthreg/src/services).
exec /opt/synthreg/venv/bin/python -m synthreg.cli.main "$@"

# The two README commands. Both install what they need first (scripts/bootstrap.sh).
SHELL := /bin/bash
.PHONY: demo test bootstrap unit lint network-up network-down clean

demo: bootstrap
	@scripts/demo.sh

test: bootstrap
	@scripts/test.sh

bootstrap:
	@scripts/bootstrap.sh

# static checks only: go vet, ruff, mypy (also the first step of `make test`)
lint: bootstrap
	@scripts/lint.sh

# fast unit tests only (no network)
unit: bootstrap
	@source scripts/env.sh && cd chaincode && go test ./...
	@source scripts/env.sh && python -m pytest -m "not integration" tests

network-up: bootstrap
	@source scripts/env.sh && synthreg network up

network-down:
	@source scripts/env.sh && synthreg network down

clean: network-down
	rm -rf .synthreg

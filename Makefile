# Everyday commands (the README's two commands need nothing but ./run).
.PHONY: demo test lint fmt types unit bench stack stack-down stack-status
demo: ; ./run demo
test: ; ./run test
lint: ; uv run ruff check . && uv run ruff format --check .
fmt: ; uv run ruff check --fix . && uv run ruff format .
types: ; uv run mypy
unit: ; uv run pytest -m "not postgres and not browser and not stack and not slow" -q
bench: ; for b in bench/*.py; do uv run python $$b; done
# The production stack on this machine: PostgreSQL, a Prefect server, workers (docs/operations.md).
stack: ; scripts/stack.sh up
stack-down: ; scripts/stack.sh down
stack-status: ; scripts/stack.sh status

# The two commands of the README. Both install what is missing first (scripts/bootstrap.sh).
.PHONY: demo test bench bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/python -m simulators.demo --config config/demo.toml

test: bootstrap
	.venv/bin/python -m pytest -q $(PYTEST_ARGS)

bench: bootstrap
	.venv/bin/python bench/session.py

clean:
	rm -rf var .pytest_cache .hypothesis

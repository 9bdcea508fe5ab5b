# Two commands a user needs; each installs what it needs first.
#   make demo   the main job: SSDA on the built-in clear-to-fog benchmark
#   make test   the test suite (what CI runs)
PYTHON ?= python3
export PYTHON

.PHONY: install install-tests test demo

install:
	bash tools/install.sh

install-tests:
	bash tools/install.sh --with-tests

test: install-tests
	$(PYTHON) -m pytest tests -q

demo: install
	$(PYTHON) tools/demo.py

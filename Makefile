# The two commands of the README. Both install what is missing first (scripts/bootstrap.sh).
.PHONY: demo test bench bench-fleet bootstrap clean screenshots image

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap      # with a display: the touch screen in a window; with Mosquitto: a fleet of two
	.venv/bin/python -m simulators.demo --config config/demo.toml

test: bootstrap
	.venv/bin/python -m pytest -q $(PYTEST_ARGS)

bench: bootstrap
	.venv/bin/python bench/session.py
	.venv/bin/python bench/patrons.py
	.venv/bin/python bench/card_tap.py
	.venv/bin/python bench/sync.py
	.venv/bin/python bench/ui.py
	.venv/bin/python bench/video.py
	.venv/bin/python bench/content.py
	.venv/bin/python bench/find.py
	.venv/bin/python bench/console.py

bench-fleet: bootstrap
	.venv/bin/python bench/fleet.py

# Every screen with sample data, both languages, portrait; a few in landscape too (docs/screenshots/).
SCREEN_STATES = attract identifying choosing refused door_open scanning receipt out_of_service staff_pin \
	staff_restock diagnostics find help find_browse find_book find_reserve
screenshots: bootstrap
	@mkdir -p docs/screenshots
	@for state in $(SCREEN_STATES); do for lang in zh en; do \
		.venv/bin/kiosk screenshot --state $$state --lang $$lang --out docs/screenshots/$$state-$$lang.png || exit 1; \
	done; done
	@for state in attract choosing door_open receipt; do \
		.venv/bin/kiosk screenshot --state $$state --lang zh --size 1920x1080 \
			--out docs/screenshots/$$state-zh-landscape.png || exit 1; \
	done
	.venv/bin/python -m simulators.console_screenshots --out docs/screenshots   # the operators' console

# The bookcase's SD card image (docs/operators.md): build/image/citybook-<version>-arm64.img, .img.xz, .bmap,
# .manifest. Needs root; the Debian tree is cached in /var/cache/citybook-image.
image:
	@scripts/bootstrap.sh --image
	systemd/image/build.sh

clean:
	rm -rf var .pytest_cache .hypothesis

# The README's commands. Everything installs into .venv; Chromium comes from Debian's packages.
VENV ?= .venv
PYTHON ?= python3
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# The demo's port: make demo PORT=5001
PORT ?= 5000
# The gettext catalogs: messages.pot, and <language>/LC_MESSAGES/messages.po and .mo for each language.
TRANSLATIONS := esu/translations
PYBABEL := $(VENV)/bin/pybabel

.PHONY: demo test test-all chromium wrk bench lint translations language compile-translations

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

## demo: install, migrate, seed the 'demo' page and serve the app on SQLite with the Meta simulator (PORT=5000)
demo: $(VENV)/.runtime
	$(VENV)/bin/flask --app wsgi demo --port $(PORT)

## chromium: Debian's Chromium for the browser tests (Playwright cannot download browsers here)
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## wrk: the HTTP load generator the webhook and signup-page benchmarks drive (Debian's package)
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

## bench: every benchmark on SQLite (add BENCH_DATABASE_URL=… for PostgreSQL); they print, nothing asserts
bench: $(VENV)/.dev wrk
	$(VENV)/bin/python bench/webhooks.py $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))
	$(VENV)/bin/python bench/signup_page.py $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))
	$(VENV)/bin/python bench/onboarding.py $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))
	$(VENV)/bin/python bench/forward.py $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))
	$(VENV)/bin/python bench/admin.py $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))
	$(VENV)/bin/python bench/storage.py $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL))

## test: the whole suite (SQLite unless DATABASE_URL names a PostgreSQL server)
test: $(VENV)/.dev chromium
	$(VENV)/bin/python -m pytest

## test-all: the suite on SQLite, then on the local PostgreSQL, as CI runs it
test-all:
	$(MAKE) test
	$(MAKE) test DATABASE_URL=$(PG_URL) REDIS_URL=redis://127.0.0.1:6379/15

## translations: extract every marked string into messages.pot and update each language's .po with it
translations: $(VENV)/.runtime
	$(PYBABEL) extract -F babel.cfg -k N_ -k _l --no-location --sort-output --no-wrap --project esu -o $(TRANSLATIONS)/messages.pot .
	$(PYBABEL) update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-wrap --ignore-obsolete --no-fuzzy-matching

## language: start the catalog of a new language: make language LOCALE=fr (then translate it and compile)
language: $(VENV)/.runtime
	@test -n "$(LOCALE)" || { echo "say which: make language LOCALE=fr"; exit 1; }
	$(PYBABEL) init -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l $(LOCALE) --no-wrap

## compile-translations: the .mo files esu reads, from the .po files (commit both)
compile-translations: $(VENV)/.runtime
	$(PYBABEL) compile -d $(TRANSLATIONS) --statistics

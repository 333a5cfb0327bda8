# Shared by scripts/serve, scripts/test and scripts/bench: make .venv and nginx available.
# Sourced, not run. Installs only what is missing, so a second run is quick.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

need_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PYTHON="$(command -v "$candidate")"
            return
        fi
    done
    echo "Goodeye needs Python 3.11 or newer (Debian/Ubuntu: apt-get install -y python3 python3-venv)." >&2
    exit 1
}

ensure_venv() {
    # $1: the pip extras to install, e.g. "" or "[test]"
    need_python
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.goodeye-installed$1"
    if [ ! -f "$stamp" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ]; then
        "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >/dev/null
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT$1"
        touch "$stamp"
    fi
}

ensure_nginx() {
    if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing nginx (apt-get)..." >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
        # Debian starts a default nginx on port 80; Goodeye runs its own.
        (command -v service >/dev/null 2>&1 && service nginx stop >/dev/null 2>&1) || true
    else
        echo "nginx is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y nginx) and run this again." >&2
        exit 1
    fi
}

ensure_chromium() {
    # The console's browser tests drive Debian's Chromium through Playwright (no browser download).
    if [ -x /usr/bin/chromium ]; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing chromium (apt-get)..." >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is not installed: the browser tests will be skipped (Debian: sudo apt-get install -y chromium)." >&2
    fi
}

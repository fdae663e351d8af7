# Sourced by the scripts that run on other Pythons: find_python 3.12 prints the path of a python3.12
# (on PATH, or installed through pyenv), or nothing.
find_python() {
    local v=$1 full
    if command -v "python$v" >/dev/null 2>&1 && "python$v" -c "" >/dev/null 2>&1; then
        command -v "python$v"
        return
    fi
    if command -v pyenv >/dev/null 2>&1; then
        full=$(pyenv versions --bare 2>/dev/null | grep -E "^$v\.[0-9]+$" | sort -V | tail -n 1)
        if [ -n "$full" ] && [ -x "$(pyenv root)/versions/$full/bin/python$v" ]; then
            echo "$(pyenv root)/versions/$full/bin/python$v"
        fi
    fi
}

# core_venv 3.12: make .venv3.12 with pytest and the package alone (the core must not need torch). The
# package is installed (editable), which compiles its C callbacks for that Python, again only when the
# C sources or the build files changed since: as the Makefile's stamp does for .venv.
core_venv() {
    local v=$1 python stamp
    python=$(find_python "$v")
    [ -n "$python" ] || return 1
    if [ ! -x ".venv$v/bin/pytest" ]; then
        "$python" -m venv ".venv$v"
        ".venv$v/bin/python" -m pip install --quiet --disable-pip-version-check "$(grep -E '^pytest==' requirements.txt)"
    fi
    stamp=".venv$v/.installed"
    if [ ! -f "$stamp" ] || [ -n "$(find setup.py pyproject.toml tracer/record -maxdepth 1 \
            \( -name setup.py -o -name pyproject.toml -o -name '*.c' -o -name '*.h' \) -newer "$stamp")" ]; then
        ".venv$v/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
        touch "$stamp"
    fi
}

# Sourced by the scripts that keep a Python virtual environment of their own (python-check.sh,
# cpu-compare.sh): `ensure_venv DIR FAIL` makes DIR a venv with pip unless it already runs, installing
# Debian's python3-venv where `python3 -m venv` lacks its pip bootstrap. FAIL names the caller's
# function that reports an error and exits.

# Makes a fresh venv in $1, its output into $2; succeeds when the venv's pip runs.
make_venv() {
    rm -rf "$1"
    python3 -m venv "$1" >"$2" 2>&1 && "$1/bin/python" -m pip --version >/dev/null 2>&1
}

ensure_venv() {
    local venv="$1" fail="$2" log system_python sudo=""
    "$venv/bin/python" -c '' 2>/dev/null && return 0
    log="$(mktemp)"
    echo "Creating a Python virtual environment in $venv." >&2
    if ! make_venv "$venv" "$log"; then
        # Debian's python3 keeps venv's pip bootstrap (ensurepip) in a separate package.
        system_python="$(python3 -c 'import sys; print(sys.base_prefix == "/usr")')"
        if command -v apt-get >/dev/null && [ "$system_python" = True ]; then
            echo "python3 -m venv failed: installing Debian's venv support (python3-venv)." >&2
            [ "$(id -u)" -ne 0 ] && sudo=sudo
            $sudo apt-get update -qq || "$fail" "apt-get update failed."
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null ||
                "$fail" "installing python3-venv failed."
        fi
        if ! make_venv "$venv" "$log"; then
            cat "$log" >&2
            rm -rf "$venv" "$log"
            "$fail" "python3 -m venv $venv failed (output above)."
        fi
    fi
    rm -f "$log"
}

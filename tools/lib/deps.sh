# Sourced by tools/*: makes sure the system packages the build needs are installed.
# As root it installs them with apt-get; otherwise it prints the exact command and stops.
ensure_packages() {
    local missing=()
    [ -f /usr/include/lmdb.h ] || missing+=(liblmdb-dev)
    [ -f /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
    [ -f /usr/include/sodium.h ] || missing+=(libsodium-dev)
    if [ "${1:-}" = "python" ]; then
        python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
        command -v zsh >/dev/null || missing+=(zsh) # the tests check the zsh completion script's syntax
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "installing ${missing[*]} ..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing system packages; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

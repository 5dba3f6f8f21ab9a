# Shared shell helpers for the demo, test and benchmark scripts.

# ensure_packages PKG... — installs the Debian packages whose commands are missing.
# Each argument is "command:package" (or just "package" when they are the same).
ensure_packages() {
    local missing=() spec cmd pkg
    for spec in "$@"; do
        cmd=${spec%%:*}
        pkg=${spec#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_build_packages — what building the workspace needs besides Rust and
# a C compiler: the bundler's layer scanner links Intel ISA-L (crate isal-sys),
# which is built from source with nasm and the autotools.
ensure_build_packages() {
    ensure_packages nasm autoconf automake libtoolize:libtool make
}

# port_open PORT — true when something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_loopback_port — prints a random port in 20000-39999 that nothing on
# 127.0.0.1 listens on; fails after 50 tries.
free_loopback_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        port_open "$p" || { echo "$p"; return 0; }
    done
    return 1
}

# wait_for_port PORT PID — waits up to 10 s for PORT to accept connections,
# giving up early if process PID exits. Fails when it never does.
wait_for_port() {
    for _ in $(seq 100); do
        port_open "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

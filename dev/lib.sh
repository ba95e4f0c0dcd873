# shellcheck shell=bash
# Shell helpers shared by dev/services, dev/test and dev/run.
# Sourced, never executed; expects the caller to have set `set -euo pipefail`.

HERALD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# What a fresh Debian machine needs to build, test and run Herald locally.
# The JRE is chosen by herald_java_package.
HERALD_DEB_PACKAGES=(
    build-essential cmake pkg-config
    librdkafka-dev libjansson-dev libcurl4-openssl-dev libpq-dev
    libmicrohttpd-dev check libssl-dev openssl
    postgresql maven kcat curl tzdata
    clang libclang-rt-dev
)

herald_log() {
    printf '%s: %s\n' "${HERALD_LOG_TAG:-herald}" "$*" >&2
}

herald_die() {
    herald_log "error: $*"
    exit 1
}

# Kafka 4 needs Java 17 or newer. Prefer the package the project was tested
# with and fall back to the distribution default on releases that lack it.
herald_java_package() {
    if apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then
        echo openjdk-17-jre-headless
    else
        echo default-jre-headless
    fi
}

# Prints the packages of "$@" that are not installed, one a line.
herald_missing_packages() {
    local installed
    installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null |
        awk '$2 == "ii" { print $1 }' || true)"
    local pkg
    for pkg in "$@"; do
        if ! grep -qxF "$pkg" <<<"$installed"; then
            echo "$pkg"
        fi
    done
}

herald_java_ok() {
    local v
    command -v java >/dev/null 2>&1 || return 1
    v="$(java -XshowSettings:properties -version 2>&1 |
        awk -F' = ' '/java.specification.version/ { print $2; exit }')"
    [[ "$v" =~ ^[0-9]+$ ]] && ((v >= 17))
}

# Installs whatever of HERALD_DEB_PACKAGES is missing. Needs root; a
# developer without root gets the list and does it themselves.
herald_install_packages() {
    local -a want missing
    want=("${HERALD_DEB_PACKAGES[@]}")
    herald_java_ok || want+=(openjdk-17-jre-headless)
    mapfile -t missing < <(herald_missing_packages "${want[@]}")
    ((${#missing[@]} == 0)) && return 0

    if ((EUID != 0)); then
        herald_log "missing Debian packages (install them as root): ${missing[*]}"
        return 0
    fi
    herald_log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || herald_die "apt-get update failed"
    local i
    for i in "${!missing[@]}"; do
        if [[ "${missing[$i]}" == openjdk-17-jre-headless ]]; then
            missing[i]="$(herald_java_package)"
        fi
    done
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        herald_die "apt-get install failed: ${missing[*]}"
}

# Configures and builds one build tree: herald_build DIR [cmake args...]
herald_build() {
    local dir="$1"
    shift
    herald_log "building $dir"
    cmake -S "$HERALD_ROOT" -B "$HERALD_ROOT/$dir" "$@" >&2 ||
        herald_die "cmake configure of $dir failed"
    cmake --build "$HERALD_ROOT/$dir" -j"${HERALD_BUILD_JOBS:-2}" >&2 ||
        herald_die "build of $dir failed"
}

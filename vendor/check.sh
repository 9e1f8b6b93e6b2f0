#!/usr/bin/env bash
# Guards vendor/tiny_http (see vendor/tiny_http/PATCHES.md, "Checking the vendored copy").
#
#   vendor/check.sh             check that vendor/tiny_http is tiny_http 0.12.0 from crates.io with
#                               leakprobe.patch applied, then run tiny_http's own tests on it
#   vendor/check.sh --no-tests  the check only
#   vendor/check.sh --tests     tiny_http's own tests only
#   vendor/check.sh --write     rewrite vendor/tiny_http/leakprobe.patch from the vendored source
#                               (after changing it on purpose), then check
#
# Only --write writes into the repository, and only leakprobe.patch. Downloads go through cargo
# (a throwaway project that depends on tiny_http =0.12.0, `cargo fetch`); the .crate's SHA-256 is
# pinned below. Needs bash, cargo, git, tar, sha256sum.
set -euo pipefail

VERSION=0.12.0
# SHA-256 of tiny_http-0.12.0.crate as published on crates.io (also its `checksum` in Cargo.lock).
CRATE_SHA256=389915df6413a2e74fb181895f933386023c71110878cd0825588928e64cdc82
# Files of the published package the vendored copy leaves out on purpose.
DROPPED=(.cargo_vcs_info.json .github Cargo.lock)
# Files of the vendored copy that are leakprobe's, not tiny_http's.
OURS=(PATCHES.md leakprobe.patch)
# The published Cargo.lock pins rustc-serialize 0.3.24 (a dev-dependency), which no longer
# compiles (E0310 since rustc 1.7x); the tests use the 0.3.25 fix-up release instead.
LOCK_BUMPS=("rustc-serialize@0.3.24 0.3.25")
# tiny_http tests that cannot run here, each with its reason in PATCHES.md (exact names).
SKIP=()

repo=$(cd "$(dirname "$0")/.." && pwd)
vendored=$repo/vendor/tiny_http
patch_file=$vendored/leakprobe.patch

check=1 tests=1 write=0
case "${1:-}" in
    "") ;;
    --no-tests) tests=0 ;;
    --tests) check=0 ;;
    --write) write=1 tests=0 ;;
    -h | --help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "vendor/check.sh: unknown argument '$1' (try --help)" >&2
        exit 2
        ;;
esac

for tool in cargo git tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "vendor/check.sh: '$tool' is needed and not on PATH" >&2
        exit 1
    }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/leakprobe-vendor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# git must not mistake a repository above the temp folder for the one to apply or diff in.
export GIT_CEILING_DIRECTORIES=$(dirname "$tmp")

# --- tiny_http as published ------------------------------------------------------------------
fetch_upstream() {
    local proj=$tmp/fetch
    mkdir -p "$proj/src"
    : >"$proj/src/lib.rs"
    cat >"$proj/Cargo.toml" <<EOF
[package]
name = "leakprobe-fetch-tiny-http"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tiny_http = "=$VERSION"

[workspace]
EOF
    cargo fetch --quiet --manifest-path "$proj/Cargo.toml"
    local cargo_home=${CARGO_HOME:-$HOME/.cargo} crate=""
    for f in "$cargo_home"/registry/cache/*/tiny_http-"$VERSION".crate; do
        [ -f "$f" ] || continue
        if [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$CRATE_SHA256" ]; then
            crate=$f
            break
        fi
        echo "vendor/check.sh: $f does not have the published SHA-256, ignoring it" >&2
    done
    if [ -z "$crate" ]; then
        echo "vendor/check.sh: no tiny_http-$VERSION.crate with SHA-256 $CRATE_SHA256" >&2
        echo "  under $cargo_home/registry/cache/ after 'cargo fetch'" >&2
        exit 1
    fi
    mkdir -p "$tmp/upstream"
    tar -xzf "$crate" -C "$tmp/upstream"
    upstream=$tmp/upstream/tiny_http-$VERSION
}

# The vendored files that belong to tiny_http: git's view (tracked, plus untracked files that are
# not ignored, so a new file is not missed and build output in target/ is), without OURS.
copy_vendored() { # dest
    local dest=$1 f
    mkdir -p "$dest"
    if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$repo" ls-files -z --cached --others --exclude-standard -- vendor/tiny_http
    else
        (cd "$repo" && find vendor/tiny_http -type f -not -path '*/target/*' -print0)
    fi | while IFS= read -r -d '' f; do
        [ -e "$repo/$f" ] || continue # deleted in the working tree, not yet in git
        f=${f#vendor/tiny_http/}
        for ours in "${OURS[@]}"; do [ "$f" = "$ours" ] && continue 2; done
        mkdir -p "$dest/$(dirname "$f")"
        cp -p "$vendored/$f" "$dest/$f"
    done
}

# `git diff --name-status` of expected/ against actual/, as one line per file under the crate's
# root.
summarise() {
    local status path label
    while IFS=$'\t' read -r status path; do
        case "$status" in
        M) label="differs:" ;;
        D) label="missing from vendor/:" ;;
        A) label="only in vendor/, not patched:" ;;
        *) label="$status:" ;;
        esac
        path=${path#expected/}
        printf '  %-31s%s\n' "$label" "${path#actual/}"
    done
}

# --- --write: leakprobe.patch from the vendored source ----------------------------------------
if [ "$write" = 1 ]; then
    fetch_upstream
    # Named a and b so that `--no-prefix` gives the usual a/src/... b/src/... paths.
    cp -r "$upstream" "$tmp/a"
    for d in "${DROPPED[@]}"; do rm -rf "${tmp:?}/a/$d"; done
    copy_vendored "$tmp/b"
    status=0
    (cd "$tmp" && git -c core.quotepath=off --no-pager diff --no-index --no-color --no-ext-diff \
        --no-renames --no-prefix --diff-algorithm=myers a b) >"$tmp/new.patch" || status=$?
    if [ "$status" -gt 1 ]; then
        echo "vendor/check.sh: git diff failed (status $status)" >&2
        exit 1
    fi
    if cmp -s "$tmp/new.patch" "$patch_file"; then
        echo "leakprobe.patch already matches vendor/tiny_http ($(grep -c '^diff --git' "$patch_file") files)"
    else
        cp "$tmp/new.patch" "$patch_file"
        echo "wrote vendor/tiny_http/leakprobe.patch ($(grep -c '^diff --git' "$patch_file") files)"
    fi
fi

# --- the check --------------------------------------------------------------------------------
if [ "$check" = 1 ]; then
    [ -n "${upstream:-}" ] || fetch_upstream
    expected=$tmp/expected
    actual=$tmp/actual
    cp -r "$upstream" "$expected"
    for d in "${DROPPED[@]}"; do rm -rf "${expected:?}/$d"; done
    if ! (cd "$expected" && git apply --whitespace=nowarn "$patch_file"); then
        echo >&2
        echo "FAIL: vendor/tiny_http/leakprobe.patch does not apply to tiny_http $VERSION" >&2
        exit 1
    fi
    copy_vendored "$actual"
    status=0
    (cd "$tmp" && git --no-pager diff --no-index --no-renames --name-status expected actual) \
        >"$tmp/diff.txt" || status=$?
    if [ "$status" -gt 1 ]; then
        echo "vendor/check.sh: git diff failed (status $status)" >&2
        exit 1
    fi
    if [ "$status" = 0 ]; then
        files=$(grep -c '^diff --git' "$patch_file")
        echo "ok: vendor/tiny_http is tiny_http $VERSION (crates.io, sha256 ${CRATE_SHA256:0:12}…) with leakprobe.patch ($files files) applied"
    else
        {
            echo
            echo "FAIL: vendor/tiny_http is not tiny_http $VERSION + leakprobe.patch."
            echo "Files (expected = the published crate + leakprobe.patch, actual = vendor/tiny_http):"
            summarise <"$tmp/diff.txt"
            echo
            if grep -q '^M' "$tmp/diff.txt"; then
                echo "First lines of the difference in the files that differ:"
                (cd "$tmp" && git --no-pager diff --no-index --no-color --no-renames \
                    --diff-filter=M expected actual) | head -60 || true
                echo
            fi
            echo "If vendor/tiny_http was changed on purpose: mark the change as PATCHES.md asks,"
            echo "run 'vendor/check.sh --write' to regenerate leakprobe.patch, and commit both."
        } >&2
        exit 1
    fi
fi

# --- tiny_http's own tests, on the vendored source ----------------------------------------------
if [ "$tests" = 1 ]; then
    [ -n "${upstream:-}" ] || fetch_upstream
    # A copy with the published Cargo.lock (tiny_http's own pins, so --locked holds), at a stable
    # path under target/ so repeated runs reuse the build; nothing is written into vendor/.
    target=${CARGO_TARGET_DIR:-$repo/target}
    work=$target/vendor-tiny_http
    rm -rf "$work/src-copy"
    copy_vendored "$work/src-copy"
    cp "$upstream/Cargo.lock" "$work/src-copy/Cargo.lock"
    # Its own workspace root: under target/ it would otherwise believe it belongs to leakprobe's.
    printf '\n[workspace]\n' >>"$work/src-copy/Cargo.toml"
    for bump in "${LOCK_BUMPS[@]}"; do
        read -r spec precise <<<"$bump"
        cargo update --quiet --manifest-path "$work/src-copy/Cargo.toml" -p "$spec" --precise "$precise"
    done
    skip_args=()
    for t in "${SKIP[@]}"; do skip_args+=(--skip "$t"); done
    echo "running tiny_http $VERSION's own tests on vendor/tiny_http (skipped: ${#SKIP[@]})"
    CARGO_TARGET_DIR=$work/target cargo test --locked \
        --manifest-path "$work/src-copy/Cargo.toml" -- --exact "${skip_args[@]}"
fi

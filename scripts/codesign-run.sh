#!/bin/sh
# Cargo runner for the Apple targets (.cargo/config.toml): ad-hoc signs the binary
# with entitlements.plist (com.apple.security.virtualization), then runs it. Without
# the entitlement, -[VZVirtualMachineConfiguration validateWithError:] fails with
# VZErrorDomain code 2.
set -e
binary="$1"
shift
entitlements="$(dirname "$0")/../entitlements.plist"
if ! codesign --force --sign - --entitlements "$entitlements" "$binary" 2>/dev/null; then
    echo "codesign-run: could not sign $binary (is Xcode's command line tools installed?)" >&2
    exit 1
fi
exec "$binary" "$@"

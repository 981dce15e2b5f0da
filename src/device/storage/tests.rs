//! Unit tests of the storage checks and raw values.

use super::*;

#[test]
fn raw_values_match_the_sdk() {
    assert_eq!(DiskImageCachingMode::Automatic.raw(), 0);
    assert_eq!(DiskImageCachingMode::Uncached.raw(), 1);
    assert_eq!(DiskImageCachingMode::Cached.raw(), 2);
    // VZDiskImageSynchronizationMode starts at 1.
    assert_eq!(DiskImageSynchronizationMode::Full.raw(), 1);
    assert_eq!(DiskImageSynchronizationMode::Fsync.raw(), 2);
    assert_eq!(DiskImageSynchronizationMode::None.raw(), 3);
    // VZDiskSynchronizationMode is a different enum and starts at 0.
    assert_eq!(DiskSynchronizationMode::Full.raw(), 0);
    assert_eq!(DiskSynchronizationMode::None.raw(), 1);

    for m in [
        DiskImageCachingMode::Automatic,
        DiskImageCachingMode::Uncached,
        DiskImageCachingMode::Cached,
    ] {
        assert_eq!(DiskImageCachingMode::from_raw(m.raw()), Some(m));
    }
    for m in [
        DiskImageSynchronizationMode::Full,
        DiskImageSynchronizationMode::Fsync,
        DiskImageSynchronizationMode::None,
    ] {
        assert_eq!(DiskImageSynchronizationMode::from_raw(m.raw()), Some(m));
    }
    for m in [DiskSynchronizationMode::Full, DiskSynchronizationMode::None] {
        assert_eq!(DiskSynchronizationMode::from_raw(m.raw()), Some(m));
    }
    assert_eq!(DiskImageCachingMode::from_raw(3), None);
    assert_eq!(DiskImageSynchronizationMode::from_raw(0), None);
    assert_eq!(DiskSynchronizationMode::from_raw(2), None);
}

#[test]
fn defaults_are_the_frameworks() {
    assert_eq!(
        DiskImageCachingMode::default(),
        DiskImageCachingMode::Automatic
    );
    assert_eq!(
        DiskImageSynchronizationMode::default(),
        DiskImageSynchronizationMode::Full
    );
    assert_eq!(
        DiskSynchronizationMode::default(),
        DiskSynchronizationMode::Full
    );
}

#[test]
fn new_does_not_take_the_frameworks_caching_default() {
    // Automatic caching corrupts Linux guests; `new` uses cached, full sync.
    assert_eq!(
        DiskImageStorageDeviceAttachment::DEFAULT_CACHING_MODE,
        DiskImageCachingMode::Cached
    );
    assert_ne!(
        DiskImageStorageDeviceAttachment::DEFAULT_CACHING_MODE,
        DiskImageCachingMode::default()
    );
    assert_eq!(
        DiskImageStorageDeviceAttachment::DEFAULT_SYNCHRONIZATION_MODE,
        DiskImageSynchronizationMode::Full
    );
}

#[test]
fn nbd_url_syntax() {
    for ok in [
        "nbd://localhost",
        "nbd://localhost:10809/disk",
        "NBD://example.com/",
        "nbds://10.0.0.1:10809/export",
        "nbd://[::1]:10809/disk",
        "nbd+unix:///disk?socket=/tmp/nbd.sock",
        "nbds+unix:///?socket=/run/nbd.sock&tls-certificates=/x",
    ] {
        assert_eq!(check_nbd_url(ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("", "empty"),
        ("not a url", "contains ' '"),
        ("localhost:10809", "not a URL"),
        ("http://x", "scheme \"http\""),
        ("nbd://", "no host"),
        ("nbd:///disk", "no host"),
        ("nbd://host:0/disk", "port \"0\""),
        ("nbd://host:65536/disk", "port \"65536\""),
        ("nbd://host:/disk", "port \"\""),
        ("nbd://user@host/disk", "user information"),
        ("nbd://[::1/disk", "closing ']'"),
        ("nbd+unix://host/disk?socket=/s", "takes none"),
        ("nbd+unix:///disk", "no socket path"),
        ("nbd+unix:///disk?socket=", "no socket path"),
        ("nbd://a\0b", "NUL"),
    ] {
        let reason = check_nbd_url(bad).unwrap_err();
        assert!(reason.contains(why), "{bad:?}: {reason}");
    }
}

#[test]
fn uuid_strings() {
    assert!(is_uuid_string("E621E1F8-C36C-495A-93FC-0C247A3E6E5F"));
    assert!(is_uuid_string("e621e1f8-c36c-495a-93fc-0c247a3e6e5f"));
    for bad in [
        "",
        "E621E1F8C36C495A93FC0C247A3E6E5F",
        "E621E1F8-C36C-495A-93FC-0C247A3E6E5",
        "G621E1F8-C36C-495A-93FC-0C247A3E6E5F",
        "{E621E1F8-C36C-495A-93FC-0C247A3E6E5F}",
    ] {
        assert!(!is_uuid_string(bad), "{bad}");
    }
}
